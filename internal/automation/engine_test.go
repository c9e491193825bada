package automation

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// hooks collects what the engine tells the alerting side.
type hooks struct {
	mu        sync.Mutex
	resolved  []string
	escalated []string
	pages     []string
}

func (h *hooks) deps(rec auditlog.Recorder, clk Clock, probe func(context.Context, patrol.Alert) (bool, string)) Deps {
	return Deps{Recorder: rec, Clock: clk, Probe: probe,
		Resolve: func(_ context.Context, a patrol.Alert, text string) {
			h.mu.Lock()
			h.resolved = append(h.resolved, a.ID+": "+text)
			h.mu.Unlock()
		},
		Escalate: func(_ context.Context, a patrol.Alert, tried string) {
			h.mu.Lock()
			h.escalated = append(h.escalated, a.ID+": "+tried)
			h.mu.Unlock()
		},
		Page: func(_ context.Context, text string) {
			h.mu.Lock()
			h.pages = append(h.pages, text)
			h.mu.Unlock()
		}}
}

func (h *hooks) get() (resolved, escalated, pages []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.resolved...), append([]string(nil), h.escalated...), append([]string(nil), h.pages...)
}

func restartPlaybook(mode string, argv []string, rollback []string) Config {
	st := Step{Name: "restart", Action: "exec", Risk: R1, Params: Params{Argv: argv, Env: []string{"PP_HELPER"}, Timeout: 20 * time.Second},
		Verify: Verify{Window: 10 * time.Second, Interval: 100 * time.Millisecond}}
	if rollback != nil {
		st.Rollback = &Params{Argv: rollback}
	}
	return Config{Mode: ModeOn, Playbooks: []Playbook{{Name: "restart-web", Mode: mode,
		Trigger: Trigger{Class: []string{"unreachable"}, Severity: []string{"P0"}}, Steps: []Step{st}}}}
}

// A service dies; an R1 exec playbook in mode auto starts it again (a real process that
// listens again), verification re-probes it, and the alert resolves as recovered.
func TestExecPlaybookRestartsDeadService(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := freeAddr(t)
	pidfile := tempFile(t, "svc.pid")
	t.Cleanup(func() { killPidfile(t, pidfile) })

	rec, h := &memRecorder{}, &hooks{}
	e, err := New(restartPlaybook(PlaybookAuto, helperArgv("start", addr, pidfile), nil), h.deps(rec, nil, dialProbe))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := dialProbe(context.Background(), alertFor("a1", "tcp://"+addr, patrol.P0, nil)); ok {
		t.Fatal("something already listens on the service's address")
	}
	e.HandleAlert(context.Background(), alertFor("a1", "tcp://"+addr, patrol.P0, nil))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the service does not listen again after the playbook: %v\n%s", err, rec.dump())
	}
	_ = c.Close()
	resolved, escalated, _ := h.get()
	if want := "a1: recovered by playbook restart-web step restart"; len(resolved) != 1 || resolved[0] != want {
		t.Errorf("resolved: got %q, want [%q]", resolved, want)
	}
	if len(escalated) != 0 {
		t.Errorf("escalated: got %q, want none", escalated)
	}
	for _, kind := range []string{auditlog.KindDecision, auditlog.KindExecution, auditlog.KindVerification} {
		if len(rec.find(kind, "")) == 0 {
			t.Errorf("no %s record\n%s", kind, rec.dump())
		}
	}
	if v := rec.find(auditlog.KindVerification, "recovered"); len(v) != 1 || !strings.Contains(strings.Join(v[0].Reasons, " "), "healthy after") {
		t.Errorf("verification records: got %+v, want one recovered with the probe's words", v)
	}
	if d := rec.find(auditlog.KindDecision, "run"); len(d) != 1 || !strings.Contains(strings.Join(d[0].Reasons, " "), "mode auto: runs automatically") {
		t.Errorf("decision: got %+v, want one run with the tier's reason", d)
	}
}

