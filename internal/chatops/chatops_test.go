package chatops_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/chatops"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

const (
	secret  = "8f742231b10e8888abcd99yyyzzz85a5"
	mmToken = "xr3j5x3p4pfk7kk3fzhsxpfcmo"
)

// engine adapts a real alert engine as the daemon does.
type engine struct{ e *alert.Engine }

func (a engine) Active(context.Context) ([]patrol.Alert, error) {
	return a.e.List(alert.Filter{States: []patrol.AlertState{patrol.AlertFiring, patrol.AlertAcknowledged, patrol.AlertSilenced, patrol.AlertFlapping}}), nil
}
func (a engine) Ack(ctx context.Context, id, by, c string) error { return a.e.Ack(ctx, id, by, c) }
func (a engine) Resolve(ctx context.Context, id, by, c string) error {
	return a.e.Resolve(ctx, id, by, c)
}
func (a engine) CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error) {
	return a.e.CreateSilence(ctx, s)
}

type nullSink struct{}

func (nullSink) Enqueue(context.Context, []patrol.Notification) error { return nil }

type whoFunc func(context.Context, uint16) ([]string, error)

func (f whoFunc) Who(ctx context.Context, p uint16) ([]string, error) { return f(ctx, p) }

// syncBuf is a log buffer safe for the server's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	srv   *httptest.Server
	e     *alert.Engine
	id    string // the firing P0's ID
	now   time.Time
	log   *syncBuf
	calls []string
}

// setup starts a real alert engine with one firing P0 on a Redis port of service
// cache, and the chat handler over a real loopback listener.
func setup(t *testing.T) *fixture {
	t.Helper()
	now := time.Now()
	e, err := alert.New(context.Background(), alert.Config{}, alert.Deps{Sink: nullSink{}})
	if err != nil {
		t.Fatal(err)
	}
	target := "tcp://127.0.0.1:6379"
	for i := 0; i < 3; i++ {
		err := e.Observe(context.Background(), alert.Signal{Target: target, Status: patrol.StatusDown, Labels: map[string]string{"service": "cache"},
			Result: patrol.Result{Target: target, Class: patrol.ClassRefused, Error: "connection refused"}})
		if err != nil {
			t.Fatal(err)
		}
	}
	e.Tick(context.Background(), time.Now())
	firing := e.List(alert.Filter{States: []patrol.AlertState{patrol.AlertFiring}})
	if len(firing) != 1 {
		t.Fatalf("got %d firing alerts, want 1: %+v", len(firing), firing)
	}
	f := &fixture{e: e, id: firing[0].ID, now: now, log: &syncBuf{}}
	h := chatops.New(chatops.Config{
		SlackSigningSecret: secret,
		MattermostTokens:   []string{mmToken},
		Users: []chatops.User{
			{Name: "alice", Role: chatops.Operate, Slack: "U0ALICE", Mattermost: "alice"},
			{Name: "victor", Role: chatops.Read, Slack: "U0VICTOR"},
		},
		Alerts:   engine{e},
		Silences: engine{e},
		Who: whoFunc(func(_ context.Context, p uint16) ([]string, error) {
			return []string{fmt.Sprintf("127.0.0.1:%d redis-server pid 4242 user redis", p)}, nil
		}),
		Logger: slog.New(slog.NewTextHandler(f.log, nil)),
	})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) state(t *testing.T) patrol.Alert {
	t.Helper()
	r, ok := f.e.Get(f.id)
	if !ok {
		t.Fatalf("alert %s is gone", f.id)
	}
	return r.Alert
}

type answer struct {
	status int
	Type   string `json:"response_type"`
	Text   string `json:"text"`
	raw    string
}

func post(t *testing.T, url string, h http.Header, body string) answer {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header = h
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(b)}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(b, &a); err != nil {
			t.Fatalf("reply %q: %v", b, err)
		}
	}
	return a
}

