//go:build linux

package doctor

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// holdEnv makes the test binary a helper process that holds a TCP port on 127.0.0.1:
// it prints the port and keeps it until stdin closes.
const holdEnv = "PORTPATROL_TEST_HOLD_PORT"

// netnsEnv makes the test binary run the inside half of TestDoctorTimeoutNetns.
const netnsEnv = "PORTPATROL_TEST_NETNS_PORT"

func TestMain(m *testing.M) {
	if os.Getenv(holdEnv) != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr().(*net.TCPAddr).Port)
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func newDoctor(t *testing.T) *Doctor {
	t.Helper()
	return New(Config{Timeout: time.Second, Nft: "-"})
}

func freePort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(p)
}

func step(t *testing.T, r *Report, name string) Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in %+v", name, r.Steps)
	return Step{}
}

func text(r *Report) string {
	var b bytes.Buffer
	_, _ = r.WriteTo(&b)
	return b.String()
}

func wantCause(t *testing.T, r *Report, problem bool, substr string) {
	t.Helper()
	if r.Problem != problem || !strings.Contains(r.Cause, substr) {
		t.Errorf("got problem=%v cause %q, want problem=%v and a cause with %q\n%s", r.Problem, r.Cause, problem, substr, text(r))
	}
	out := text(r)
	if !strings.Contains(out, "Likely cause: ") || !strings.Contains(out, "Next step: ") {
		t.Errorf("report lacks Likely cause/Next step:\n%s", out)
	}
}

func TestConnectFine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	r := newDoctor(t).Connect(context.Background(), "127.0.0.1", port)
	wantCause(t, r, false, "accepts connections")
	if s := step(t, r, "process"); !strings.Contains(strings.Join(s.Evidence, "\n"), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("process step: got %+v, want this test's pid %d", s, os.Getpid())
	}
}

func TestConnectRefused(t *testing.T) {
	port := freePort(t)
	r := newDoctor(t).Connect(context.Background(), "127.0.0.1", port)
	wantCause(t, r, true, fmt.Sprintf("nothing listens on TCP port %d", port))
	if s := step(t, r, "connect"); s.Status != StatusProblem || !strings.HasPrefix(s.Summary, string(patrol.ClassRefused)) {
		t.Errorf("connect step: got %+v, want refused", s)
	}
}

// TestConnectWrongBindAddress dials 127.0.0.2 while the service listens on 127.0.0.1.
func TestConnectWrongBindAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	r := newDoctor(t).Connect(context.Background(), "127.0.0.2", port)
	wantCause(t, r, true, "listens on 127.0.0.1 only, and you dialled 127.0.0.2")
	if s := step(t, r, "listeners"); s.Status != StatusProblem {
		t.Errorf("listeners step: got %+v, want a problem", s)
	}
}

// TestConnectIPv6Only dials 127.0.0.1 while the service listens on ::1.
func TestConnectIPv6Only(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	r := newDoctor(t).Connect(context.Background(), "127.0.0.1", port)
	wantCause(t, r, true, "listens on ::1 only, and you dialled 127.0.0.1")
}

func TestConnectAcceptQueueFull(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	const backlog = 2
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := uint16(sa.(*unix.SockaddrInet4).Port)
	var wg sync.WaitGroup
	for n := 0; n < backlog+3; n++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 300*time.Millisecond); err == nil {
				t.Cleanup(func() { c.Close() })
			}
		}()
	}
	wg.Wait()
	r := newDoctor(t).Connect(context.Background(), "127.0.0.1", port)
	wantCause(t, r, true, "accept queue")
	if s := step(t, r, "accept queue"); s.Status != StatusProblem {
		t.Errorf("accept queue step: got %+v, want a problem", s)
	}
	if s := step(t, r, "connect"); !strings.HasPrefix(s.Summary, string(patrol.ClassTimeout)) {
		t.Errorf("connect step: got %+v, want a timeout", s)
	}
}

func TestConnectUnresolvable(t *testing.T) {
	r := newDoctor(t).Connect(context.Background(), "no-such-host.invalid", 80)
	wantCause(t, r, true, "does not resolve")
}