// A verification that fails runs the rollback and escalates with what was tried.
func TestFailedVerificationRollsBackAndEscalates(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := freeAddr(t)
	marker := tempFile(t, "rolled-back")
	rec, h := &memRecorder{}, &hooks{}
	clk := newFakeClock()
	// The "restart" exits 0 but starts nothing: the port stays shut.
	e, err := New(restartPlaybook(PlaybookAuto, helperArgv("noop"), helperArgv("touch", marker)), h.deps(rec, clk, dialProbe))
	if err != nil {
		t.Fatal(err)
	}
	e.HandleAlert(context.Background(), alertFor("a1", "tcp://"+addr, patrol.P0, nil))
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the rollback command did not run: %v\n%s", err, rec.dump())
	}
	resolved, escalated, _ := h.get()
	if len(resolved) != 0 {
		t.Errorf("resolved %q, want nothing resolved", resolved)
	}
	if len(escalated) != 1 || !strings.Contains(escalated[0], "tried: step restart") || !strings.Contains(escalated[0], "verification failed") {
		t.Errorf("escalated: got %q, want one with tried: step restart … verification failed", escalated)
	}
	if len(rec.find(auditlog.KindRollback, "rolled back")) != 1 || len(rec.find(auditlog.KindVerification, "failed")) != 1 {
		t.Errorf("want one failed verification and one rollback recorded\n%s", rec.dump())
	}
}

// A service that crash-loops is restarted the configured number of times, then the
// breaker stops automation on it and pages once.
func TestBreakerStopsCrashLoopAndPagesOnce(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	addr := freeAddr(t)
	rec, h := &memRecorder{}, &hooks{}
	clk := newFakeClock()
	cfg := restartPlaybook(PlaybookAuto, helperArgv("noop"), nil) // starts, then "crashes": nothing listens
	cfg.Breaker = Breaker{Attempts: 2, Per: time.Hour, Backoff: 10 * time.Second}
	e, err := New(cfg, h.deps(rec, clk, dialProbe))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e.HandleAlert(context.Background(), alertFor("crash-"+string(rune('a'+i)), "tcp://"+addr, patrol.P0, nil))
		clk.Advance(5 * time.Minute)
	}
	if got := len(rec.find(auditlog.KindExecution, "applied")); got != 2 {
		t.Errorf("executions: got %d, want 2 (the breaker's attempts)\n%s", got, rec.dump())
	}
	_, escalated, pages := h.get()
	if len(pages) != 1 || !strings.Contains(pages[0], "breaker open") {
		t.Errorf("pages: got %q, want exactly one about the open breaker", pages)
	}
	if len(escalated) != 5 {
		t.Errorf("escalations: got %d, want 5 (every alert escalates as usual)", len(escalated))
	}
	if got := rec.find(auditlog.KindDecision, "did nothing"); len(got) != 3 || !strings.Contains(strings.Join(got[0].Reasons, " "), "breaker open for exec on tcp://"+addr) {
		t.Errorf("did-nothing decisions: got %d, want 3 naming the breaker\n%s", len(got), rec.dump())
	}
	st := e.State()
	if len(st.Breakers) != 1 || !st.Breakers[0].Open {
		t.Errorf("state breakers: got %+v, want one open", st.Breakers)
	}
}

// The backoff between attempts doubles like a container's restart back-off.
func TestBreakerBackoff(t *testing.T) {
	l := newLimits(Config{Breaker: Breaker{Attempts: 5, Per: time.Hour, Backoff: 10 * time.Second, MaxDelay: 30 * time.Second}}.withDefaults())
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []time.Duration{0, 10 * time.Second, 20 * time.Second, 30 * time.Second, 30 * time.Second} {
		if i > 0 {
			if ok, _, _, _ := l.check("exec", "t", now.Add(want-time.Second)); ok {
				t.Errorf("attempt %d allowed %s early", i+1, time.Second)
			}
		}
		now = now.Add(want)
		if ok, why, _, _ := l.check("exec", "t", now); !ok {
			t.Fatalf("attempt %d refused after %s: %s", i+1, want, why)
		}
		l.record("exec", "t", now)
	}
}