// slackForm is a slash command's body as Slack sends it.
func slackForm(user, text string) string {
	return url.Values{"token": {"deprecated"}, "team_id": {"T0001"}, "user_id": {user}, "user_name": {"someone"},
		"command": {"/portpatrol"}, "text": {text}, "response_url": {"https://hooks.slack.com/commands/1/2/3"}}.Encode()
}

func signed(key string, ts time.Time, body string) http.Header {
	s := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", s)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(chatops.SignSlack(key, s, []byte(body))))
	return h
}

func TestSlackSignature(t *testing.T) {
	f := setup(t)
	u := f.srv.URL + chatops.SlackPath
	body := slackForm("U0ALICE", "ack "+f.id+" looking")
	cases := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"wrong secret", signed("not-the-secret", f.now, body), "does not match the signing secret"},
		{"stale", signed(secret, f.now.Add(-6*time.Minute), body), "stale or replayed"},
		{"from the future", signed(secret, f.now.Add(6*time.Minute), body), "stale or replayed"},
		{"no signature", http.Header{"X-Slack-Request-Timestamp": {strconv.FormatInt(f.now.Unix(), 10)}}, "not v0=<hex>"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := post(t, u, c.header, body)
			if a.status != 401 || !strings.Contains(a.raw, c.want) {
				t.Errorf("got %d %q, want 401 saying %q", a.status, a.raw, c.want)
			}
			if st := f.state(t); st.State != patrol.AlertFiring {
				t.Errorf("alert is %s after a refused request, want firing", st.State)
			}
		})
	}
	// The same signed request, sent twice inside the window: the second is refused.
	hv := slackForm("U0ALICE", "status")
	sig := signed(secret, f.now, hv)
	if a := post(t, u, sig.Clone(), hv); a.status != 200 {
		t.Fatalf("first: got %d %q, want 200", a.status, a.raw)
	}
	if a := post(t, u, sig.Clone(), hv); a.status != 401 || !strings.Contains(a.raw, "replayed: this signed request was already answered") {
		t.Errorf("replayed: got %d %q, want 401 saying replayed", a.status, a.raw)
	}
	// A body changed after signing is refused too.
	h := signed(secret, f.now, body)
	if a := post(t, u, h, slackForm("U0ALICE", "resolve "+f.id)); a.status != 401 {
		t.Errorf("tampered body: got %d, want 401", a.status)
	}
	if strings.Contains(f.log.String(), secret) {
		t.Error("the log shows the signing secret")
	}
}

func TestSlackAckFromMappedOperator(t *testing.T) {
	f := setup(t)
	u := f.srv.URL + chatops.SlackPath
	// An unmapped user and a viewer are refused and change nothing.
	for _, user := range []string{"U0NOBODY", "U0VICTOR"} {
		body := slackForm(user, "ack "+f.id)
		a := post(t, u, signed(secret, f.now, body), body)
		if a.status != 200 || a.Type != "ephemeral" || !strings.Contains(a.Text, "ack is refused") {
			t.Errorf("%s: got %d %+v, want an ephemeral refusal", user, a.status, a)
		}
		if st := f.state(t); st.State != patrol.AlertFiring {
			t.Fatalf("%s: alert is %s, want still firing", user, st.State)
		}
	}
	// Both may read.
	body := slackForm("U0NOBODY", "status cache")
	if a := post(t, u, signed(secret, f.now, body), body); !strings.Contains(a.Text, f.id) || !strings.Contains(a.Text, "P0") {
		t.Errorf("status: got %q, want the P0 listed", a.Text)
	}
	// The mapped operator acknowledges; the engine records who did it.
	body = slackForm("U0ALICE", "ack "+f.id+" on it")
	a := post(t, u, signed(secret, f.now.Add(-4*time.Minute), body), body)
	if a.status != 200 || a.Type != "in_channel" || !strings.Contains(a.Text, "acknowledged by alice via slack:U0ALICE") {
		t.Fatalf("got %d %+v, want an in-channel acknowledgement", a.status, a)
	}
	st := f.state(t)
	if st.State != patrol.AlertAcknowledged || st.AckedBy != "alice via slack:U0ALICE" {
		t.Errorf("got state %s acked by %q, want acknowledged by alice via slack:U0ALICE", st.State, st.AckedBy)
	}
	if !strings.Contains(f.log.String(), "chatops command done") || !strings.Contains(f.log.String(), "user=alice") {
		t.Errorf("log %q does not record the command and its user", f.log.String())
	}
}

