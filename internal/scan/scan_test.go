//go:build linux

package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// listen opens an accepting loopback listener and returns its port; accepted
// connections are closed at once and counted in accepted, when not nil.
func listen(t *testing.T, addr string, accepted *atomic.Int64) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if accepted != nil {
				accepted.Add(1)
			}
			c.Close()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// listenFull opens a listener with the given backlog that never accepts, and fills its
// accept queue, so further SYNs are dropped. It returns 0 when port is taken.
func listenFull(t *testing.T, addr netip.Addr, port uint16, backlog int) uint16 {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(port), Addr: addr.As4()}); err != nil {
		unix.Close(fd)
		return 0
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	sa, _ := unix.Getsockname(fd)
	port = uint16(sa.(*unix.SockaddrInet4).Port)
	target := netip.AddrPortFrom(addr, port).String()
	// A queue of backlog b holds b+1 connections; one more shows it is full.
	for i := 0; i <= backlog+1; i++ {
		c, err := net.DialTimeout("tcp", target, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return port
}

func quickScanner() *Scanner {
	return &Scanner{Timeout: 300 * time.Millisecond, Retries: 1}
}

func TestScanFindsListeners(t *testing.T) {
	var want []uint16
	for range 5 {
		want = append(want, listen(t, "127.0.0.1", nil))
	}
	slices.Sort(want)
	ports := slices.Clone(want)
	for _, p := range want {
		ports = append(ports, p+1, p-1)
	}
	l, _ := ParsePorts(PortList(dedupe(ports)).String())
	rep, err := quickScanner().Scan(context.Background(), []string{"127.0.0.1"}, l)
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Hosts[0].Open()
	// Neighbouring ports may be someone else's listener; every listener must be there.
	for _, p := range want {
		if !slices.Contains(got, p) {
			t.Errorf("open ports %v lack listener %d", got, p)
		}
	}
	if rep.Hosts[0].Closed+len(rep.Hosts[0].Ports) != len(l) {
		t.Errorf("closed %d + reported %d != %d ports", rep.Hosts[0].Closed, len(rep.Hosts[0].Ports), len(l))
	}
}

func dedupe(p []uint16) []uint16 {
	slices.Sort(p)
	return slices.Compact(p)
}

func TestScanIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	rep, err := quickScanner().Scan(context.Background(), []string{"::1"}, PortList{port})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Hosts[0].Open(); !slices.Equal(got, []uint16{port}) {
		t.Errorf("open = %v, want [%d]", got, port)
	}
}

func TestFullQueueIsFilteredNotClosed(t *testing.T) {
	addr := netip.MustParseAddr("127.0.0.77")
	port := listenFull(t, addr, 0, 0)
	rep, err := quickScanner().Scan(context.Background(), []string{addr.String()}, PortList{port})
	if err != nil {
		t.Fatal(err)
	}
	h := rep.Hosts[0]
	if len(h.Ports) != 1 || h.Ports[0].State != Filtered {
		t.Fatalf("ports = %+v, want %d filtered (nmap -sT says filtered for a full accept queue)", h.Ports, port)
	}
	if rep.Stats.Retries == 0 {
		t.Errorf("no retries for a port that did not answer")
	}
}

func TestRefusesOutsideAllowBeforeSending(t *testing.T) {
	var accepted atomic.Int64
	port := listen(t, "127.0.0.1", &accepted)
	tests := []struct {
		name    string
		allow   []netip.Prefix
		targets []string
		naming  string
	}{
		{"public address", nil, []string{"127.0.0.1", "192.0.2.7"}, "192.0.2.7"},
		{"network wider than allowed", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/24")}, []string{"127.0.0.1", "127.0.0.0/16"}, "127.0.0.0/16"},
		{"ipv6 outside", nil, []string{"127.0.0.1", "2001:db8::1"}, "2001:db8::1"},
		{"loopback not in a narrowed list", []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}, []string{"127.0.0.1"}, "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Scanner{Allow: tt.allow}
			_, err := s.Scan(context.Background(), tt.targets, PortList{port})
			var na *NotAllowedError
			if !errors.As(err, &na) {
				t.Fatalf("err = %v, want *NotAllowedError", err)
			}
			if !strings.Contains(err.Error(), tt.naming) || !strings.Contains(err.Error(), "allowed networks") {
				t.Errorf("error %q should name %s and the allow list", err, tt.naming)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if n := accepted.Load(); n != 0 {
		t.Errorf("the allowed listener saw %d connections; a refused scan must send nothing", n)
	}
}

func TestResolve(t *testing.T) {
	hosts, err := Resolve(context.Background(), nil, []string{"127.0.0.0/30", "127.0.0.2", "localhost", "[::1]"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hosts {
		got = append(got, h.Addr.String()+"<"+h.Spec+">")
	}
	want := []string{"127.0.0.0<127.0.0.0/30>", "127.0.0.1<127.0.0.0/30>", "127.0.0.2<127.0.0.0/30>", "127.0.0.3<127.0.0.0/30>", "::1<[::1]>"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := Resolve(context.Background(), nil, []string{"127.0.0.0/8"}, nil, 0); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("127.0.0.0/8: err = %v, want a too-many-addresses error", err)
	}
	if _, err := Resolve(context.Background(), nil, []string{"127.0.0.0/33"}, nil, 0); err == nil {
		t.Errorf("bad CIDR accepted")
	}
}

// TestTransientErrorsAreRetried runs a scan while the process is out of file
// descriptors: socket() fails with EMFILE until a moment later, and every listener
// must still be found open, none reported closed.
func TestTransientErrorsAreRetried(t *testing.T) {
	var want []uint16
	for range 20 {
		want = append(want, listen(t, "127.0.0.1", nil))
	}
	slices.Sort(want)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	orig := rl
	// Fill every descriptor below a lowered limit.
	var fillers []int
	low := rl
	low.Cur = 512
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_NOFILE, &orig) })
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		fillers = append(fillers, fd)
	}
	// One descriptor free: the worker's epoll takes it, and socket() meets EMFILE.
	unix.Close(fillers[len(fillers)-1])
	fillers = fillers[:len(fillers)-1]
	release := time.AfterFunc(30*time.Millisecond, func() {
		for _, fd := range fillers {
			unix.Close(fd)
		}
	})
	defer release.Stop()
	s := quickScanner()
	s.Workers = 1
	rep, err := s.ScanHosts(context.Background(), []Host{{Spec: "127.0.0.1", Addr: netip.MustParseAddr("127.0.0.1")}}, want)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Hosts[0].Open(); !slices.Equal(got, want) {
		t.Errorf("open = %v, want %v (reported: %+v)", got, want, rep.Hosts[0].Ports)
	}
	if rep.Stats.Transient == 0 {
		t.Errorf("no transient errors seen; the test did not exhaust descriptors")
	}
	t.Logf("stats: %+v", rep.Stats)
}

func TestRateLimit(t *testing.T) {
	ports, _ := ParsePorts("40001-40200")
	s := Scanner{Rate: 1000, Allow: DefaultAllow}
	rep, err := s.Scan(context.Background(), []string{"127.0.0.1"}, ports)
	if err != nil {
		t.Fatal(err)
	}
	// 200 connects at 1000/s cannot finish in much under 200 ms.
	if rep.Elapsed < 150*time.Millisecond {
		t.Errorf("200 connects at 1000/s took %s", rep.Elapsed)
	}
}

func TestProgressAndCancel(t *testing.T) {
	var calls atomic.Int64
	var last atomic.Int64
	s := Scanner{Progress: func(done, total int64) { calls.Add(1); last.Store(done) }}
	ports, _ := ParsePorts("50001-50300")
	if _, err := s.Scan(context.Background(), []string{"127.0.0.1"}, ports); err != nil {
		t.Fatal(err)
	}
	if calls.Load() == 0 || last.Load() != 300 {
		t.Errorf("progress called %d times, last done %d; want at least once, ending at 300", calls.Load(), last.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Scan(ctx, []string{"127.0.0.1"}, AllPorts()); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled scan: err = %v, want context.Canceled", err)
	}
}

type fakeIdent map[uint16]Ident

func (f fakeIdent) Identify(_ context.Context, a netip.AddrPort) Ident { return f[a.Port()] }

func goldenReport() *Report {
	start := time.Date(2026, 11, 1, 9, 30, 0, 0, time.UTC)
	return &Report{
		Start: start, Elapsed: 312 * time.Millisecond, Ports: AllPorts(),
		Hosts: []HostResult{
			{Host: Host{Spec: "localhost", Name: "localhost", Addr: netip.MustParseAddr("127.0.0.1")},
				Ports: []PortResult{
					{Port: 22, State: Open, Service: "ssh", Reason: "syn-ack"},
					{Port: 6379, State: Open, Service: "redis", Reason: "syn-ack"},
					{Port: 45678, State: Filtered, Reason: "no-response"},
				}, Closed: 65532},
			{Host: Host{Spec: "127.0.0.2", Addr: netip.MustParseAddr("127.0.0.2")}, Closed: 65535},
		},
		Stats: Stats{Probes: 131072, Retries: 2, Concurrency: 4096},
	}
}

func TestOutputGolden(t *testing.T) {
	rep := goldenReport()
	IdentifyOpen(context.Background(), rep, fakeIdent{
		22:   {Service: "unknown", Class: "ok", Detail: "no ssh prober yet; TCP connect ok"},
		6379: {Service: "redis", Class: "ok", Detail: "redis_version:7.0.15"},
	}, 0)
	var table, gnmap bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteGreppable(&gnmap, rep, "portpatrol scan -p - localhost 127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", table.Bytes())
	golden(t, "report.gnmap", gnmap.Bytes())
	golden(t, "report.json", append(js, '\n'))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// randomLoopback returns n distinct random addresses in 127.0.0.0/8, avoiding
// 127.0.0.0/24 where the machine's own services live.
func randomLoopback(r *rand.Rand, n int) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for len(out) < n {
		a := netip.AddrFrom4([4]byte{127, byte(1 + r.IntN(254)), byte(r.IntN(256)), byte(1 + r.IntN(254))})
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
