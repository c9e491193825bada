package automation

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// memRecorder keeps records in memory, in order.
type memRecorder struct {
	mu   sync.Mutex
	recs []auditlog.Record
	fail bool
}

func (m *memRecorder) Append(_ context.Context, r auditlog.Record) (auditlog.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return auditlog.Entry{}, fmt.Errorf("store is down")
	}
	m.recs = append(m.recs, r)
	return auditlog.Entry{Seq: int64(len(m.recs)), Record: r}, nil
}

func (m *memRecorder) all() []auditlog.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]auditlog.Record(nil), m.recs...)
}

// find returns the records of a kind (and outcome, when not empty).
func (m *memRecorder) find(kind, outcome string) []auditlog.Record {
	var out []auditlog.Record
	for _, r := range m.all() {
		if r.Kind == kind && (outcome == "" || r.Outcome == outcome) {
			out = append(out, r)
		}
	}
	return out
}

func (m *memRecorder) dump() string {
	var b strings.Builder
	for _, r := range m.all() {
		fmt.Fprintf(&b, "  %s/%s actor=%s step=%s reasons=%q\n", r.Kind, r.Outcome, r.Actor, r.Step, r.Reasons)
	}
	return b.String()
}

// fakeClock moves only when slept on or advanced.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// The test binary doubles as the programs the exec steps run: with PP_HELPER=1 in the
// environment, TestHelperProcess acts out the command after "--".
func TestHelperProcess(t *testing.T) {
	if os.Getenv("PP_HELPER") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	switch args[0] {
	case "start": // start ADDR PIDFILE: start a detached service on ADDR, then exit
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "--", "serve", args[1])
		cmd.Env = []string{"PP_HELPER=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		_ = os.WriteFile(args[2], []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
		// Wait until it listens, as a service manager's start does.
		for i := 0; i < 300; i++ {
			if c, err := net.Dial("tcp", args[1]); err == nil {
				_ = c.Close()
				os.Exit(0)
			}
			time.Sleep(20 * time.Millisecond)
		}
		os.Exit(1)
	case "serve": // serve ADDR: accept and answer "up" until killed
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			os.Exit(1)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(0)
			}
			_, _ = c.Write([]byte("up\n"))
			_ = c.Close()
		}
	case "touch": // touch FILE
		if err := os.WriteFile(args[1], []byte("rolled back\n"), 0o644); err != nil {
			os.Exit(1)
		}
	case "fail":
		fmt.Println("told to fail")
		os.Exit(3)
	}
	os.Exit(0)
}

// helperArgv is the argv that runs TestHelperProcess with the given command.
func helperArgv(cmd ...string) []string {
	return append([]string{os.Args[0], "-test.run=^TestHelperProcess$", "--"}, cmd...)
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// killPidfile kills the process whose pid the file holds.
func killPidfile(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// dialProbe is a real TCP connect probe of the alert's target.
func dialProbe(_ context.Context, a patrol.Alert) (bool, string) {
	t := targetOf(a)
	c, err := net.DialTimeout("tcp", net.JoinHostPort(t.Host, t.Port), time.Second)
	if err != nil {
		return false, err.Error()
	}
	_ = c.Close()
	return true, "connect ok"
}

func alertFor(id, target string, sev patrol.Severity, labels map[string]string) patrol.Alert {
	return patrol.Alert{ID: id, Fingerprint: "fp-" + target, Rule: "unreachable", Class: patrol.AlertUnreachable, Severity: sev,
		State: patrol.AlertPending, Target: target, Labels: labels, Summary: target + " refused"}
}

// waitFor polls cond until it holds or 30 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tempFile(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }
