package probe

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// needHalfOpen returns an Env for the test, closed when it ends, and its half-open
// prober. It skips the test where raw sockets are not allowed (not root, no
// CAP_NET_RAW), except in CI, which runs as root.
func needHalfOpen(t *testing.T) (*Env, *halfOpener) {
	t.Helper()
	env := &Env{}
	closeAtEnd(t, env)
	h, err := env.halfOpen()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("half-open probes unavailable in CI: %v", err)
		}
		t.Skipf("half-open probes need CAP_NET_RAW (run the tests as root): %v", err)
	}
	return env, h
}

// accepted drains fd's accept queue and says how many connections it held, waiting up
// to d for at least want of them.
func accepted(fd, want int, d time.Duration) int {
	_ = unix.SetNonblock(fd, true)
	n := 0
	deadline := time.Now().Add(d)
	for {
		c, _, err := unix.Accept(fd)
		if err == nil {
			unix.Close(c)
			n++
			continue
		}
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHalfOpen(t *testing.T) {
	leakCheck(t)
	env, _ := needHalfOpen(t)
	fd, ap := testsvc.RawListener(t, 16)
	closed := closedTCPAddr(t)

	for range 50 {
		wantResult(t, runProbe(t, "tcp://"+ap.String(), Module{}, env), patrol.ClassOK)
	}
	if n := accepted(fd, 0, 0); n != 0 {
		t.Errorf("half-open: the listener's accept queue got %d connections, want none", n)
	}
	res := runProbe(t, "tcp://"+ap.String()+"?handshake=full", Module{}, env)
	wantResult(t, res, patrol.ClassOK)
	if n := accepted(fd, 1, 5*time.Second); n != 1 {
		t.Errorf("handshake=full: the listener's accept queue got %d connections, want 1", n)
	}
	res = runProbe(t, "tcp://"+closed+"?handshake=half", Module{}, env)
	wantResult(t, res, patrol.ClassRefused, "connect "+closed, "connection refused")
	if _, ok := res.Phase("connect"); !ok {
		t.Errorf("got phases %v, want a connect phase", res.Phases)
	}
}

// The same over IPv6, on ::1.
func TestHalfOpenIPv6(t *testing.T) {
	leakCheck(t)
	env, h := needHalfOpen(t)
	if h.fd6 < 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("no IPv6 raw socket in CI")
		}
		t.Skip("no IPv6 raw socket here")
	}
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	conns := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(conns)
				return
			}
			conns <- c
		}
	}()
	open := "tcp://" + ln.Addr().String()
	for range 20 {
		wantResult(t, runProbe(t, open, Module{}, env), patrol.ClassOK)
	}
	select {
	case c := <-conns:
		c.Close()
		t.Error("half-open checks: the listener accepted a connection, want none")
	case <-time.After(200 * time.Millisecond):
	}
	wantResult(t, runProbe(t, open+"?handshake=full", Module{}, env), patrol.ClassOK)
	select {
	case c := <-conns:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Error("handshake=full: the listener accepted no connection within 5s, want 1")
	}
	ln.Close()
	for c := range conns {
		c.Close()
		t.Error("the listener accepted more than the full handshake's connection")
	}
	res := runProbe(t, open+"?handshake=half", Module{}, env)
	wantResult(t, res, patrol.ClassRefused, "connection refused")
}

// fullQueue returns a loopback listener whose accept queue is full, so that it drops
// SYNs: a connect to it waits, and a half-open check gets no answer.
func fullQueue(t *testing.T) netip.AddrPort {
	t.Helper()
	_, ap := testsvc.RawListener(t, 0)
	// A backlog of 0 holds one connection; fill it.
	for range 2 {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(c) })
		_ = unix.Connect(c, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	}
	time.Sleep(50 * time.Millisecond)
	return ap
}

