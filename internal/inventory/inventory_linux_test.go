//go:build linux

package inventory

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/portpatrol/portpatrol/internal/testsvc"
	"golang.org/x/sys/unix"
)

// ssLine is one socket as ss(8) prints it.
type ssLine struct {
	netid, state  string
	recvQ, sendQ  uint32
	local, remote netip.AddrPort
	pids          []int
}

var ssPID = regexp.MustCompile(`pid=(\d+)`)

// runSS runs ss with args (which must include -H and -n) and parses its lines. With
// -t or -u alone ss omits the Netid column; netid then is "".
// unavailable skips a test whose prerequisite this machine lacks, except under CI=true:
// the CI machine is set up to provide it (scripts/deps.sh), so there its absence is a
// failure, not a reason to pass without running.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: the CI machine must provide this)", msg)
	}
	t.Skip(msg)
}

func runSS(t *testing.T, args ...string) []ssLine {
	t.Helper()
	if _, err := exec.LookPath("ss"); err != nil {
		unavailable(t, "ss (iproute2) is not installed")
	}
	out, err := exec.Command("ss", args...).Output()
	if err != nil {
		t.Fatalf("ss %v: %v", args, err)
	}
	withNetid := strings.Contains(strings.Join(args, " "), "u") && strings.Contains(strings.Join(args, " "), "t")
	var lines []ssLine
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		var s ssLine
		if withNetid {
			s.netid, f = f[0], f[1:]
		}
		if len(f) < 5 {
			t.Fatalf("ss line %q: too few fields", l)
		}
		s.state = f[0]
		rq, _ := strconv.ParseUint(f[1], 10, 32)
		sq, _ := strconv.ParseUint(f[2], 10, 32)
		s.recvQ, s.sendQ = uint32(rq), uint32(sq)
		s.local = parseSSAddr(t, f[3])
		s.remote = parseSSAddr(t, f[4])
		for _, m := range ssPID.FindAllStringSubmatch(strings.Join(f[5:], " "), -1) {
			p, _ := strconv.Atoi(m[1])
			s.pids = append(s.pids, p)
		}
		lines = append(lines, s)
	}
	return lines
}

func parseSSAddr(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	i := strings.LastIndexByte(s, ':')
	host, port := s[:i], s[i+1:]
	host = strings.Trim(host, "[]")
	if j := strings.IndexByte(host, '%'); j >= 0 {
		host = host[:j]
	}
	if host == "*" {
		host = "::"
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	a, err := netip.ParseAddr(host)
	if err != nil {
		t.Fatalf("ss address %q: %v", s, err)
	}
	return netip.AddrPortFrom(a, uint16(p))
}

func addrPort(t *testing.T, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// fullQueue opens a TCP listener on 127.0.0.1 with the given backlog that never
// accepts, and connects backlog+extra times so that its accept queue overflows.
func fullQueue(t *testing.T, backlog, extra int) netip.AddrPort {
	t.Helper()
	_, ap := testsvc.RawListener(t, backlog)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for n := 0; n < backlog+extra; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", ap.String(), 300*time.Millisecond)
			if err == nil {
				mu.Lock()
				t.Cleanup(func() { c.Close() })
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ap
}

// testListeners opens what the tests look for: TCP on 127.0.0.1 and ::1 with
// established connections carrying some bytes, and UDP on 127.0.0.1.
type testListeners struct {
	tcp4, tcp6, udp4 netip.AddrPort
	conns            int
}

func openListeners(t *testing.T) testListeners {
	t.Helper()
	var tl testListeners
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln4.Close() })
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		unavailable(t, "no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { ln6.Close() })
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	tl.tcp4, tl.tcp6, tl.udp4 = addrPort(t, ln4.Addr()), addrPort(t, ln6.Addr()), addrPort(t, pc.LocalAddr())
	tl.conns = 3
	for n := 0; n < tl.conns; n++ {
		c, err := net.Dial("tcp4", ln4.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln4.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); s.Close() })
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write(make([]byte, 500)); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 500)); err != nil {
			t.Fatal(err)
		}
	}
	return tl
}

func find(socks []Socket, proto Proto, local netip.AddrPort) *Socket {
	for n := range socks {
		if socks[n].Proto == proto && socks[n].Local == local {
			return &socks[n]
		}
	}
	return nil
}

func findSS(lines []ssLine, state string, local netip.AddrPort) *ssLine {
	for n := range lines {
		if lines[n].local == local && (state == "" || lines[n].state == state) {
			return &lines[n]
		}
	}
	return nil
}

