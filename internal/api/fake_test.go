package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// fake implements every interface the Server uses through function fields; a nil
// field panics, so a test sets what it expects to be called.
type fake struct {
	targetStates  func(ctx context.Context) ([]patrol.TargetState, error)
	targetState   func(ctx context.Context, id string) (patrol.TargetState, error)
	history       func(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error)
	recentResults func(ctx context.Context, target string, n int) ([]patrol.Result, error)
	listAlerts    func(ctx context.Context, f AlertFilter) ([]patrol.Alert, error)
	getAlert      func(ctx context.Context, id string) (Incident, error)
	ackAlert      func(ctx context.Context, id, by, comment string) error
	resolveAlert  func(ctx context.Context, id, by, comment string) error
	listSilences  func(ctx context.Context) ([]patrol.Silence, error)
	createSilence func(ctx context.Context, s patrol.Silence) (patrol.Silence, error)
	expireSilence func(ctx context.Context, id, by string) error
	windows       func(ctx context.Context) ([]Window, error)
	deliveries    func(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
	audits        func(ctx context.Context) ([]AuditReport, error)
	lookupToken   func(ctx context.Context, h TokenHash) (Identity, error)
	listTokens    func(ctx context.Context) ([]TokenInfo, error)
	createToken   func(ctx context.Context, name string, role Role, by string) (TokenInfo, string, error)
	revokeToken   func(ctx context.Context, id, by string) error
}

var (
	_ Targets      = (*fake)(nil)
	_ History      = (*fake)(nil)
	_ Alerts       = (*fake)(nil)
	_ AlertActions = (*fake)(nil)
	_ Silences     = (*fake)(nil)
	_ Windows      = (*fake)(nil)
	_ Deliveries   = (*fake)(nil)
	_ Audits       = (*fake)(nil)
	_ Tokens       = (*fake)(nil)
	_ TokenAdmin   = (*fake)(nil)
)

func (f *fake) TargetStates(ctx context.Context) ([]patrol.TargetState, error) {
	return f.targetStates(ctx)
}
func (f *fake) TargetState(ctx context.Context, id string) (patrol.TargetState, error) {
	return f.targetState(ctx, id)
}
func (f *fake) History(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error) {
	return f.history(ctx, q)
}
func (f *fake) RecentResults(ctx context.Context, target string, n int) ([]patrol.Result, error) {
	return f.recentResults(ctx, target, n)
}
func (f *fake) ListAlerts(ctx context.Context, fl AlertFilter) ([]patrol.Alert, error) {
	return f.listAlerts(ctx, fl)
}
func (f *fake) GetAlert(ctx context.Context, id string) (Incident, error) { return f.getAlert(ctx, id) }
func (f *fake) AckAlert(ctx context.Context, id, by, comment string) error {
	return f.ackAlert(ctx, id, by, comment)
}
func (f *fake) ResolveAlert(ctx context.Context, id, by, comment string) error {
	return f.resolveAlert(ctx, id, by, comment)
}
func (f *fake) ListSilences(ctx context.Context) ([]patrol.Silence, error) {
	return f.listSilences(ctx)
}
func (f *fake) CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error) {
	return f.createSilence(ctx, s)
}
func (f *fake) ExpireSilence(ctx context.Context, id, by string) error {
	return f.expireSilence(ctx, id, by)
}
func (f *fake) MaintenanceWindows(ctx context.Context) ([]Window, error) { return f.windows(ctx) }
func (f *fake) ListDeliveries(ctx context.Context, fl DeliveryFilter) ([]Delivery, error) {
	return f.deliveries(ctx, fl)
}
func (f *fake) LatestAudits(ctx context.Context) ([]AuditReport, error) { return f.audits(ctx) }
func (f *fake) LookupToken(ctx context.Context, h TokenHash) (Identity, error) {
	return f.lookupToken(ctx, h)
}
func (f *fake) ListTokens(ctx context.Context) ([]TokenInfo, error) { return f.listTokens(ctx) }
func (f *fake) CreateToken(ctx context.Context, name string, role Role, by string) (TokenInfo, string, error) {
	return f.createToken(ctx, name, role, by)
}
func (f *fake) RevokeToken(ctx context.Context, id, by string) error {
	return f.revokeToken(ctx, id, by)
}