// A listener whose accept queue is full drops SYNs: the half-open check times out, as
// a connect does.
func TestHalfOpenFullQueue(t *testing.T) {
	leakCheck(t)
	env, _ := needHalfOpen(t)
	ap := fullQueue(t)
	res := runProbe(t, "tcp://"+ap.String()+"?timeout=300ms", Module{}, env)
	wantResult(t, res, patrol.ClassTimeout, "timed out")
	if res.Duration < 250*time.Millisecond || res.Duration > 2*time.Second {
		t.Errorf("took %s, want about the 300ms timeout", res.Duration)
	}
}

// openFDs lists the process's open descriptors as "number → what", such as
// "7 → socket:[4711]" or "9 → anon_inode:[eventpoll]".
func openFDs(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]bool{}
	for _, e := range ents {
		if what, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fds[e.Name()+" → "+what] = true
		}
	}
	return fds
}

// added lists the descriptors of now that were not open before.
func added(before, now map[string]bool) []string {
	var fds []string
	for fd := range now {
		if !before[fd] {
			fds = append(fds, fd)
		}
	}
	sort.Strings(fds)
	return fds
}

// Close stops the receiver and the connect poller and closes every descriptor the Env
// opened (the leak check, registered first, sees no goroutine of theirs); the probes
// built on it go on working by connecting, and a closed Env refuses handshake=half.
func TestEnvClose(t *testing.T) {
	leakCheck(t)
	needHalfOpen(t)
	lfd, ap := testsvc.RawListener(t, 16)
	full := fullQueue(t)
	before := openFDs(t)

	env := &Env{}
	open := build(t, "tcp://"+ap.String(), Module{}, env)
	waits := build(t, "tcp://"+full.String()+"?handshake=full&timeout=200ms", Module{}, env)
	try := open.Try()
	if try == nil {
		t.Fatal("got no Try for a half-open check of this host, want one")
	}
	if res, ok := try(); !ok || res.Class != patrol.ClassOK {
		t.Errorf("Try: got %v %s (%q), want true ok", ok, res.Class, res.Error)
	}
	wantResult(t, open.Run(context.Background()), patrol.ClassOK)
	if n := accepted(lfd, 0, 0); n != 0 {
		t.Errorf("before Close: the listener's accept queue got %d connections, want none", n)
	}
	// A connect the kernel cannot answer at once waits in the poller.
	wantResult(t, waits.Run(context.Background()), patrol.ClassTimeout, "timed out")
	opened := added(before, openFDs(t))
	// Raw sockets, reserved ports, two epoll sets and their eventfds at least.
	if len(opened) < 8 {
		t.Errorf("got descriptors %q opened by the Env in use, want at least 8", opened)
	}

	if err := env.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	now := openFDs(t)
	for _, fd := range opened {
		if now[fd] {
			t.Errorf("descriptor %s is still open after Close, want it closed", fd)
		}
	}
	if err := env.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}
	if res, ok := try(); ok {
		t.Errorf("Try after Close: got true %s, want false", res.Class)
	}
	wantResult(t, open.Run(context.Background()), patrol.ClassOK)
	if n := accepted(lfd, 1, 5*time.Second); n != 1 {
		t.Errorf("after Close: the listener's accept queue got %d connections, want 1 (a connect)", n)
	}
	wantResult(t, waits.Run(context.Background()), patrol.ClassTimeout, "timed out")
	tg, err := patrol.ParseTarget("tcp://" + ap.String() + "?handshake=half")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(tg, Module{}, env); err == nil || !strings.Contains(err.Error(), "open probe environment") {
		t.Errorf("New(handshake=half) on a closed Env: got %v, want an error about the closed environment", err)
	}
	if err := env.HalfOpenSupported(); err == nil {
		t.Error("HalfOpenSupported on a closed Env: got nil, want an error")
	}
}