// Modes: off recommends, shadow records, paused and acknowledged do nothing.
func TestModesRecordWithoutActing(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	marker := tempFile(t, "ran")
	for _, tt := range []struct {
		name, global, mode string
		pause, ack         bool
		want               string
	}{
		{"global off", ModeOff, PlaybookAuto, false, false, "automation.mode is off"},
		{"shadow", ModeOn, PlaybookShadow, false, false, "shadow mode"},
		{"paused", ModeOn, PlaybookAuto, true, false, "automation is paused"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec, h := &memRecorder{}, &hooks{}
			cfg := restartPlaybook(tt.mode, helperArgv("touch", marker), nil)
			cfg.Mode = tt.global
			e, err := New(cfg, h.deps(rec, newFakeClock(), dialProbe))
			if err != nil {
				t.Fatal(err)
			}
			if tt.pause {
				if err := e.Pause(context.Background(), "alice", "change freeze"); err != nil {
					t.Fatal(err)
				}
			}
			e.HandleAlert(context.Background(), alertFor("a1", "tcp://127.0.0.1:1", patrol.P0, nil))
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command ran")
			}
			if !strings.Contains(rec.dump(), tt.want) {
				t.Errorf("records do not say %q:\n%s", tt.want, rec.dump())
			}
			if len(rec.find(auditlog.KindExecution, "")) != 0 {
				t.Errorf("an execution was recorded:\n%s", rec.dump())
			}
		})
	}
	t.Run("no playbook", func(t *testing.T) {
		rec, h := &memRecorder{}, &hooks{}
		e, _ := New(restartPlaybook(PlaybookAuto, helperArgv("touch", marker), nil), h.deps(rec, newFakeClock(), dialProbe))
		e.HandleAlert(context.Background(), alertFor("a1", "tcp://127.0.0.1:1", patrol.P2, nil))
		if d := rec.find(auditlog.KindDecision, "no playbook"); len(d) != 1 || !strings.Contains(strings.Join(d[0].Reasons, " "), "severity P2 is not one of P0") {
			t.Errorf("want one 'no playbook' decision saying why:\n%s", rec.dump())
		}
	})
	t.Run("unrecorded decisions are not acted on", func(t *testing.T) {
		rec, h := &memRecorder{fail: true}, &hooks{}
		e, _ := New(restartPlaybook(PlaybookAuto, helperArgv("touch", marker), nil), h.deps(rec, newFakeClock(), dialProbe))
		e.HandleAlert(context.Background(), alertFor("a1", "tcp://127.0.0.1:1", patrol.P0, nil))
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the command ran although its decision could not be recorded")
		}
	})
}

