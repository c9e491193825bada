package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeAutomation answers as the daemon's adapter does: r1 is pending, r404 unknown,
// r409 expired; approving one's own request is a conflict.
type fakeAutomation struct{}

const fakeRequest = `{"id":"r1","plan":{"playbook":"failover","step":"switch","tier":"R2","action":"switch_port","target":"tcp://127.0.0.1:8080",
"params":{"port":"8080","backup_port":"8081"},"diff":"add a redirect","policy_version":"1","hash":"ab"},"reasons":["tier R2"],
"requested_by":"zed","created_at":"2026-12-07T10:00:00Z","expires_at":"2026-12-07T10:15:00Z","state":"pending","needs":"one approver"}`

func (fakeAutomation) AutomationState(context.Context) (json.RawMessage, error) {
	return json.RawMessage(`{"mode":"on","paused":false,"pending":1,"breakers":[]}`), nil
}
func (fakeAutomation) ApprovalRequests(context.Context) (json.RawMessage, error) {
	return json.RawMessage(`{"requests":[` + fakeRequest + `]}`), nil
}
func (fakeAutomation) decide(id string, who Identity) (json.RawMessage, error) {
	switch {
	case id == "r1" && who.Name == "zed":
		return nil, fmt.Errorf("%w: approval request r1: zed requested this plan; nobody approves their own request", ErrConflict)
	case id == "r1":
		return json.RawMessage(fakeRequest), nil
	case id == "r409":
		return nil, fmt.Errorf("%w: approval request r409: expired at 2026-12-07T10:15:00Z", ErrConflict)
	}
	return nil, fmt.Errorf("%w: approval request %s: no such approval request", ErrNotFound, id)
}
func (f fakeAutomation) Approve(_ context.Context, id string, who Identity, _ string) (json.RawMessage, error) {
	return f.decide(id, who)
}
func (f fakeAutomation) Deny(_ context.Context, id string, who Identity, _ string) (json.RawMessage, error) {
	return f.decide(id, Identity{Name: "x"})
}
func (f fakeAutomation) BreakGlass(_ context.Context, id string, who Identity, _ string) (json.RawMessage, error) {
	return f.decide(id, Identity{Name: "x"})
}
func (fakeAutomation) RequestRun(_ context.Context, alertID, _ string, _ int, _ Identity) (json.RawMessage, error) {
	if alertID != "a1" {
		return nil, fmt.Errorf("%w: alert %s", ErrNotFound, alertID)
	}
	return json.RawMessage(fakeRequest), nil
}
func (fakeAutomation) Pause(context.Context, Identity, string) error { return nil }
func (fakeAutomation) Resume(context.Context, Identity) error        { return nil }
func (fakeAutomation) Review(_ context.Context, since time.Duration) (json.RawMessage, error) {
	return json.RawMessage(fmt.Sprintf(`{"from":"2026-11-07T10:00:00Z","to":"2026-12-07T10:00:00Z","mode":"on","paused":false,"policy_version":"1",
"service_owners":[],"playbooks":[{"name":"failover","mode":"suggest","trigger":"every alert","rollout":[],"steps":[{"name":"switch",
"action":"switch_port","tier":"R2","could":"redirect port 8080 to 8081 on this host","rollback":"delete its redirect rule",
"allowed":"one approver who is not the requester"}],"counts":{"approval approved":1}}],"entries":%d,"ran":[],"decisions":[{"seq":2,
"time":"2026-12-07T09:00:00Z","kind":"approval","outcome":"approved","actor":"bob","reason":"approved by bob"}],"rolled_back":[],
"breakers":[],"break_glass":[],"controls":[],"unconfigured":[],"chain":"intact: 2 entries, head 2 ab"}`, int(since.Hours()))), nil
}

// Refusals name their reason: 404 for an unknown request, 409 for an expired one or
// one's own; deny needs a reason.
func TestAutomationDecisions(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, func(c *Config) { c.Automation = fakeAutomation{} })
	for _, tt := range []struct {
		path, body string
		want       int
		says       string
	}{
		{"/api/v1/automation/approvals/nope/approve", "", http.StatusNotFound, "no such approval request"},
		{"/api/v1/automation/approvals/r409/approve", "", http.StatusConflict, "expired"},
		{"/api/v1/automation/approvals/r1/deny", `{}`, http.StatusBadRequest, "reason: required"},
		{"/api/v1/automation/approvals/r1/deny", `{"reason":"no"}`, http.StatusOK, `"state":"pending"`},
	} {
		rec := do(t, s, "POST", tt.path, operatorSecret, tt.body)
		if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.says) {
			t.Errorf("POST %s %s: got %d %s, want %d saying %q", tt.path, tt.body, rec.Code, rec.Body, tt.want, tt.says)
		}
	}
	// Break-glass is for admins only; the refusal of one's own request
	// is tested in the daemon with real tokens.
	rec := do(t, s, "POST", "/api/v1/automation/approvals/r1/break-glass", operatorSecret, `{"reason":"x"}`)
	if rec.Code != http.StatusForbidden {
		t.Errorf("break-glass as operator: got %d, want 403 (admin only)", rec.Code)
	}
	rec = do(t, newServer(f, func(c *Config) { c.Automation = nil }), "GET", "/api/v1/automation", viewerSecret, "")
	if rec.Code != http.StatusNotImplemented {
		t.Errorf("without automation: got %d, want 501", rec.Code)
	}
}

// The review's window comes from since (whole days or a duration), 30 days by default;
// a bad since names the field.
func TestAutomationReview(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, func(c *Config) { c.Automation = fakeAutomation{} })
	for _, tt := range []struct {
		query string
		want  int
		says  string
	}{
		{"", http.StatusOK, `"entries":720`},
		{"?since=7d", http.StatusOK, `"entries":168`},
		{"?since=36h", http.StatusOK, `"entries":36`},
		{"?since=soon", http.StatusBadRequest, "since"},
	} {
		rec := do(t, s, "GET", "/api/v1/automation/report"+tt.query, viewerSecret, "")
		if rec.Code != tt.want || !strings.Contains(rec.Body.String(), tt.says) {
			t.Errorf("GET report%s: got %d %s, want %d saying %q", tt.query, rec.Code, rec.Body, tt.want, tt.says)
		}
	}
}