// Many probes at once, including several of the same port (more than there are
// reserved source ports, so some fall back to connect), all answer correctly.
func TestHalfOpenConcurrent(t *testing.T) {
	leakCheck(t)
	env, _ := needHalfOpen(t)
	var addrs []string
	for range 100 {
		_, ap := testsvc.RawListener(t, 512)
		addrs = append(addrs, "tcp://"+ap.String())
	}
	same := addrs[0]
	closed := "tcp://" + closedTCPAddr(t)
	var probes []*Probe
	var wants []patrol.Class
	for i, a := range addrs {
		probes = append(probes, build(t, a, Module{}, env))
		wants = append(wants, patrol.ClassOK)
		if i%10 == 0 {
			probes = append(probes, build(t, closed, Module{}, env))
			wants = append(wants, patrol.ClassRefused)
		}
	}
	for range 3 * halfOpenPorts {
		probes = append(probes, build(t, same, Module{}, env))
		wants = append(wants, patrol.ClassOK)
	}
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make(chan error, len(probes))
		for i, p := range probes {
			wg.Go(func() {
				if res := p.Run(context.Background()); res.Class != wants[i] {
					errs <- fmt.Errorf("round %d: %s: got %s (%s), want %s", round, p.id, res.Class, res.Error, wants[i])
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			return
		}
	}
}

// Replies that do not answer a waiting probe, or are not TCP/IPv4 at all, are ignored.
func TestHalfOpenDeliver(t *testing.T) {
	h := &halfOpener{waiting: map[hoKey]*hoWait{}}
	peer := [4]byte{127, 0, 0, 9}
	k := hoKey{addr: netip.AddrFrom4(peer).As16(), port: 8080, sport: 40000}
	w := &hoWait{seq: 1000, ch: make(chan struct{})}
	h.waiting[k] = w
	reply := func(flags byte, ack uint32, from [4]byte) []byte {
		var b [44]byte
		synPacket4(b[:], from, [4]byte{127, 0, 0, 1}, k.port, k.sport, 5)
		binary.BigEndian.PutUint32(b[28:], ack)
		b[33] = flags
		return b[:]
	}
	deliver := func(b []byte) {
		if addr, tcp := ipv4Reply(b); tcp != nil {
			h.deliver(addr, tcp)
		}
	}
	for _, b := range [][]byte{
		nil,
		{0x60, 0, 0, 0},                          // IPv6
		make([]byte, 30),                         // too short
		reply(0x12, 999, peer),                   // wrong ack
		reply(0x12, 1001, [4]byte{127, 0, 0, 8}), // another peer
	} {
		deliver(b)
	}
	h.deliver(k.addr, []byte{1, 2, 3}) // a truncated segment
	if r := w.reply.Load(); r != 0 {
		t.Fatalf("a stray packet was delivered: %d", r)
	}
	deliver(reply(0x14, 1001, peer)) // RST+ACK
	<-w.ch
	if r := w.reply.Load(); r != replyRefused {
		t.Errorf("RST delivered as %d, want refused", r)
	}
	if len(h.waiting) != 0 {
		t.Errorf("waiter not removed: %v", h.waiting)
	}
}

// The SYN carries a valid TCP checksum: summing the segment with its pseudo-header
// gives all ones.
func TestSynPacketChecksum(t *testing.T) {
	var b [44]byte
	src, dst := [4]byte{10, 1, 2, 3}, [4]byte{192, 0, 2, 7}
	synPacket4(b[:], src, dst, 40000, 443, 0xdeadbeef)
	sum := uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:])) + 6 + 24
	for i := 20; i < 44; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	if sum != 0xffff {
		t.Errorf("checksum does not verify: %#x", sum)
	}
	if b[33] != 0x02 || binary.BigEndian.Uint32(b[24:]) != 0xdeadbeef {
		t.Errorf("flags %#x seq %#x", b[33], binary.BigEndian.Uint32(b[24:]))
	}
}

// nsListenEnv makes the test binary a listener inside a network namespace: it listens
// on the address the variable holds, prints "ready", and exits when stdin closes.
const nsListenEnv = "PORTPATROL_HALFOPEN_LISTEN"