// The secrets of the test tokens, one per role.
const (
	viewerSecret   = "ppt_viewer"
	operatorSecret = "ppt_operator"
	adminSecret    = "ppt_admin"
	revokedSecret  = "ppt_revoked"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const dbID = "tcp://db.internal:5432"

// calls records the writes the fake world was asked for.
type calls struct {
	acks, resolves, expires []string // "id by comment"
	silences                []patrol.Silence
	tokens                  []string
}

// newWorld returns fakes for a small world: two targets, one firing P0 on the
// database, a silence, a window, a delivery and the test tokens.
func newWorld() (*fake, *calls) {
	c := &calls{}
	states := []patrol.TargetState{
		{Target: dbID, Name: "orders db", Status: patrol.StatusDown, Since: t0.Add(-10 * time.Minute),
			Labels: map[string]string{"service": "orders", "host": "db.internal"},
			Last:   patrol.ResultSummary{Time: t0, Class: patrol.ClassRefused, Duration: 2 * time.Millisecond, Error: "connection refused"}},
		{Target: "https://web.internal:443/health", Status: patrol.StatusUp, Labels: map[string]string{"service": "web"},
			Last: patrol.ResultSummary{Time: t0, Class: patrol.ClassOK, Duration: 40 * time.Millisecond}},
	}
	alert := patrol.Alert{ID: "a1", Fingerprint: "unreachable@" + dbID, Rule: "unreachable", Class: patrol.AlertUnreachable,
		Severity: patrol.P0, State: patrol.AlertFiring, Target: dbID, Summary: dbID + " refuses connections",
		StartsAt: t0.Add(-10 * time.Minute), FiredAt: t0.Add(-9 * time.Minute), Deadline: t0.Add(-4 * time.Minute),
		Evidence: []patrol.Result{{Target: dbID, Start: t0, Class: patrol.ClassRefused, Error: "connection refused"}}}
	f := &fake{
		targetStates: func(context.Context) ([]patrol.TargetState, error) { return states, nil },
		targetState: func(_ context.Context, id string) (patrol.TargetState, error) {
			for _, s := range states {
				if s.Target == id {
					return s, nil
				}
			}
			return patrol.TargetState{}, fmt.Errorf("target %s: %w", id, ErrNotFound)
		},
		history: func(_ context.Context, q patrol.HistoryQuery) (patrol.Series, error) {
			return patrol.Series{Resolution: "raw", Step: time.Minute, Quantiles: "exact", Points: []patrol.Point{
				{Time: q.From, Count: 6, Failures: 1, Availability: 5.0 / 6, Min: time.Millisecond, Avg: 2 * time.Millisecond,
					Max: 9 * time.Millisecond, P50: 2 * time.Millisecond, P95: 8 * time.Millisecond, P99: 9 * time.Millisecond}}}, nil
		},
		recentResults: func(_ context.Context, target string, n int) ([]patrol.Result, error) {
			r := patrol.Result{Target: target, Start: t0, Duration: 3 * time.Millisecond, Class: patrol.ClassOK}
			r.AddPhase("connect", 2*time.Millisecond)
			return []patrol.Result{r}, nil
		},
		listAlerts: func(_ context.Context, fl AlertFilter) ([]patrol.Alert, error) {
			if fl.Target != "" && fl.Target != dbID {
				return nil, nil
			}
			return []patrol.Alert{alert}, nil
		},
		getAlert: func(_ context.Context, id string) (Incident, error) {
			if id != alert.ID {
				return Incident{}, fmt.Errorf("alert %s: %w", id, ErrNotFound)
			}
			return Incident{Alert: alert, Chain: "default"}, nil
		},
		ackAlert: func(_ context.Context, id, by, comment string) error {
			if id != alert.ID {
				return fmt.Errorf("ack %s: %w", id, ErrNotFound)
			}
			c.acks = append(c.acks, id+" "+by+" "+comment)
			return nil
		},
		resolveAlert: func(_ context.Context, id, by, comment string) error {
			if id != alert.ID {
				return fmt.Errorf("resolve %s: %w", id, ErrNotFound)
			}
			c.resolves = append(c.resolves, id+" "+by+" "+comment)
			return nil
		},
		listSilences: func(context.Context) ([]patrol.Silence, error) {
			return []patrol.Silence{{ID: "s1", Matchers: patrol.Matchers{mustMatcher(nil, "service=orders")}, Author: "ops", Comment: "migration",
				StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedAt: t0}}, nil
		},
		createSilence: func(_ context.Context, s patrol.Silence) (patrol.Silence, error) {
			c.silences = append(c.silences, s)
			s.ID, s.CreatedAt = "s2", t0
			return s, nil
		},
		expireSilence: func(_ context.Context, id, by string) error {
			if id != "s1" {
				return fmt.Errorf("silence %s: %w", id, ErrNotFound)
			}
			c.expires = append(c.expires, id+" "+by)
			return nil
		},
		windows: func(context.Context) ([]Window, error) {
			return []Window{{Name: "sunday", Schedule: "Sun 02:00-04:00", Active: false, From: t0.Add(48 * time.Hour), Until: t0.Add(50 * time.Hour)}}, nil
		},
		deliveries: func(_ context.Context, fl DeliveryFilter) ([]Delivery, error) {
			return []Delivery{{Seq: 7, Receiver: "oncall", Provider: "slack", Key: "a1/firing/0", Kind: patrol.NotifyFiring,
				AlertIDs: []string{"a1"}, State: "delivered", Attempts: 1, EnqueuedAt: t0, DoneAt: t0.Add(time.Second)}}, nil
		},
		audits: func(context.Context) ([]AuditReport, error) {
			return []AuditReport{
				{Name: "edge", Policy: "ports.yaml", Time: t0, Hosts: []AuditHost{{Host: "local", Addr: "127.0.0.1", Inventory: true, PortsScanned: 1024,
					Open: []AuditOpenPort{
						{Port: 22, Verdict: "allowed", Rule: "ports.yaml:4:9", Listeners: []AuditListener{{Bind: "0.0.0.0:22", Process: "sshd", PID: 812, User: "root"}}},
						{Port: 6379, Verdict: "unauthorised", Listeners: []AuditListener{{Bind: "0.0.0.0:6379", Process: "redis-server", User: "redis"}}},
					},
					Required: []uint16{22, 443}}},
					Findings: []AuditFinding{
						{Kind: "required_closed", Severity: "P0", Host: "local", Addr: "127.0.0.1", Port: 443, Message: "port 443 is required but closed", Rule: "ports.yaml:6:9"},
						{Kind: "unauthorised_open", Severity: "P1", Host: "local", Addr: "127.0.0.1", Port: 6379, Message: "port 6379 is open but no allow rule permits it",
							Process: "redis-server", User: "redis", Bind: "0.0.0.0:6379"},
					}},
				{Name: "dmz", Policy: "dmz.yaml"},
			}, nil
		},
		lookupToken: func(_ context.Context, h TokenHash) (Identity, error) {
			switch h {
			case HashToken(viewerSecret):
				return Identity{TokenID: "t1", Name: "grafana", Role: RoleViewer}, nil
			case HashToken(operatorSecret):
				return Identity{TokenID: "t2", Name: "alice", Role: RoleOperator}, nil
			case HashToken(adminSecret):
				return Identity{TokenID: "t3", Name: "root", Role: RoleAdmin}, nil
			case HashToken(revokedSecret):
				return Identity{}, fmt.Errorf("token t4: %w", ErrRevoked)
			}
			return Identity{}, ErrNotFound
		},
		listTokens: func(context.Context) ([]TokenInfo, error) {
			return []TokenInfo{{ID: "t1", Name: "grafana", Role: RoleViewer, CreatedAt: t0}}, nil
		},
		createToken: func(_ context.Context, name string, role Role, by string) (TokenInfo, string, error) {
			c.tokens = append(c.tokens, name+" "+string(role)+" "+by)
			return TokenInfo{ID: "t9", Name: name, Role: role, CreatedAt: t0, CreatedBy: by}, "ppt_new", nil
		},
		revokeToken: func(_ context.Context, id, by string) error {
			if id != "t1" {
				return fmt.Errorf("token %s: %w", id, ErrNotFound)
			}
			return nil
		},
	}
	return f, c
}

// newServer builds a Server over f with every dependency set.
func newServer(f *fake, mod func(*Config)) *Server {
	cfg := Config{Targets: f, History: f, Alerts: f, AlertActions: f, Silences: f, Windows: f, Deliveries: f,
		Audits: f, Tokens: f, TokenAdmin: f, StatusNotes: newMemNotes(), Learned: f, Capacity: f, Cluster: f, Bands: f, Automation: fakeAutomation{}, Bans: newMemBans(), Intrusion: fakeIntrusion{}, Broker: NewBroker(BrokerConfig{}), Now: func() time.Time { return t0 }}
	if mod != nil {
		mod(&cfg)
	}
	return New(cfg)
}

// do sends a request to h and returns the recorded response. token may be empty;
// remote sets the peer address (default a non-loopback one).
func do(t testing.TB, h http.Handler, method, path, token, body string, remote ...string) *httptest.ResponseRecorder {
	t.Helper()
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.RemoteAddr = "192.0.2.10:40000"
	if len(remote) > 0 {
		req.RemoteAddr = remote[0]
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// matcherText compares matchers by what they say, not by their compiled expressions.
var matcherText = cmp.Comparer(func(a, b patrol.Matcher) bool { return a.String() == b.String() })

// mustMatcher parses a matcher; a nil t panics on a bad one.
func mustMatcher(t *testing.T, s string) patrol.Matcher {
	m, err := patrol.ParseMatcher(s)
	if err != nil {
		if t == nil {
			panic(err)
		}
		t.Fatal(err)
	}
	return m
}