// R2 in suggest mode waits; approvals are refused with reasons; an acknowledged alert
// voids its request.
func TestApprovalRules(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	marker := tempFile(t, "ran")
	cfg := restartPlaybook(PlaybookSuggest, helperArgv("touch", marker), nil)
	cfg.Playbooks[0].Steps[0].Risk = R3
	cfg.ServiceOwners = []string{"carol"}
	ctx := context.Background()
	rec, h := &memRecorder{}, &hooks{}
	clk := newFakeClock()
	e, err := New(cfg, h.deps(rec, clk, func(context.Context, patrol.Alert) (bool, string) { return true, "ok" }))
	if err != nil {
		t.Fatal(err)
	}
	a := alertFor("a1", "tcp://127.0.0.1:1", patrol.P0, nil)
	req, err := e.RequestRun(ctx, a, "restart-web", 0, "alice")
	if err != nil {
		t.Fatal(err)
	}
	check := func(err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("got %v, want %v", err, want)
		}
	}
	_, err = e.Approve(ctx, "nope", Approver{Name: "bob"}, "")
	check(err, ErrNotFound)
	_, err = e.Approve(ctx, req.ID, Approver{Name: "alice"}, "")
	check(err, ErrOwnRequest)
	_, err = e.Approve(ctx, req.ID, Approver{Name: Actor}, "")
	check(err, ErrOwnRequest)
	got, err := e.Approve(ctx, req.ID, Approver{Name: "bob"}, "looks right")
	if err != nil || got.State != StatePending || !strings.Contains(got.Needs, "service owner") {
		t.Fatalf("first approval: %+v, %v; want still pending, needing a service owner", got, err)
	}
	_, err = e.Approve(ctx, req.ID, Approver{Name: "bob"}, "")
	check(err, ErrTwice)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("an R3 step ran with one approval")
	}
	got, err = e.Approve(ctx, req.ID, Approver{Name: "carol"}, "")
	if err != nil || got.State != StateApproved {
		t.Fatalf("second approval by the service owner: %+v, %v", got, err)
	}
	e.Wait()
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the approved step did not run:\n%s", rec.dump())
	}
	_, err = e.Approve(ctx, req.ID, Approver{Name: "dave"}, "")
	check(err, ErrDecided)

	// Expiry, then an acknowledged alert voiding a request.
	a2 := alertFor("a2", "tcp://127.0.0.1:2", patrol.P0, nil)
	r2, _ := e.RequestRun(ctx, a2, "restart-web", 0, "alice")
	clk.Advance(DefaultApprovalExpiry + time.Second)
	_, err = e.Approve(ctx, r2.ID, Approver{Name: "bob"}, "")
	check(err, ErrExpired)
	a3 := alertFor("a3", "tcp://127.0.0.1:3", patrol.P0, nil)
	r3, _ := e.RequestRun(ctx, a3, "restart-web", 0, "alice")
	a3.State, a3.AckedBy = patrol.AlertAcknowledged, "erin"
	e.HandleAlert(ctx, a3)
	_, err = e.Approve(ctx, r3.ID, Approver{Name: "bob"}, "")
	check(err, ErrVoid)
	if len(rec.find(auditlog.KindExpiry, "expired")) != 1 || len(rec.find(auditlog.KindExpiry, "void")) != 1 {
		t.Errorf("want one expiry and one void recorded:\n%s", rec.dump())
	}
	// Break-glass needs a reason, then runs and is flagged.
	a4 := alertFor("a4", "tcp://127.0.0.1:4", patrol.P0, nil)
	r4, _ := e.RequestRun(ctx, a4, "restart-web", 0, "alice")
	_, err = e.BreakGlass(ctx, r4.ID, Approver{Name: "bob"}, " ")
	check(err, ErrNoReason)
	if _, err := e.BreakGlass(ctx, r4.ID, Approver{Name: "bob"}, "site down, owners unreachable"); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	if bg := rec.find(auditlog.KindControl, "break-glass"); len(bg) != 1 || !strings.Contains(strings.Join(bg[0].Reasons, " "), "flagged for review") {
		t.Errorf("break-glass records: %+v", bg)
	}
	// Deny.
	a5 := alertFor("a5", "tcp://127.0.0.1:5", patrol.P0, nil)
	r5, _ := e.RequestRun(ctx, a5, "restart-web", 0, "alice")
	if d, err := e.Deny(ctx, r5.ID, Approver{Name: "bob", Via: "slack:U0BOB"}, "not during the sale"); err != nil || d.State != StateDenied {
		t.Fatalf("deny: %+v, %v", d, err)
	}
	_, err = e.Approve(ctx, r5.ID, Approver{Name: "carol"}, "")
	check(err, ErrDecided)
	if d := rec.find(auditlog.KindDenial, "denied"); len(d) != 1 || d[0].Actor != "bob" || d[0].Reasons[0] != "denied by bob via slack:U0BOB: not during the sale" {
		t.Errorf("denial records: %+v, want one by bob saying it came from slack:U0BOB", d)
	}
	// An approval from chat is the same approver: alice from Slack may not approve
	// alice's own request, and it records where it came from.
	a6 := alertFor("a6", "tcp://127.0.0.1:6", patrol.P0, nil)
	r6, _ := e.RequestRun(ctx, a6, "restart-web", 0, "alice")
	_, err = e.Approve(ctx, r6.ID, Approver{Name: "alice", Via: "slack:U0ALICE"}, "")
	check(err, ErrOwnRequest)
	got, err = e.Approve(ctx, r6.ID, Approver{Name: "bob", Roles: []string{"approver"}, Via: "mattermost:bob"}, "from the phone")
	if err != nil || len(got.Approvals) != 1 || got.Approvals[0].Via != "mattermost:bob" {
		t.Fatalf("approval from chat: %+v, %v", got, err)
	}
	ap := rec.find(auditlog.KindApproval, "approved")
	if last := ap[len(ap)-1]; last.Actor != "bob" || last.PlanHash != r6.Plan.Hash || last.Reasons[0] != "approved by bob via mattermost:bob (approver): from the phone" {
		t.Errorf("last approval record: %+v", last)
	}
	e.Wait()
}

