//go:build linux

// Package scantest builds what the scanner's tests and benchmarks scan besides
// loopback: a network namespace of their own, reached through a veth pair, in which
// every address of a /24 is local and listeners can be opened. Everything sent to that
// /24 stays inside the namespace. It needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN)
// and the ip command (iproute2).
package scantest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Netns is a network namespace with a /24 behind a veth pair. Its methods are safe
// for concurrent use; Close removes it.
type Netns struct {
	// Name is the namespace's name, as ip netns lists it.
	Name string
	// Subnet is the /24 whose every address answers inside the namespace.
	Subnet netip.Prefix
	// Host is this side's address on the veth link: the source of what is sent to
	// Subnet.
	Host netip.Addr

	hostLink string
	mu       sync.Mutex
	closers  []func()
}

// NewNetns creates a namespace with a unique name and a /24 of 198.18.0.0/15 (the
// range RFC 2544 sets aside for benchmarks) that no other Netns of this host uses at
// the time, routed to it from this namespace.
func NewNetns(prefix string) (*Netns, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("the ip command (iproute2) is needed: %w", err)
	}
	var lastErr error
	for try := 0; try < 8; try++ {
		n, err := newNetns(prefix)
		if err == nil {
			return n, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func newNetns(prefix string) (*Netns, error) {
	id := rand.IntN(1 << 16)
	third := 1 + rand.IntN(254)
	n := &Netns{
		Name:     fmt.Sprintf("%s-%d-%04x", prefix, os.Getpid(), id),
		Subnet:   netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(third), 0}), 24),
		hostLink: fmt.Sprintf("pps%04x", id),
	}
	// The veth link: a /30 of 198.19.0.0/16 with the same third octet.
	link := [4]byte{198, 19, byte(third), 0}
	n.Host = netip.AddrFrom4([4]byte{link[0], link[1], link[2], 1})
	peerAddr := netip.AddrFrom4([4]byte{link[0], link[1], link[2], 2})
	peer := fmt.Sprintf("ppn%04x", id)
	// Taken by another namespace of this kind: try another.
	if out, _ := exec.Command("ip", "route", "show", n.Subnet.String()).Output(); len(strings.TrimSpace(string(out))) > 0 {
		return nil, fmt.Errorf("%s is routed already", n.Subnet)
	}
	if err := ip("netns", "add", n.Name); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"link", "add", n.hostLink, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", n.Name},
		{"addr", "add", n.Host.String() + "/30", "dev", n.hostLink},
		{"link", "set", n.hostLink, "up"},
		{"-n", n.Name, "link", "set", "lo", "up"},
		{"-n", n.Name, "addr", "add", peerAddr.String() + "/30", "dev", peer},
		{"-n", n.Name, "link", "set", peer, "up"},
		// Every address of the /24 is the namespace's own.
		{"-n", n.Name, "route", "add", "local", n.Subnet.String(), "dev", "lo"},
		{"route", "add", n.Subnet.String(), "via", peerAddr.String(), "dev", n.hostLink},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Close closes the listeners and counters opened in the namespace and deletes it,
// with its veth pair and route.
func (n *Netns) Close() error {
	n.mu.Lock()
	closers := n.closers
	n.closers = nil
	n.mu.Unlock()
	for _, c := range closers {
		c()
	}
	var errs []error
	if err := ip("link", "del", n.hostLink); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		errs = append(errs, err)
	}
	if err := ip("netns", "del", n.Name); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (n *Netns) onClose(f func()) {
	n.mu.Lock()
	n.closers = append(n.closers, f)
	n.mu.Unlock()
}

// Do runs fn on a thread that has entered the namespace: sockets fn opens belong to
// it for good, whichever thread uses them later. The thread is never returned to
// the pool, so nothing else ever runs in the namespace by accident.
func (n *Netns) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open("/run/netns/" + n.Name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Listen opens an accepting listener on each address inside the namespace; Close
// closes them.
func (n *Netns) Listen(addrs []netip.AddrPort) error {
	var lns []net.Listener
	err := n.Do(func() error {
		for _, a := range addrs {
			ln, err := net.Listen("tcp", a.String())
			if err != nil {
				return err
			}
			lns = append(lns, ln)
		}
		return nil
	})
	for _, ln := range lns {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	n.onClose(func() {
		for _, ln := range lns {
			ln.Close()
		}
	})
	return err
}

// SYNCounter counts the TCP SYNs (without ACK) that reach the namespace, with the
// kernel's arrival time of the first and the last.
type SYNCounter struct {
	fd          int
	done        chan struct{}
	mu          sync.Mutex
	count       int
	first, last time.Time
}

// CountSYNs starts counting the SYNs that arrive in the namespace from now on.
func (n *Netns) CountSYNs() (*SYNCounter, error) {
	c := &SYNCounter{fd: -1, done: make(chan struct{})}
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		if err != nil {
			return fmt.Errorf("raw socket: %w", err)
		}
		c.fd = fd
		return nil
	})
	if err != nil {
		return nil, err
	}
	_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
	if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
		unix.Close(c.fd)
		return nil, fmt.Errorf("SO_TIMESTAMPNS: %w", err)
	}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(c.fd)
		return nil, fmt.Errorf("SO_RCVTIMEO: %w", err)
	}
	stop := make(chan struct{})
	go c.read(stop)
	var once sync.Once
	n.onClose(func() { once.Do(func() { close(stop); <-c.done; unix.Close(c.fd) }) })
	return c, nil
}

func (c *SYNCounter) read(stop chan struct{}) {
	defer close(c.done)
	buf := make([]byte, 256)
	oob := make([]byte, 128)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, 0)
		if err != nil {
			continue // the receive timeout: look at stop again
		}
		if n < 20 || buf[0]>>4 != 4 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+14 || buf[ihl+13]&0x12 != 0x02 {
			continue
		}
		at := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= 16 {
					ts := *(*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
					at = time.Unix(ts.Unix())
				}
			}
		}
		c.mu.Lock()
		if c.count == 0 {
			c.first = at
		}
		c.count++
		c.last = at
		c.mu.Unlock()
	}
}

// Snapshot returns the SYNs counted so far and the arrival times of the first and
// the last.
func (c *SYNCounter) Snapshot() (count int, first, last time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count, c.first, c.last
}