func TestSlackButtons(t *testing.T) {
	f := setup(t)
	u := f.srv.URL + chatops.SlackPath
	press := func(user, action string) answer {
		p := fmt.Sprintf(`{"type":"block_actions","user":{"id":%q,"username":"x"},"actions":[{"action_id":%q,"value":%q,"type":"button"}]}`, user, action, f.id)
		body := url.Values{"payload": {p}}.Encode()
		return post(t, u, signed(secret, f.now, body), body)
	}
	if a := press("U0NOBODY", chatops.ActionSilence1h); !strings.Contains(a.Text, "silence is refused") || len(f.e.Silences()) != 0 {
		t.Errorf("unmapped silence button: got %+v with %d silences, want a refusal and none", a, len(f.e.Silences()))
	}
	a := press("U0ALICE", chatops.ActionSilence1h)
	ss := f.e.Silences()
	if len(ss) != 1 || ss[0].Author != "alice via slack:U0ALICE" || ss[0].EndsAt.Sub(ss[0].StartsAt) != time.Hour {
		t.Fatalf("got %+v (answer %q), want one 1h silence by alice", ss, a.Text)
	}
	if got := ss[0].Matchers.String(); got != "{target=tcp://127.0.0.1:6379, alertname=unreachable}" {
		t.Errorf("got matchers %s, want the alert's target and rule", got)
	}
	if a := press("U0ALICE", chatops.ActionAck); !strings.Contains(a.Text, "acknowledged") || f.state(t).AckedBy != "alice via slack:U0ALICE" {
		t.Errorf("ack button: got %q, acked by %q", a.Text, f.state(t).AckedBy)
	}
}

func TestMattermost(t *testing.T) {
	f := setup(t)
	u := f.srv.URL + chatops.MattermostPath
	form := func(token, user, text string) string {
		return url.Values{"token": {token}, "team_id": {"t1"}, "channel_id": {"c1"}, "user_id": {"abcdefghijklmnopqrstuvwxyz"},
			"user_name": {user}, "command": {"/portpatrol"}, "text": {text}}.Encode()
	}
	if a := post(t, u, http.Header{}, form("wrong", "alice", "resolve "+f.id)); a.status != 401 {
		t.Errorf("wrong token: got %d %q, want 401", a.status, a.raw)
	}
	if a := post(t, u, http.Header{}, form(mmToken, "mallory", "resolve "+f.id)); !strings.Contains(a.Text, "resolve is refused") {
		t.Errorf("unmapped user: got %+v, want a refusal", a)
	}
	if st := f.state(t); st.State != patrol.AlertFiring {
		t.Fatalf("alert is %s, want firing", st.State)
	}
	a := post(t, u, http.Header{}, form(mmToken, "alice", "silence service=cache 2h redis maintenance"))
	if ss := f.e.Silences(); len(ss) != 1 || ss[0].Author != "alice via mattermost:alice" || ss[0].Comment != "redis maintenance" {
		t.Errorf("got %+v (answer %q), want alice's silence", ss, a.Text)
	}
	// The engine mutes on its next tick, as the daemon's ticker would.
	if err := f.e.Tick(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ text, want string }{
		{"status cache", "silenced"},
		{"silence service=cache", "no duration"},
		{"silence 2h why", "no matchers"},
		{"silence service=cache 2h", "no comment"},
		{"silence service=cache 9999h x", "longer than"},
		{"who 6379", "redis-server pid 4242"},
		{"who http", `"http" is not a port`},
		{"dance", `unknown command "dance"`},
	} {
		if a := post(t, u, http.Header{}, form(mmToken, "alice", c.text)); !strings.Contains(a.Text, c.want) {
			t.Errorf("%s: got %q, want it to say %q", c.text, a.Text, c.want)
		}
	}
	a = post(t, u, http.Header{}, form(mmToken, "alice", "resolve "+f.id+" fixed"))
	if st := f.state(t); st.State != patrol.AlertResolved || st.ResolvedBy != "alice via mattermost:alice" {
		t.Errorf("got %s by %q (answer %q), want resolved by alice via mattermost:alice", st.State, st.ResolvedBy, a.Text)
	}
}

