package automation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// testNetns is a network namespace a test creates, with loopback up.
type testNetns struct {
	name string
	fd   int
}

// newNetns creates a namespace named after the test and this process, removed at
// cleanup. Without root or ip it skips, except under CI=true.
func newNetns(t *testing.T) *testNetns {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		missing = "ip (iproute2)"
	} else if _, err := exec.LookPath("nft"); err != nil {
		missing = "nft (nftables)"
	}
	if missing != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("this test needs %s, which CI must have", missing)
		}
		t.Skipf("this test needs %s to create a network namespace", missing)
	}
	name := fmt.Sprintf("pp-%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "").Replace(t.Name())), os.Getpid())
	if len(name) > 60 {
		name = name[:60]
	}
	sh(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	sh(t, "ip", "-n", name, "link", "set", "lo", "up")
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(fd) })
	return &testNetns{name: name, fd: fd}
}

func sh(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// do runs f on a thread inside the namespace; sockets f opens live there.
func (n *testNetns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine if restoring fails
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = unix.Close(self) }()
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := unix.Setns(self, unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// serve answers every connection with banner, inside the namespace.
func (n *testNetns) serve(t *testing.T, addr, banner string) {
	t.Helper()
	var ln net.Listener
	if err := n.do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(banner))
			_ = c.Close()
		}
	}()
}

// read connects to addr inside the namespace and returns what it says.
func (n *testNetns) read(addr string) (string, error) {
	var got string
	err := n.do(func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	})
	return got, err
}

func switchConfig(mode string) Config {
	return Config{Mode: ModeOn, Playbooks: []Playbook{{Name: "failover", Mode: mode,
		Trigger: Trigger{Class: []string{"unreachable"}},
		Steps: []Step{{Name: "switch", Action: "switch_port", Risk: R2, Params: Params{Port: 8080, BackupPort: 8081},
			Verify: Verify{Window: 5 * time.Second, Interval: 100 * time.Millisecond}}}}}}
}