// Simulate replays alerts: what would run, what would need approval, which breaker
// would trip, and touches nothing.
func TestSimulate(t *testing.T) {
	marker := tempFile(t, "ran")
	cfg := restartPlaybook(PlaybookShadow, []string{"/usr/bin/touch", marker}, nil)
	cfg.Playbooks = append(cfg.Playbooks, Playbook{Name: "failover", Trigger: Trigger{Severity: []string{"P1"}},
		Steps: []Step{{Name: "switch", Action: "switch_port", Risk: R2, Params: Params{Port: 80, BackupPort: 81}}}})
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var alerts []patrol.Alert
	for i := range 3 {
		a := alertFor(fmt.Sprint("crash", i), "tcp://127.0.0.1:8080", patrol.P0, nil)
		a.StartsAt = t0.Add(time.Duration(i) * 10 * time.Minute)
		alerts = append(alerts, a)
	}
	slow := alertFor("slow", "tcp://127.0.0.1:80", patrol.P1, nil)
	slow.StartsAt = t0
	other := alertFor("p3", "tcp://127.0.0.1:81", patrol.P3, nil)
	other.StartsAt = t0.Add(time.Hour)
	alerts = append(alerts, slow, other)
	res, err := Simulate(cfg, alerts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res {
		line := r.Alert.ID + ":"
		if r.Playbook == "" {
			line += " no playbook"
		}
		for _, s := range r.Steps {
			line += " " + s.Step + "=" + s.Outcome
		}
		got = append(got, line)
	}
	want := []string{"crash0: restart=would run", "slow: switch=needs approval", "crash1: restart=would run",
		"crash2: restart=breaker would trip", "p3: no playbook"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the simulation ran a command")
	}
}

// More actions than the fleet limit within its window halt automation and page once;
// resume lifts the halt.
func TestFleetLimitHaltsAndPagesOnce(t *testing.T) {
	t.Setenv("PP_HELPER", "1")
	rec, h := &memRecorder{}, &hooks{}
	clk := newFakeClock()
	cfg := restartPlaybook(PlaybookAuto, helperArgv("noop"), nil)
	cfg.Fleet = Fleet{MaxActions: 2, Window: 10 * time.Minute}
	ok := func(context.Context, patrol.Alert) (bool, string) { return true, "ok" }
	e, err := New(cfg, h.deps(rec, clk, ok))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		e.HandleAlert(context.Background(), alertFor(fmt.Sprint("f", i), fmt.Sprintf("tcp://127.0.0.1:%d", 1000+i), patrol.P0, nil))
		clk.Advance(time.Minute)
	}
	if got := len(rec.find(auditlog.KindExecution, "applied")); got != 3 {
		t.Errorf("executions: got %d, want 3 (the third exceeds the limit of 2 and halts)\n%s", got, rec.dump())
	}
	_, _, pages := h.get()
	if len(pages) != 1 || !strings.Contains(pages[0], "fleet limit") {
		t.Errorf("pages: %q, want one about the fleet limit", pages)
	}
	if st := e.State(); !st.Paused || st.PausedBy != "fleet limit" {
		t.Errorf("state: %+v, want paused by the fleet limit", st)
	}
	if err := e.Resume(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	e.HandleAlert(context.Background(), alertFor("after", "tcp://127.0.0.1:2000", patrol.P0, nil))
	if got := len(rec.find(auditlog.KindExecution, "applied")); got != 4 {
		t.Errorf("after resume: %d executions, want 4", got)
	}
}
