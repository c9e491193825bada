//go:build linux

package intrusion

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lab is three network namespaces the test creates: an attacker and a monitor,
// each joined to the victim by a veth pair. Nothing leaves them.
type lab struct {
	att, vic, mon string // namespace names
}

var (
	attAddr    = netip.MustParseAddr("192.0.2.1")
	vicAttAddr = netip.MustParseAddr("192.0.2.2")
	monAddr    = netip.MustParseAddr("198.51.100.1")
	vicMonAddr = netip.MustParseAddr("198.51.100.2")
	monNet     = netip.MustParsePrefix("198.51.100.0/24")

	// The same pairs over IPv6, on unique local addresses (fd00::/8).
	attAddr6    = netip.MustParseAddr("fd00:17:a::1")
	vicAttAddr6 = netip.MustParseAddr("fd00:17:a::2")
	monAddr6    = netip.MustParseAddr("fd00:17:b::1")
	vicMonAddr6 = netip.MustParseAddr("fd00:17:b::2")
	monNet6     = netip.MustParsePrefix("fd00:17:b::/64")
)

// needLab skips without root or the commands the lab needs; under CI=true it fails.
func needLab(t *testing.T, cmds ...string) {
	t.Helper()
	missing := []string{}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, c := range append([]string{"ip"}, cmds...) {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("network namespace tests need %s (scripts/deps.sh installs the commands)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI=true: nothing skips")
	}
	t.Skip(msg)
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

var nonAlnum = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func newLab(t *testing.T) *lab {
	t.Helper()
	needLab(t)
	name := nonAlnum.ReplaceAllString(t.Name(), "")
	if len(name) > 24 {
		name = name[len(name)-24:]
	}
	base := fmt.Sprintf("ppi-%s-%d", name, os.Getpid())
	l := &lab{att: base + "-att", vic: base + "-vic", mon: base + "-mon"}
	for _, ns := range []string{l.att, l.vic, l.mon} {
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	for _, p := range []struct {
		peer             string
		peerAddr, vAdr   netip.Addr
		peerAddr6, vAdr6 netip.Addr
		vicLink          string
	}{{l.att, attAddr, vicAttAddr, attAddr6, vicAttAddr6, "va"}, {l.mon, monAddr, vicMonAddr, monAddr6, vicMonAddr6, "vm"}} {
		ipCmd(t, "-n", l.vic, "link", "add", p.vicLink, "type", "veth", "peer", "name", "eth0", "netns", p.peer)
		ipCmd(t, "-n", l.vic, "addr", "add", p.vAdr.String()+"/24", "dev", p.vicLink)
		// nodad: the addresses are usable at once, not tentative for a second or two.
		ipCmd(t, "-n", l.vic, "addr", "add", p.vAdr6.String()+"/64", "dev", p.vicLink, "nodad")
		ipCmd(t, "-n", l.vic, "link", "set", p.vicLink, "up")
		ipCmd(t, "-n", p.peer, "addr", "add", p.peerAddr.String()+"/24", "dev", "eth0")
		ipCmd(t, "-n", p.peer, "addr", "add", p.peerAddr6.String()+"/64", "dev", "eth0", "nodad")
		ipCmd(t, "-n", p.peer, "link", "set", "eth0", "up")
	}
	return l
}

func nsPath(ns string) string { return "/run/netns/" + ns }

// do runs fn on a thread inside namespace ns; sockets it opens stay there. The
// thread is never returned to the pool.
func do(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(nsPath(ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// listenRedisLike opens, in the victim, a listener that answers every line with a
// refused AUTH and closes, as Redis does to a wrong password (one try per connection).
func (l *lab) listenRedisLike(t *testing.T, port int) {
	t.Helper()
	var ln net.Listener
	if err := do(t, l.vic, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
					c.Write([]byte("-WRONGPASS invalid username-password pair\r\n"))
				}
			}()
		}
	}()
}

// listenHold opens, in the victim, a listener that keeps what it accepts open until
// the test ends.
func (l *lab) listenHold(t *testing.T, port int) {
	t.Helper()
	var ln net.Listener
	if err := do(t, l.vic, func() (err error) {
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
}

// dialFrom connects from namespace ns to addr with a timeout and closes at once.
func dialFrom(t *testing.T, ns string, addr netip.AddrPort, timeout time.Duration) error {
	t.Helper()
	return do(t, ns, func() error {
		c, err := net.DialTimeout("tcp", addr.String(), timeout)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && errors.As(err, &ne) && ne.Timeout()
}

// poll calls cond until it is true or the deadline passes.
func poll(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