// An R2 switch_port waits for approval, refuses the requester's own, runs on another
// operator's, sends the port's traffic to the backup port, and its rollback removes the
// rule.
func TestSwitchPortInNamespace(t *testing.T) {
	ns := newNetns(t)
	sh(t, "ip", "netns", "exec", ns.name, "nft", "add", "table", "inet", RedirectTable)
	ns.serve(t, "127.0.0.1:8081", "backup\n")
	if _, err := ns.read("127.0.0.1:8080"); err == nil {
		t.Fatal("port 8080 answers before the switch")
	}
	probe := func(context.Context, patrol.Alert) (bool, string) {
		got, err := ns.read("127.0.0.1:8080")
		if err != nil {
			return false, err.Error()
		}
		return got == "backup\n", "answered " + strings.TrimSpace(got)
	}
	ctx := context.Background()
	rec, h := &memRecorder{}, &hooks{}
	deps := h.deps(rec, nil, probe)
	deps.Env.NetNS = ns.fd
	e, err := New(switchConfig(PlaybookAuto), deps)
	if err != nil {
		t.Fatal(err)
	}
	a := alertFor("a1", "tcp://127.0.0.1:8080", patrol.P0, nil)
	// Automatic handling in mode auto still waits: R2 needs an approver.
	e.HandleAlert(ctx, a)
	reqs := e.Requests()
	if len(reqs) != 1 || reqs[0].State != StatePending || reqs[0].RequestedBy != Actor {
		t.Fatalf("requests after the alert: %+v, want one pending, requested by %s", reqs, Actor)
	}
	if !strings.Contains(reqs[0].Plan.Diff, "tcp dport 8080 redirect to :8081") {
		t.Errorf("plan diff %q does not say what changes", reqs[0].Plan.Diff)
	}
	if _, err := ns.read("127.0.0.1:8080"); err == nil {
		t.Fatal("traffic moved before any approval")
	}
	// An operator asks for it by hand: her own approval is refused, another's runs it.
	if _, err := e.Deny(ctx, reqs[0].ID, Approver{Name: "alice"}, "asking by hand instead"); err != nil {
		t.Fatal(err)
	}
	req, err := e.RequestRun(ctx, a, "failover", 0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Approve(ctx, req.ID, Approver{Name: "alice", Roles: []string{"operator"}}, ""); !errors.Is(err, ErrOwnRequest) {
		t.Fatalf("alice approving her own request: got %v, want %v", err, ErrOwnRequest)
	}
	if _, err := e.Approve(ctx, req.ID, Approver{Name: "bob", Roles: []string{"operator"}}, "backup is warm"); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	got, err := ns.read("127.0.0.1:8080")
	if err != nil || got != "backup\n" {
		t.Fatalf("connect to 8080 after the switch: %q, %v; want the backup's banner\n%s", got, err, rec.dump())
	}
	if resolved, _, _ := h.get(); len(resolved) != 1 || !strings.Contains(resolved[0], "recovered by playbook failover step switch") {
		t.Errorf("resolved: %q", resolved)
	}
	ruleset := sh(t, "ip", "netns", "exec", ns.name, "nft", "list", "table", "inet", RedirectTable)
	if !strings.Contains(ruleset, `redirect to :8081`) || !strings.Contains(ruleset, "portpatrol switch_port 8080->8081") {
		t.Errorf("ruleset does not show the redirect:\n%s", ruleset)
	}
	// A second request for the same plan drifted: the rule is now there.
	req2, err := e.RequestRun(ctx, alertFor("a2", "tcp://127.0.0.1:8080", patrol.P0, nil), "failover", 0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	sp := &SwitchPort{Params: Params{Port: 8080, BackupPort: 8081}, NetNS: ns.fd}
	ch, _ := sp.Plan(Target{ID: "tcp://127.0.0.1:8080"})
	if err := sp.Rollback(ctx, ch); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Approve(ctx, req2.ID, Approver{Name: "bob"}, ""); !errors.Is(err, ErrDrifted) {
		t.Errorf("approving after the target changed: got %v, want %v", err, ErrDrifted)
	}
	ruleset = sh(t, "ip", "netns", "exec", ns.name, "nft", "list", "table", "inet", RedirectTable)
	if strings.Contains(ruleset, "redirect to") {
		t.Errorf("rollback left a rule:\n%s", ruleset)
	}
	if _, err := ns.read("127.0.0.1:8080"); err == nil {
		t.Error("port 8080 still answers after the rollback")
	}
}

// A verification that fails (no backup listens) rolls the rule back; a missing table
// fails the pre-check with a message a person can act on, and nothing is added.
func TestSwitchPortRollbackAndPreCheck(t *testing.T) {
	ns := newNetns(t)
	ctx := context.Background()
	probe := func(context.Context, patrol.Alert) (bool, string) {
		_, err := ns.read("127.0.0.1:8080")
		return err == nil, fmt.Sprint(err)
	}
	rec, h := &memRecorder{}, &hooks{}
	deps := h.deps(rec, newFakeClock(), probe)
	deps.Env.NetNS = ns.fd
	e, err := New(switchConfig(PlaybookAuto), deps)
	if err != nil {
		t.Fatal(err)
	}
	// No table yet.
	req, _ := e.RequestRun(ctx, alertFor("a1", "tcp://127.0.0.1:8080", patrol.P0, nil), "failover", 0, "alice")
	if _, err := e.Approve(ctx, req.ID, Approver{Name: "bob"}, ""); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	pc := rec.find(auditlog.KindExecution, "pre-check failed")
	if len(pc) != 1 || !strings.Contains(pc[0].Reasons[0], "nft add table inet portpatrol_redirect") {
		t.Fatalf("pre-check records: %+v; want one telling how to create the table\n%s", pc, rec.dump())
	}
	if out := sh(t, "ip", "netns", "exec", ns.name, "nft", "list", "ruleset"); strings.TrimSpace(out) != "" {
		t.Errorf("a failed pre-check left something behind:\n%s", out)
	}
	// With the table but no backup listening, verification fails and the rule goes.
	sh(t, "ip", "netns", "exec", ns.name, "nft", "add", "table", "inet", RedirectTable)
	req, _ = e.RequestRun(ctx, alertFor("a2", "tcp://127.0.0.1:8080", patrol.P0, nil), "failover", 0, "alice")
	if _, err := e.Approve(ctx, req.ID, Approver{Name: "bob"}, ""); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	if len(rec.find(auditlog.KindRollback, "rolled back")) != 1 {
		t.Fatalf("no rollback recorded\n%s", rec.dump())
	}
	if out := sh(t, "ip", "netns", "exec", ns.name, "nft", "list", "table", "inet", RedirectTable); strings.Contains(out, "redirect to") {
		t.Errorf("the rollback left the rule:\n%s", out)
	}
	_, escalated, _ := h.get()
	if len(escalated) != 2 || !strings.Contains(escalated[1], "verification failed") {
		t.Errorf("escalations: %q", escalated)
	}
}