func TestListenersAgreeWithSS(t *testing.T) {
	tl := openListeners(t)
	full := fullQueue(t, 2, 3)
	ctx := context.Background()
	for _, procNet := range []bool{false, true} {
		t.Run(fmt.Sprintf("procnet=%v", procNet), func(t *testing.T) {
			inv := New(Config{ProcNetOnly: procNet})
			socks, err := inv.Listeners(ctx, Filter{Owners: true, Established: true, Traffic: !procNet})
			if err != nil {
				t.Fatal(err)
			}
			ss := runSS(t, "-Htulnp")
			for _, w := range []struct {
				proto Proto
				addr  netip.AddrPort
			}{{TCP, tl.tcp4}, {TCP, tl.tcp6}, {UDP, tl.udp4}, {TCP, full}} {
				s := find(socks, w.proto, w.addr)
				if s == nil {
					t.Errorf("%s %s: not listed", w.proto, w.addr)
					continue
				}
				l := findSS(ss, "", w.addr)
				if l == nil {
					t.Fatalf("%s %s: not in ss output", w.proto, w.addr)
				}
				if s.State.String() != l.state {
					t.Errorf("%s: got state %s, ss says %s", w.addr, s.State, l.state)
				}
				if s.RecvQ != l.recvQ {
					t.Errorf("%s: got recv-q %d, ss says %d", w.addr, s.RecvQ, l.recvQ)
				}
				if !procNet && s.SendQ != l.sendQ {
					t.Errorf("%s: got send-q %d, ss says %d", w.addr, s.SendQ, l.sendQ)
				}
				if s.Owner == nil || len(l.pids) == 0 || s.Owner.PID != l.pids[0] || s.Owner.PID != os.Getpid() {
					t.Errorf("%s: got owner %+v, ss says pids %v, want %d", w.addr, s.Owner, l.pids, os.Getpid())
				}
			}
			if s := find(socks, TCP, full); s != nil {
				if !procNet && !s.QueueFull() {
					t.Errorf("%s: got recv-q %d backlog %d, want a full queue", full, s.RecvQ, s.SendQ)
				}
			}
			s := find(socks, TCP, tl.tcp4)
			if s == nil {
				return
			}
			estab := 0
			for _, l := range runSS(t, "-Htanp") {
				if l.state == "ESTAB" && l.local == tl.tcp4 {
					estab++
				}
			}
			if s.Established != estab || estab != tl.conns {
				t.Errorf("%s: got %d established, ss counts %d, opened %d", tl.tcp4, s.Established, estab, tl.conns)
			}
			if !procNet && (s.BytesIn != uint64(tl.conns*1000) || s.BytesOut != uint64(tl.conns*500)) {
				t.Errorf("%s: got %d bytes in, %d out; want %d, %d", tl.tcp4, s.BytesIn, s.BytesOut, tl.conns*1000, tl.conns*500)
			}
		})
	}
}

func TestSocketsAgreeWithSS(t *testing.T) {
	tl := openListeners(t)
	inv := New(Config{})
	socks, err := inv.Sockets(context.Background(), Filter{Proto: TCP, Owners: true, Traffic: true})
	if err != nil {
		t.Fatal(err)
	}
	ss := runSS(t, "-Htanp")
	n := 0
	for _, l := range ss {
		if l.remote != tl.tcp4 && l.local != tl.tcp4 {
			continue
		}
		n++
		var got *Socket
		for i := range socks {
			if socks[i].Local == l.local && socks[i].Remote == l.remote {
				got = &socks[i]
			}
		}
		if got == nil {
			t.Errorf("ss lists %s %s → %s, Sockets does not", l.state, l.local, l.remote)
			continue
		}
		if got.State.String() != l.state || got.Owner == nil || len(l.pids) == 0 || got.Owner.PID != l.pids[0] {
			t.Errorf("%s → %s: got %s owner %+v; ss says %s pids %v", l.local, l.remote, got.State, got.Owner, l.state, l.pids)
		}
		if got.State == StateEstablished && got.Local.Port() == tl.tcp4.Port() && got.BytesIn != 1000 {
			t.Errorf("%s → %s: got %d bytes in, want 1000", l.local, l.remote, got.BytesIn)
		}
	}
	if n != 1+2*tl.conns {
		t.Errorf("ss shows %d sockets of %s, want %d", n, tl.tcp4, 1+2*tl.conns)
	}
	filtered, err := inv.Sockets(context.Background(), Filter{Proto: TCP, States: StatesOf(StateEstablished), Port: tl.tcp4.Port()})
	if err != nil {
		t.Fatal(err)
	}
	if len(filtered) != tl.conns {
		t.Errorf("port filter: got %d established sockets on %d, want %d", len(filtered), tl.tcp4.Port(), tl.conns)
	}
}

