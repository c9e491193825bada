package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/web"
)

// engineAPI serves a real remediation engine, recording into a real SQLite store's
// audit chain, to the API, as the daemon does.
type engineAPI struct {
	eng *automation.Engine
	log *auditlog.Log
}

func (a engineAPI) AutomationState(context.Context) (json.RawMessage, error) {
	return json.Marshal(a.eng.State())
}

func (a engineAPI) ApprovalRequests(context.Context) (json.RawMessage, error) {
	return json.Marshal(map[string]any{"requests": a.eng.Requests()})
}

func (a engineAPI) decided(r automation.Request, err error) (json.RawMessage, error) {
	var de *automation.DecisionError
	switch {
	case errors.As(err, &de) && errors.Is(err, automation.ErrNotFound):
		return nil, fmt.Errorf("%w: %s", api.ErrNotFound, de.Error())
	case errors.As(err, &de):
		return nil, fmt.Errorf("%w: %s", api.ErrConflict, de.Reason)
	case err != nil:
		return nil, err
	}
	return json.Marshal(r)
}

func (a engineAPI) Approve(ctx context.Context, id string, who api.Identity, comment string) (json.RawMessage, error) {
	return a.decided(a.eng.Approve(ctx, id, automation.Approver{Name: who.Name, Roles: []string{string(who.Role)}}, comment))
}

func (a engineAPI) Deny(ctx context.Context, id string, who api.Identity, reason string) (json.RawMessage, error) {
	return a.decided(a.eng.Deny(ctx, id, automation.Approver{Name: who.Name}, reason))
}

func (a engineAPI) BreakGlass(ctx context.Context, id string, who api.Identity, reason string) (json.RawMessage, error) {
	return a.decided(a.eng.BreakGlass(ctx, id, automation.Approver{Name: who.Name, Roles: []string{string(who.Role)}}, reason))
}

func (a engineAPI) RequestRun(context.Context, string, string, int, api.Identity) (json.RawMessage, error) {
	return nil, fmt.Errorf("%w: not offered by the dashboard", api.ErrInvalid)
}

func (a engineAPI) Pause(ctx context.Context, who api.Identity, reason string) error {
	return a.eng.Pause(ctx, who.Name, reason)
}

func (a engineAPI) Resume(ctx context.Context, who api.Identity) error {
	return a.eng.Resume(ctx, who.Name)
}

func (a engineAPI) Review(ctx context.Context, since time.Duration) (json.RawMessage, error) {
	now := time.Now()
	rv := a.eng.NewReview(now.Add(-since), now)
	rep, err := a.log.Verify(ctx)
	if err != nil {
		return nil, err
	}
	rv.SetChain(rep)
	if err := a.log.Entries(ctx, now.Add(-since), func(e auditlog.Entry) error { rv.Add(e); return nil }); err != nil {
		return nil, err
	}
	return json.Marshal(rv.Finish())
}

// automationWorld is a real engine with an R2 failover playbook in mode suggest (a real
// webhook, counted) and an R1 restart in mode auto, over a real store; one alert has
// filed an approval request, another has run and been verified.
func automationWorld(t *testing.T) (engineAPI, *atomic.Int64) {
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
	calls := &atomic.Int64{}
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(hook.Close)
	cfg := automation.Config{Mode: automation.ModeOn, Playbooks: []automation.Playbook{
		{Name: "failover-orders", Mode: automation.PlaybookSuggest, Trigger: automation.Trigger{Labels: []string{"service=orders"}},
			Steps: []automation.Step{{Name: "shift-traffic", Action: "http", Risk: automation.R2,
				Params:   automation.Params{URL: hook.URL + "/deploy/orders/failover", Body: `{"target":"{target}"}`},
				Verify:   automation.Verify{Window: 5 * time.Second, Interval: 100 * time.Millisecond},
				Rollback: &automation.Params{URL: hook.URL + "/deploy/orders/failback"}}}},
		{Name: "restart-cache", Mode: automation.PlaybookAuto, Trigger: automation.Trigger{Labels: []string{"service=cache"}},
			Steps: []automation.Step{{Name: "restart", Action: "http", Risk: automation.R1,
				Params: automation.Params{URL: hook.URL + "/restart/{host}"}, Verify: automation.Verify{Window: 5 * time.Second, Interval: 100 * time.Millisecond}}}},
	}}
	e, err := automation.New(cfg, automation.Deps{Recorder: l, Probe: func(context.Context, patrol.Alert) (bool, string) { return true, "connect ok" }})
	if err != nil {
		t.Fatal(err)
	}
	alertOf := func(id, target, svc string) patrol.Alert {
		return patrol.Alert{ID: id, Fingerprint: "fp-" + id, Rule: "unreachable", Class: patrol.AlertUnreachable, Severity: patrol.P0,
			State: patrol.AlertPending, Target: target, Labels: map[string]string{"service": svc}, Summary: target + " refused"}
	}
	e.HandleAlert(ctx, alertOf("a-cache3", "redis://cache-3.internal:6379", "cache"))
	e.HandleAlert(ctx, alertOf("a-db1", dbID, "orders"))
	if n := len(e.Requests()); n != 1 {
		t.Fatalf("want one pending request, got %d", n)
	}
	return engineAPI{eng: e, log: l}, calls
}