// TestBindHeldByAnotherProcess holds a port in a child process and asks why binding it
// fails.
func TestBindHeldByAnotherProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("child said %q", line)
	}
	r := newDoctor(t).Bind(context.Background(), inventory.TCP, netip.MustParseAddr("127.0.0.1"), uint16(port))
	wantCause(t, r, true, fmt.Sprintf("in use by pid %d", cmd.Process.Pid))
	// The wildcard address conflicts with it too.
	r = newDoctor(t).Bind(context.Background(), inventory.TCP, netip.Addr{}, uint16(port))
	wantCause(t, r, true, fmt.Sprintf("in use by pid %d", cmd.Process.Pid))
}

func TestBindFree(t *testing.T) {
	port := freePort(t)
	r := newDoctor(t).Bind(context.Background(), inventory.TCP, netip.MustParseAddr("127.0.0.1"), port)
	wantCause(t, r, false, "is free and binding works")
}

func TestBindAddressNotHere(t *testing.T) {
	r := newDoctor(t).Bind(context.Background(), inventory.TCP, netip.MustParseAddr("192.0.2.1"), freePort(t))
	wantCause(t, r, true, "192.0.2.1 is not an address of this host")
}

// TestBindPrivileged raises net.ipv4.ip_unprivileged_port_start in a fake /proc/sys so
// that a free port counts as privileged.
func TestBindPrivileged(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "net", "ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	start := strconv.Itoa(int(port) + 1)
	if err := os.WriteFile(filepath.Join(root, "net", "ipv4", "ip_unprivileged_port_start"), []byte(start+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := New(Config{Nft: "-", SysctlRoot: root})
	r := d.Bind(context.Background(), inventory.TCP, netip.MustParseAddr("127.0.0.1"), port)
	s := step(t, r, "privilege")
	if !strings.Contains(s.Summary, "below net.ipv4.ip_unprivileged_port_start="+start) {
		t.Errorf("privilege step: got %+v, want the port reported below %s", s, start)
	}
	if hasBindCap() {
		wantCause(t, r, false, "CAP_NET_BIND_SERVICE")
	} else {
		wantCause(t, r, true, "lacks CAP_NET_BIND_SERVICE")
	}
}

// TestDoctorTimeoutNetns creates a network namespace whose nftables input chain drops
// a port, listens on that port inside it, and expects the doctor (run inside it by
// re-executing this test binary under ip netns exec) to blame the firewall.
func TestDoctorTimeoutNetns(t *testing.T) {
	if p := os.Getenv(netnsEnv); p != "" {
		insideNetns(t, p)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("creating a network namespace needs root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y iproute2 nftables)", tool)
		}
	}
	ns := fmt.Sprintf("pp-doctor-%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("ip", "-n", ns, "link", "set", "lo", "up")
	const port = 4567
	nft := []string{"ip", "netns", "exec", ns, "nft"}
	run(append(nft, "add", "table", "inet", "pptest")...)
	run(append(nft, "add", "chain", "inet", "pptest", "input", "{ type filter hook input priority 0 ; policy accept ; }")...)
	run(append(nft, "add", "rule", "inet", "pptest", "input", "tcp", "dport", strconv.Itoa(port), "drop")...)
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestDoctorTimeoutNetns$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", netnsEnv, port))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDoctorTimeoutNetns") {
		t.Fatalf("inside the namespace: %v\n%s", err, out)
	}
	t.Logf("inside the namespace:\n%s", out)
}

func insideNetns(t *testing.T, p string) {
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := New(Config{Timeout: 500 * time.Millisecond}).Connect(context.Background(), "127.0.0.1", uint16(port))
	t.Log("\n" + text(r))
	wantCause(t, r, true, "the firewall drops it")
	if s := step(t, r, "connect"); !strings.HasPrefix(s.Summary, string(patrol.ClassTimeout)) {
		t.Errorf("connect step: got %+v, want a timeout", s)
	}
	if s := step(t, r, "firewall"); s.Status != StatusProblem || !strings.Contains(strings.Join(s.Evidence, " "), fmt.Sprintf("tcp dport %d drop", port)) {
		t.Errorf("firewall step: got %+v, want the drop rule as evidence", s)
	}
}