// An endpoint whose platform is not configured does not exist.
func TestUnconfigured(t *testing.T) {
	srv := httptest.NewServer(chatops.New(chatops.Config{}))
	defer srv.Close()
	for _, p := range []string{chatops.SlackPath, chatops.MattermostPath} {
		if a := post(t, srv.URL+p, http.Header{}, "text=status"); a.status != 404 {
			t.Errorf("%s: got %d, want 404", p, a.status)
		}
	}
}

func FuzzVerifySlack(f *testing.F) {
	f.Add("1700000000", "v0=abc", []byte("text=x"))
	f.Fuzz(func(t *testing.T, ts, sig string, body []byte) {
		if chatops.VerifySlack(secret, ts, sig, body, time.Unix(1700000000, 0)) == nil {
			t.Fatalf("accepted a forged signature %q", sig)
		}
	})
}

// Slack reads < and > as link markup; replies escape them. Mattermost gets them as is.
func TestReplyEscaping(t *testing.T) {
	f := setup(t)
	body := slackForm("U0NOBODY", "help")
	if a := post(t, f.srv.URL+chatops.SlackPath, signed(secret, f.now, body), body); !strings.Contains(a.Text, "ack &lt;alert-id&gt;") {
		t.Errorf("slack help: got %q, want <alert-id> escaped", a.Text)
	}
	mm := url.Values{"token": {mmToken}, "user_name": {"x"}, "text": {"help"}}.Encode()
	if a := post(t, f.srv.URL+chatops.MattermostPath, http.Header{}, mm); !strings.Contains(a.Text, "ack <alert-id>") {
		t.Errorf("mattermost help: got %q, want <alert-id> as is", a.Text)
	}
}

// approvals records what approve and deny pass on and answers as the engine would.
type approvals struct {
	mu    sync.Mutex
	calls []string
}

func (a *approvals) Approve(_ context.Context, id string, by chatops.Approver, comment string) (chatops.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, fmt.Sprintf("approve %s by %s (%s) via %s: %s", id, by.Name, by.Role, by.Via, comment))
	if id != "req1" {
		return chatops.Decision{}, fmt.Errorf("approval request %s: no such approval request", id)
	}
	return chatops.Decision{ID: id, State: "approved", Playbook: "restart-web", Step: "restart", Target: "tcp://127.0.0.1:8080",
		Diff: "run systemctl restart web", PlanHash: "0123456789abcdef0123"}, nil
}

func (a *approvals) Deny(_ context.Context, id string, by chatops.Approver, reason string) (chatops.Decision, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, fmt.Sprintf("deny %s by %s (%s) via %s: %s", id, by.Name, by.Role, by.Via, reason))
	return chatops.Decision{ID: id, State: "denied", Playbook: "restart-web", Step: "restart", Target: "tcp://127.0.0.1:8080"}, nil
}