func TestCountersSeeOverflows(t *testing.T) {
	inv := New(Config{})
	before, err := inv.Counters()
	if err != nil {
		t.Fatal(err)
	}
	fullQueue(t, 1, 4)
	deadline := time.Now().Add(3 * time.Second)
	for {
		after, err := inv.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if after.ListenOverflows > before.ListenOverflows && after.ListenDrops > before.ListenDrops {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %+v after %+v, want ListenOverflows and ListenDrops to grow", after, before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOwnerAndResources(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	inv := New(Config{})
	socks, err := inv.Listeners(context.Background(), Filter{Proto: TCP, Port: addrPort(t, ln.Addr()).Port(), Owners: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(socks) != 1 || socks[0].Owner == nil {
		t.Fatalf("got %+v, want one socket with an owner", socks)
	}
	o := socks[0].Owner
	exe, _ := os.Executable()
	if o.PID != os.Getpid() || o.UID != uint32(os.Geteuid()) || len(o.Cmdline) == 0 || o.Cmdline[0] != os.Args[0] {
		t.Errorf("got %+v, want pid %d uid %d cmdline[0] %q (%s)", o, os.Getpid(), os.Geteuid(), os.Args[0], exe)
	}
	if age := time.Since(o.Start); age < 0 || age > 10*time.Minute {
		t.Errorf("got start %s, %s ago; want the test's own start", o.Start, age)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	r, err := inv.Resources(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if r.MaxOpenFiles != int64(lim.Cur) || r.OpenFiles < 3 || r.RSS <= 0 || r.Threads < 1 {
		t.Errorf("got %+v, want max open files %d, some open files, RSS and threads", r, lim.Cur)
	}
}

// fakeProc builds a procfs tree in a temporary directory: pid → fd → socket inode.
func fakeProc(t *testing.T, procs map[int]map[int]uint64) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "stat"), []byte("cpu 1 2 3\nbtime 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for pid, fds := range procs {
		setFakeProc(t, root, pid, fds)
	}
	return root
}

func setFakeProc(t *testing.T, root string, pid int, fds map[int]uint64) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (svc%d) S 1 1 1 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 500 0 100 0", pid, pid)
	files := map[string]string{
		"stat":    stat,
		"status":  "Name:\tsvc\nUid:\t0\t0\t0\t0\n",
		"cmdline": fmt.Sprintf("/usr/bin/svc%d\x00--port\x00%d\x00", pid, pid),
		"cgroup":  "0::/system.slice/svc.service\n",
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for fd, ino := range fds {
		if err := os.Symlink(fmt.Sprintf("socket:[%d]", ino), filepath.Join(dir, "fd", strconv.Itoa(fd))); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOwnersCache(t *testing.T) {
	root := fakeProc(t, map[int]map[int]uint64{
		100: {0: 1, 3: 1001},
		200: {4: 2002, 5: 2003},
	})
	now := time.Unix(1700000100, 0)
	inv := New(Config{ProcRoot: root, Now: func() time.Time { return now }, LookupUser: func(uint32) string { return "root" }})
	ctx := context.Background()
	got, err := inv.Owners(ctx, []uint64{1001, 2003, 9999})
	if err != nil {
		t.Fatal(err)
	}
	if o := got[1001]; o.PID != 100 || o.FD != 3 || o.Command != "svc100" || o.User != "root" ||
		len(o.Cmdline) != 3 || o.Cmdline[2] != "100" || !o.Start.Equal(time.Unix(1700000005, 0)) {
		t.Errorf("inode 1001: got %+v, want pid 100 fd 3", o)
	}
	if o := got[2003]; o.PID != 200 || o.FD != 5 {
		t.Errorf("inode 2003: got %+v, want pid 200 fd 5", o)
	}
	if _, ok := got[9999]; ok {
		t.Errorf("inode 9999: got an owner, want none")
	}
	// The socket moves to another process, and the unowned one appears.
	setFakeProc(t, root, 200, map[int]uint64{4: 2002})
	setFakeProc(t, root, 300, map[int]uint64{7: 2003, 8: 9999})
	got, err = inv.Owners(ctx, []uint64{1001, 2003, 9999})
	if err != nil {
		t.Fatal(err)
	}
	if o := got[2003]; o.PID != 300 || o.FD != 7 || o.Command != "svc300" {
		t.Errorf("moved inode 2003: got %+v, want pid 300 fd 7", o)
	}
	if _, ok := got[9999]; ok {
		t.Errorf("inode 9999 within the negative TTL: got an owner, want it not searched for")
	}
	now = now.Add(11 * time.Second)
	got, err = inv.Owners(ctx, []uint64{9999})
	if err != nil {
		t.Fatal(err)
	}
	if o := got[9999]; o.PID != 300 || o.FD != 8 {
		t.Errorf("inode 9999 after the negative TTL: got %+v, want pid 300 fd 8", o)
	}
}

// TestRealServices looks for the machine's own database servers by port and name.
func TestRealServices(t *testing.T) {
	inv := New(Config{})
	for _, svc := range []struct {
		port uint16
		comm string
	}{{6379, "redis-server"}, {3306, "mariadbd"}, {5432, "postgres"}} {
		t.Run(svc.comm, func(t *testing.T) {
			socks, err := inv.Listeners(context.Background(), Filter{Proto: TCP, Port: svc.port, Owners: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(socks) == 0 {
				unavailable(t, "nothing listens on TCP port %d; start %s to run this test", svc.port, svc.comm)
			}
			ss := runSS(t, "-Htlnp")
			for _, s := range socks {
				if s.Owner == nil || s.Owner.Command != svc.comm {
					t.Errorf("%s: got owner %+v, want %s", s.Local, s.Owner, svc.comm)
					continue
				}
				if l := findSS(ss, "LISTEN", s.Local); l == nil || len(l.pids) == 0 || l.pids[0] != s.Owner.PID || l.sendQ != s.SendQ {
					t.Errorf("%s: got pid %d backlog %d; ss says %+v", s.Local, s.Owner.PID, s.SendQ, l)
				}
			}
		})
	}
}

func TestDiff(t *testing.T) {
	a := Socket{Proto: TCP, Local: netip.MustParseAddrPort("127.0.0.1:80"), Inode: 1}
	b := Socket{Proto: TCP, Local: netip.MustParseAddrPort("127.0.0.1:81"), Inode: 2}
	restarted := a
	restarted.Inode = 3
	gone, added := Diff([]Socket{a, b}, []Socket{b, restarted})
	if len(gone) != 1 || gone[0] != a || len(added) != 1 || added[0] != restarted {
		t.Errorf("got gone %v added %v, want gone [a] added [restarted a]", gone, added)
	}
}

// TestV6Only checks IPV6_V6ONLY against ss -e, and what a wildcard listener covers.
// The listeners bind the wildcard address briefly; no traffic is sent.
func TestV6Only(t *testing.T) {
	only, err := net.Listen("tcp6", "[::]:0") // Go sets IPV6_V6ONLY for "tcp6"
	if err != nil {
		unavailable(t, "no IPv6: %v", err)
	}
	defer only.Close()
	dual, err := net.Listen("tcp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dual.Close()
	inv := New(Config{})
	socks, err := inv.Listeners(context.Background(), Filter{Proto: TCP})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ss", "-Htlne").Output()
	if err != nil {
		unavailable(t, "ss: %v", err)
	}
	v4 := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		ln         net.Listener
		v6only     bool
		coversIPv4 bool
	}{{only, true, false}, {dual, false, true}} {
		ap := addrPort(t, tc.ln.Addr())
		s := find(socks, TCP, netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port()))
		if s == nil {
			t.Fatalf("[::]:%d not listed", ap.Port())
		}
		ssSays := false
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, fmt.Sprintf("]:%d ", ap.Port())) {
				ssSays = strings.Contains(l, "v6only:1")
			}
		}
		if s.V6Only != tc.v6only || ssSays != tc.v6only {
			t.Errorf("[::]:%d: got v6only %v, ss says %v, want %v", ap.Port(), s.V6Only, ssSays, tc.v6only)
		}
		if got := s.Covers(v4); got != tc.coversIPv4 {
			t.Errorf("[::]:%d covers 127.0.0.1: got %v, want %v", ap.Port(), got, tc.coversIPv4)
		}
		if !s.Covers(netip.IPv6Loopback()) {
			t.Errorf("[::]:%d: got no cover of ::1, want it", ap.Port())
		}
	}
}

// TestTCPInfoOffsets checks the hand-written tcp_info offsets against x/sys/unix.
func TestTCPInfoOffsets(t *testing.T) {
	var ti unix.TCPInfo
	if got := unsafe.Offsetof(ti.Bytes_acked); got != tcpiBytesAcked {
		t.Errorf("bytes_acked at %d, want %d", got, tcpiBytesAcked)
	}
	if got := unsafe.Offsetof(ti.Bytes_received); got != tcpiBytesReceived {
		t.Errorf("bytes_received at %d, want %d", got, tcpiBytesReceived)
	}
}

// TestOwnersLargeProcess scans a process with thousands of descriptors — read in many
// getdents batches, by every worker at once — among small ones: each socket goes to its
// lowest PID, and within it to its lowest descriptor, whatever the number of workers.
func TestOwnersLargeProcess(t *testing.T) {
	big := make(map[int]uint64, 3000)
	for fd := range 3000 {
		big[fd] = 100000 + uint64(fd)
	}
	big[40], big[2500], big[2999] = 7777, 7777, 8888
	procs := map[int]map[int]uint64{
		10: big,
		20: {0: 1, 3: 7777},
	}
	for pid := 30; pid < 60; pid++ {
		procs[pid] = map[int]uint64{0: 1, 1: uint64(pid)}
	}
	procs[45][2] = 9999
	root := fakeProc(t, procs)
	want := map[uint64]fdRef{7777: {10, 40}, 8888: {10, 2999}, 9999: {45, 2}, 102000: {10, 2000}}
	for _, workers := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			for range 10 {
				inv := New(Config{ProcRoot: root, Workers: workers, LookupUser: func(uint32) string { return "root" }})
				got, err := inv.Owners(context.Background(), []uint64{7777, 8888, 9999, 102000, 4242})
				if err != nil {
					t.Fatal(err)
				}
				for ino, w := range want {
					if o := got[ino]; o.PID != w.pid || o.FD != w.fd {
						t.Errorf("inode %d: got pid %d fd %d, want pid %d fd %d", ino, o.PID, o.FD, w.pid, w.fd)
					}
				}
				if o, ok := got[4242]; ok {
					t.Errorf("inode 4242: got pid %d, want no owner", o.PID)
				}
			}
		})
	}
}

// TestOwnersBeyondCount finds sockets of this process held at descriptors above the
// number it has open, where probing numbers stops and getdents lists the rest.
func TestOwnersBeyondCount(t *testing.T) {
	var want []uint64
	fds := map[uint64]int{}
	for _, fd := range []int{700, 900} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f, err := ln.(*net.TCPListener).File()
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Dup3(int(f.Fd()), fd, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Cleanup(func() { unix.Close(fd) })
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		want = append(want, st.Ino)
		fds[st.Ino] = fd
	}
	got, err := New(Config{}).Owners(context.Background(), want)
	if err != nil {
		t.Fatal(err)
	}
	for _, ino := range want {
		if o := got[ino]; o.PID != os.Getpid() || o.FD != fds[ino] {
			t.Errorf("inode %d: got pid %d fd %d, want pid %d fd %d", ino, o.PID, o.FD, os.Getpid(), fds[ino])
		}
	}
}

// TestPortFilter asks the kernel for the established sockets of one local port: the
// accepted ends of the connections to a listener, without their client ends.
func TestPortFilter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	const conns = 3
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
	}
	for _, tc := range []struct {
		name  string
		ports []uint16
		want  int // sockets with port as local port
	}{
		{"one port", []uint16{port}, conns},
		{"among others", []uint16{1, port - 1, port, 65535}, conns},
		{"not this one", []uint16{port + 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs := []dumpReq{
				{proto: TCP, states: StatesOf(StateEstablished), sports: tc.ports},
				{proto: TCP, ipv6: true, states: StatesOf(StateEstablished), sports: tc.ports},
			}
			got, foreign := 0, 0
			err := dumpNetlink(context.Background(), reqs, func(s *Socket) {
				if s.Local.Port() == port {
					got++
				} else if !slices.Contains(tc.ports, s.Local.Port()) {
					foreign++
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || foreign != 0 {
				t.Errorf("got %d sockets on port %d and %d on ports not asked for, want %d and 0", got, port, foreign, tc.want)
			}
		})
	}
}