// TestMain also checks, with no exception, that no goroutine outlives the tests: every
// Env a test opens is closed, and with it its receiver and poller.
func TestMain(m *testing.M) {
	if addr := os.Getenv(nsListenEnv); addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		ln.Close()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestHalfOpenRemote checks handshake=half against an address that is not this
// host's: a network namespace the test creates, joined by a veth pair. There the
// reply arrives after the send, through the receiver: open, refused (RST from the
// namespace's kernel) and dropped by an nftables rule (timeout).
func TestHalfOpenRemote(t *testing.T) {
	leakCheck(t)
	env, h := needHalfOpen(t)
	skip := t.Skipf
	if os.Getenv("CI") == "true" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("creating a network namespace needs root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			skip("%s is not installed (apt-get install -y iproute2 nftables)", tool)
		}
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	pid := os.Getpid()
	ns := fmt.Sprintf("pp-halfopen-%d", pid)
	host, peer := fmt.Sprintf("pph%d", pid%100000), fmt.Sprintf("ppn%d", pid%100000)
	// A /30 of 10.254.0.0/16 picked by pid, so parallel runs do not collide.
	n := (pid % 16000) * 4
	hostIP := fmt.Sprintf("10.254.%d.%d", n/256, n%256+1)
	nsIP := fmt.Sprintf("10.254.%d.%d", n/256, n%256+2)
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	run("ip", "link", "set", peer, "netns", ns)
	run("ip", "addr", "add", hostIP+"/30", "dev", host)
	run("ip", "link", "set", host, "up")
	run("ip", "-n", ns, "addr", "add", nsIP+"/30", "dev", peer)
	run("ip", "-n", ns, "link", "set", peer, "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")
	// IPv6 too, on a unique local /64 (nodad: usable at once).
	hostIP6 := fmt.Sprintf("fd00:9e:%x::1", pid%65536)
	nsIP6 := fmt.Sprintf("fd00:9e:%x::2", pid%65536)
	run("ip", "addr", "add", hostIP6+"/64", "dev", host, "nodad")
	run("ip", "-n", ns, "addr", "add", nsIP6+"/64", "dev", peer, "nodad")
	const openPort, closedPort, droppedPort = 4001, 4002, 4003
	nft := []string{"ip", "netns", "exec", ns, "nft"}
	run(append(nft, "add", "table", "inet", "pptest")...)
	run(append(nft, "add", "chain", "inet", "pptest", "input", "{ type filter hook input priority 0 ; policy accept ; }")...)
	run(append(nft, "add", "rule", "inet", "pptest", "input", "tcp", "dport", strconv.Itoa(droppedPort), "drop")...)

	for _, addr := range []string{
		fmt.Sprintf("%s:%d", nsIP, openPort), fmt.Sprintf("%s:%d", nsIP, droppedPort), fmt.Sprintf("[%s]:%d", nsIP6, openPort),
	} {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s", nsListenEnv, addr))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close()
			cmd.Wait()
		})
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("listener in the namespace: %q %v", line, err)
		}
	}

	target := func(port int, opts string) string {
		return fmt.Sprintf("tcp://%s:%d?handshake=half%s", nsIP, port, opts)
	}
	for range 3 {
		res := runProbe(t, target(openPort, ""), Module{}, env)
		wantResult(t, res, patrol.ClassOK)
		t.Logf("open: %s", res.Duration)
	}
	res := runProbe(t, target(closedPort, ""), Module{}, env)
	wantResult(t, res, patrol.ClassRefused, "connection refused")
	t.Logf("closed: %s", res.Duration)
	res = runProbe(t, target(droppedPort, "&timeout=500ms"), Module{}, env)
	wantResult(t, res, patrol.ClassTimeout, "timed out")
	t.Logf("dropped: %s", res.Duration)
	if h.fd6 >= 0 {
		target6 := func(port int) string { return fmt.Sprintf("tcp://[%s]:%d?handshake=half", nsIP6, port) }
		res = runProbe(t, target6(openPort), Module{}, env)
		wantResult(t, res, patrol.ClassOK)
		t.Logf("open over IPv6: %s", res.Duration)
		wantResult(t, runProbe(t, target6(closedPort), Module{}, env), patrol.ClassRefused, "connection refused")
	}
	// auto takes the connect path for an address that is not this host's.
	wantResult(t, runProbe(t, fmt.Sprintf("tcp://%s:%d", nsIP, openPort), Module{}, env), patrol.ClassOK)
}