func serveAutomation(t *testing.T, w *world, auto api.Automation) string {
	t.Helper()
	b := api.NewBroker(api.BrokerConfig{})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix, api.New(api.Config{
		Targets: w, History: w, Alerts: w, AlertActions: w, Silences: w, Windows: w, Deliveries: w, Audits: w,
		StatusNotes: w, Learned: w, Bands: w, Tokens: tokens, Broker: b, AnonymousRead: true, Heartbeat: 5 * time.Second,
		Automation: auto,
	}))
	mux.Handle("/", web.New(web.Config{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { b.Close(); srv.Close() })
	return srv.URL
}

// The Automation page shows the live state, the request waiting with its plan, reasons
// and diff, the breakers and the audit trail; a viewer gets no buttons, an operator's
// approval runs the step (the webhook is called) and lands in the trail.
func TestBrowserAutomation(t *testing.T) {
	ctx := newBrowser(t)
	auto, calls := automationWorld(t)
	url := serveAutomation(t, smallWorld(), auto)
	req := auto.eng.Requests()[0]
	reqSel := fmt.Sprintf(`.request[data-request=%q]`, req.ID)

	// A viewer token: everything shown, no write control.
	run(t, ctx, 30*time.Second,
		chromedp.Navigate(url+"/#/automation"),
		chromedp.SendKeys(css(`#token-input`), tokens[0].Secret), chromedp.Click(css(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#who[data-role="viewer"]`)),
		chromedp.WaitVisible(css(`#view[data-role="viewer"] `+reqSel)),
		chromedp.WaitVisible(css(`#auto-trail tr[data-kind="verification"]`)),
	)
	if n := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#automation button[data-act], #pause-reason').length`)); n != 0 {
		t.Errorf("a viewer sees %d write controls, want none", n)
	}
	for sel, want := range map[string][]string{
		`#auto-mode`:     {"on"},
		`#auto-paused`:   {"running"},
		`#auto-fleet`:    {"1 of 10", "actions within 10m0s"},
		`#auto-chain`:    {"intact: "},
		`#read-only`:     {"operator token"},
		reqSel:           {"R2", "failover-orders · step shift-traffic", "call POST " + "http://127.0.0.1", "/deploy/orders/failover", "tier R2: needs one approver who is not the requester", "needs one approver other than portpatrol", "plan hash " + req.Plan.Hash},
		`#auto-breakers`: {"http", "redis://cache-3.internal:6379", "backing off", "next attempt"},
		`#auto-trail`:    {"recovered", "awaiting approval " + req.ID, "restart-cache · restart"},
	} {
		got := get(t, ctx, chromedp.Text(css(sel)))
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s shows %q, want it to contain %q", sel, got, w)
			}
		}
	}
	if takeShots() {
		run(t, ctx, 10*time.Second, chromedp.EmulateViewport(1280, 1100))
	}

	// An operator approves: the step runs and the request leaves the list.
	before := calls.Load()
	approve := css(reqSel + ` button[data-act="approve"]`)
	run(t, ctx, 30*time.Second,
		chromedp.SendKeys(css(`#token-input`), tokens[1].Secret), chromedp.Click(css(`#token-form button[type=submit]`)),
		chromedp.WaitVisible(css(`#who[data-role="operator"]`)),
		chromedp.WaitVisible(approve),
	)
	if takeShots() {
		screenshot(t, ctx, "automation")
		run(t, ctx, 5*time.Second, chromedp.EmulateViewport(1280, 900))
	}
	run(t, ctx, 30*time.Second,
		chromedp.SendKeys(css(fmt.Sprintf(`input[data-for=%q]`, req.ID)), "backup is warm"),
		chromedp.Click(approve),
		chromedp.WaitVisible(css(`#banner.ok`)),
		chromedp.WaitVisible(css(`#none-pending`)),
		chromedp.WaitVisible(css(`#auto-trail tr[data-kind="approval"]`)),
	)
	auto.eng.Wait()
	if got := get(t, ctx, chromedp.Text(css(`#banner`))); got != "Approved "+req.ID {
		t.Errorf("banner %q, want Approved %s", got, req.ID)
	}
	if calls.Load() != before+1 {
		t.Errorf("the failover webhook got %d calls after the approval, want 1", calls.Load()-before)
	}
	if r := auto.eng.Requests(); len(r) != 1 || r[0].State != automation.StateApproved || r[0].Approvals[0].By != "alice" {
		t.Errorf("request after the approval: %+v", r)
	}
	trail := get(t, ctx, chromedp.Text(css(`#auto-trail tr[data-kind="approval"]`)))
	if !strings.Contains(trail, "alice") || !strings.Contains(trail, "backup is warm") {
		t.Errorf("the trail's approval row: %q", trail)
	}

	// Pause and resume through the kill switch.
	run(t, ctx, 30*time.Second,
		chromedp.SendKeys(css(`#pause-reason`), "deploy"), chromedp.Click(css(`#pause`)),
		chromedp.WaitVisible(css(`#resume`)),
	)
	if got := get(t, ctx, chromedp.Text(css(`#auto-paused`))); !strings.Contains(got, "paused by alice: deploy") {
		t.Errorf("after pause: %q", got)
	}
	run(t, ctx, 30*time.Second, chromedp.Click(css(`#resume`)), chromedp.WaitVisible(css(`#pause`)))
	if st := auto.eng.State(); st.Paused {
		t.Error("still paused after resume")
	}
}
