package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/sqlite"
)

// reviewWorld runs a real engine whose decisions go into the hash chain of a real
// SQLite store: a step that runs, fails its verification and is rolled back; a breaker
// that then stops the same target; an R2 request approved by another person after the
// requester's own approval is refused; one denied; one run by break-glass; a pause and a
// resume. It returns the Log over that store and the configuration.
func reviewWorld(t *testing.T) (*auditlog.Log, Config) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(t.TempDir(), "pp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	l, err := auditlog.New(auditlog.Config{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(srv.Close)

	cfg := Config{Mode: ModeOn, ServiceOwners: []string{"carol"}, PolicyVersion: "2026-12-07", Breaker: Breaker{Attempts: 1},
		Playbooks: []Playbook{
			{Name: "restart-web", Mode: PlaybookAuto, Trigger: Trigger{Class: []string{"unreachable"}, Labels: []string{"service=web"}},
				Rollout: []string{"tier=non-critical"},
				Steps: []Step{{Name: "restart", Action: "http", Risk: R1, Params: Params{URL: srv.URL + "/restart"},
					Verify:   Verify{Window: 2 * time.Second, Interval: time.Second},
					Rollback: &Params{URL: srv.URL + "/undo"}}}},
			{Name: "failover", Mode: PlaybookSuggest, Trigger: Trigger{Labels: []string{"service=db"}},
				Steps: []Step{{Name: "switch", Action: "switch_port", Risk: R2, Params: Params{Port: 5432, BackupPort: 5433}}}},
			{Name: "redeploy", Mode: PlaybookSuggest, Trigger: Trigger{Labels: []string{"service=api"}},
				Steps: []Step{{Name: "hook", Action: "http", Risk: R3, Params: Params{URL: srv.URL + "/deploy"}}}},
		}}
	healthy := func(_ context.Context, a patrol.Alert) (bool, string) {
		if strings.Contains(a.Target, "web") {
			return false, "refused"
		}
		return true, "ok"
	}
	e, err := New(cfg, Deps{Recorder: l, Clock: newFakeClock(), Probe: healthy})
	if err != nil {
		t.Fatal(err)
	}
	web := map[string]string{"service": "web", "tier": "non-critical"}
	e.HandleAlert(ctx, alertFor("w1", "tcp://web:80", patrol.P0, web)) // runs, fails verification, rolled back
	e.HandleAlert(ctx, alertFor("w2", "tcp://web:80", patrol.P0, web)) // the breaker stops it

	// R3 requests are not switch_port, so no nftables is needed: only the approvals are
	// exercised on them; the R2 switch_port request is denied.
	e.HandleAlert(ctx, alertFor("d1", "tcp://db:5432", patrol.P1, map[string]string{"service": "db"}))
	api1 := alertFor("a1", "tcp://api:443", patrol.P1, map[string]string{"service": "api"})
	e.HandleAlert(ctx, api1)
	// In a pool of its own, so that the blast radius lets the same step act on it too.
	api2 := alertFor("a2", "tcp://api2:443", patrol.P1, map[string]string{"service": "api", "pool": "api-b"})
	e.HandleAlert(ctx, api2)
	var db1, ap1, ap2 string
	for _, r := range e.Requests() {
		switch r.AlertID {
		case "d1":
			db1 = r.ID
		case "a1":
			ap1 = r.ID
		case "a2":
			ap2 = r.ID
		}
	}
	if db1 == "" || ap1 == "" || ap2 == "" {
		t.Fatalf("want three pending requests, got %+v", e.Requests())
	}
	if _, err := e.Deny(ctx, db1, Approver{Name: "dave"}, "not during the sale"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Approve(ctx, ap1, Approver{Name: Actor, Roles: []string{"operator"}}, "self"); err == nil {
		t.Fatal("portpatrol approved its own request")
	}
	if _, err := e.Approve(ctx, ap1, Approver{Name: "alice", Roles: []string{"operator"}}, "looks right"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Approve(ctx, ap1, Approver{Name: "carol", Roles: []string{"operator"}}, "owner agrees"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.BreakGlass(ctx, ap2, Approver{Name: "root", Roles: []string{"admin"}}, "outage, owners unreachable"); err != nil {
		t.Fatal(err)
	}
	e.Wait()
	if err := e.Pause(ctx, "alice", "deploy"); err != nil {
		t.Fatal(err)
	}
	if err := e.Resume(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if calls.Load() < 4 { // restart, undo, the approved hook, the break-glass hook
		t.Fatalf("the webhook got %d calls, want at least 4", calls.Load())
	}
	return l, cfg
}

func buildReview(t *testing.T, l *auditlog.Log, cfg Config, from time.Time) *Review {
	t.Helper()
	rv := NewReview(cfg, from, time.Now().Add(time.Minute))
	if err := l.Entries(context.Background(), from, func(e auditlog.Entry) error { rv.Add(e); return nil }); err != nil {
		t.Fatal(err)
	}
	return rv.Finish()
}

// The review, built from the entries the engine wrote into a real store's chain, shows
// what each playbook may do, what ran, who approved and denied, what was rolled back,
// the breaker that tripped, and the break-glass flagged for review.
func TestReviewFromChain(t *testing.T) {
	l, cfg := reviewWorld(t)
	if rep, err := l.Verify(context.Background()); err != nil || !rep.Intact() {
		t.Fatalf("the chain the review reads is not intact: %+v %v", rep, err)
	}
	rv := buildReview(t, l, cfg, time.Now().Add(-time.Hour))

	var text bytes.Buffer
	if err := rv.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	out := text.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"restart-web (mode auto): on class unreachable, labels {service=web}; rolled out to {tier=non-critical}",
		"step restart: http R1: call POST " + "", // the URL follows
		"— automatic",
		"rollback: call POST ",
		"step switch: switch_port R2: redirect port 5432 to 5433 on this host — one approver who is not the requester",
		"rollback: delete its redirect rule",
		"step hook: http R3: call POST ",
		"— two distinct approvers, one a service owner",
		"approved by alice  redeploy step hook on tcp://api:443: approved by alice (operator): looks right",
		"approved by carol  redeploy step hook on tcp://api:443",
		"refused by portpatrol",
		"denied by dave  failover step switch on tcp://db:5432",
		"rolled back by portpatrol  restart-web step restart on tcp://web:80",
		"did nothing by portpatrol  restart-web step restart on tcp://web:80",
		"breaker open for http on tcp://web:80",
		"break-glass by root  redeploy step hook on tcp://api2:443",
		"flagged for review",
		"paused by alice",
		"resumed by alice",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the review lacks %q", want)
		}
	}
	if len(rv.BreakGlass) != 1 || len(rv.RolledBack) != 1 || len(rv.Breakers) != 1 {
		t.Errorf("got %d break-glass, %d rolled back, %d breakers; want 1 each", len(rv.BreakGlass), len(rv.RolledBack), len(rv.Breakers))
	}
	applied := 0
	for _, e := range rv.Ran {
		if e.Outcome == "applied" {
			applied++
		}
	}
	if applied != 3 { // restart, the approved hook, the break-glass hook
		t.Errorf("got %d applied executions, want 3: %+v", applied, rv.Ran)
	}
	if got := rv.Playbooks[0].Counts["rollback rolled back"]; got != 1 {
		t.Errorf("restart-web counts %v: want one rollback", rv.Playbooks[0].Counts)
	}
	if len(rv.Recent) != int(rv.Entries) || rv.Recent[0].Outcome != "resumed" || rv.Recent[len(rv.Recent)-1].Seq != 1 {
		t.Errorf("recent: %d entries of %d, want all, newest (the resume) first: %+v", len(rv.Recent), rv.Entries, rv.Recent)
	}
	if _, err := json.Marshal(rv); err != nil {
		t.Fatal(err)
	}
}

// Entries before the window are left out, and a playbook the chain shows acting that
// the configuration no longer has is flagged.
func TestReviewWindowAndUnconfigured(t *testing.T) {
	l, cfg := reviewWorld(t)
	later := NewReview(cfg, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	if err := l.Entries(context.Background(), time.Time{}, func(e auditlog.Entry) error { later.Add(e); return nil }); err != nil {
		t.Fatal(err)
	}
	if later.Entries != 0 || len(later.Ran) != 0 {
		t.Errorf("a window after every entry counted %d entries, %d ran", later.Entries, len(later.Ran))
	}
	cfg.Playbooks = cfg.Playbooks[1:]
	rv := buildReview(t, l, cfg, time.Now().Add(-time.Hour))
	if len(rv.Unconfigured) != 1 || rv.Unconfigured[0] != "restart-web" {
		t.Errorf("unconfigured: got %v, want [restart-web]", rv.Unconfigured)
	}
}