// Only the approver role reaches the engine; what it passes on names the portpatrol
// user, the role and the chat user, so the engine's own-request and distinct-approver
// checks see the same person as through the API.
func TestApproveDenyRoles(t *testing.T) {
	ap := &approvals{}
	srv := httptest.NewServer(chatops.New(chatops.Config{
		SlackSigningSecret: secret,
		MattermostTokens:   []string{mmToken},
		Users: []chatops.User{
			{Name: "alice", Role: chatops.Operate, Slack: "U0ALICE"},
			{Name: "bob", Role: chatops.Approve, Slack: "U0BOB", Mattermost: "bob"},
		},
		Alerts:    engine{},
		Approvals: ap,
	}))
	defer srv.Close()
	now := time.Now()
	slackCmd := func(user, text string) answer {
		body := slackForm(user, text)
		return post(t, srv.URL+chatops.SlackPath, signed(secret, now, body), body)
	}
	for _, c := range []struct{ user, text, want string }{
		{"U0NOBODY", "approve req1", "approve is refused: your slack user U0NOBODY is not mapped"},
		{"U0ALICE", "approve req1", "approve is refused: alice has the operator role; only the approver role approves or denies remediation plans."},
		{"U0ALICE", "deny req1 no", "deny is refused: alice has the operator role"},
		{"U0BOB", "approve", "give the approval request's ID: approve <request-id> [comment]"},
		{"U0BOB", "approve nope", "approve failed: approval request nope: no such approval request"},
		{"U0BOB", "approve req1 " + strings.Repeat("x", 1001), "over 1000"},
	} {
		if a := slackCmd(c.user, c.text); a.Type != "ephemeral" || !strings.Contains(a.Text, slackEscapeTest(c.want)) {
			t.Errorf("%s %.20q: got %+v, want an ephemeral answer saying %q", c.user, c.text, a, c.want)
		}
	}
	if len(ap.calls) != 1 {
		t.Fatalf("the engine was asked %d times, want once (for the unknown ID): %q", len(ap.calls), ap.calls)
	}
	a := slackCmd("U0BOB", "approve req1 backup is warm")
	if want := "Approved req1 by bob via slack:U0BOB: restart-web step restart on tcp://127.0.0.1:8080 runs now (run systemctl restart web; plan 0123456789ab)."; a.Type != "in_channel" || a.Text != want {
		t.Errorf("approve: got %+v, want in_channel %q", a, want)
	}
	mm := url.Values{"token": {mmToken}, "user_id": {"x"}, "user_name": {"bob"}, "text": {"deny req2 not during the sale"}}.Encode()
	if a := post(t, srv.URL+chatops.MattermostPath, http.Header{}, mm); a.Text != "Denied req2 by bob via mattermost:bob: restart-web step restart on tcp://127.0.0.1:8080 will not run." {
		t.Errorf("deny: got %+v", a)
	}
	want := []string{
		"approve nope by bob (approver) via slack:U0BOB: ",
		"approve req1 by bob (approver) via slack:U0BOB: backup is warm",
		"deny req2 by bob (approver) via mattermost:bob: not during the sale",
	}
	if strings.Join(ap.calls, "\n") != strings.Join(want, "\n") {
		t.Errorf("engine calls:\n%s\nwant:\n%s", strings.Join(ap.calls, "\n"), strings.Join(want, "\n"))
	}
}

// Without an automation section approve says so.
func TestApproveUnavailable(t *testing.T) {
	srv := httptest.NewServer(chatops.New(chatops.Config{MattermostTokens: []string{mmToken}, Alerts: engine{},
		Users: []chatops.User{{Name: "bob", Role: chatops.Approve, Mattermost: "bob"}}}))
	defer srv.Close()
	mm := url.Values{"token": {mmToken}, "user_name": {"bob"}, "text": {"approve req1"}}.Encode()
	if a := post(t, srv.URL+chatops.MattermostPath, http.Header{}, mm); !strings.Contains(a.Text, "not available on this server (no automation section)") {
		t.Errorf("got %+v, want approvals unavailable", a)
	}
}

func slackEscapeTest(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
