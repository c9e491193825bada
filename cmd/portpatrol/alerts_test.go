package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// The secrets of the test tokens.
const (
	viewerToken   = "ppt_viewer_secret"
	operatorToken = "ppt_operator_secret"
)

// alertWorld is a small fake alert engine behind the real API: a firing P0, a resolved
// P1 and a silence.
type alertWorld struct {
	mu       sync.Mutex
	alerts   map[string]patrol.Alert
	filters  []api.AlertFilter
	notes    []string // "action id by comment"
	silences []patrol.Silence
}

var (
	_ api.Alerts       = (*alertWorld)(nil)
	_ api.AlertActions = (*alertWorld)(nil)
	_ api.Silences     = (*alertWorld)(nil)
)

func newAlertWorld() *alertWorld {
	now := time.Now()
	return &alertWorld{
		alerts: map[string]patrol.Alert{
			"a1": {ID: "a1", Rule: "unreachable", Class: patrol.AlertUnreachable, Severity: patrol.P0, State: patrol.AlertFiring,
				Target: "tcp://10.0.0.5:6379", Summary: "tcp://10.0.0.5:6379 unreachable: refused", StartsAt: now.Add(-12 * time.Minute),
				FiredAt: now.Add(-12 * time.Minute), Deadline: now.Add(3*time.Minute + 30*time.Second), Told: []string{"noc"},
				Labels: map[string]string{"team": "cache", "service": "sessions"}},
			"a3": {ID: "a3", Rule: "unreachable", Class: patrol.AlertUnreachable, Severity: patrol.P0, State: patrol.AlertSilenced,
				Target: "tcp://10.0.0.9:5432", Summary: "tcp://10.0.0.9:5432 unreachable: refused", StartsAt: now.Add(-5 * time.Minute),
				FiredAt: now.Add(-5 * time.Minute), Deadline: now.Add(time.Minute), MutedBy: "s1", Told: []string{"noc"},
				Labels: map[string]string{"team": "db", "service": "orders"}},
			"a2": {ID: "a2", Rule: "slow", Class: patrol.AlertSlow, Severity: patrol.P1, State: patrol.AlertResolved,
				Target: "https://web:443/", Summary: "https://web:443/ slow", StartsAt: now.Add(-3 * time.Hour),
				ResolvedAt: now.Add(-time.Hour), ResolvedBy: "auto", Told: []string{"noc"}},
		},
		silences: []patrol.Silence{{ID: "s1", Matchers: patrol.Matchers{{Name: "service", Op: patrol.MatchEqual, Value: "orders"}}, Author: "bob",
			Comment: "migration", StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour)}},
	}
}

func (w *alertWorld) ListAlerts(_ context.Context, f api.AlertFilter) ([]patrol.Alert, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.filters = append(w.filters, f)
	var out []patrol.Alert
	for _, id := range []string{"a1", "a3", "a2"} {
		a := w.alerts[id]
		if (len(f.States) == 0 && a.State == patrol.AlertResolved) || (len(f.States) > 0 && !contains(f.States, a.State)) ||
			(len(f.Severities) > 0 && !contains(f.Severities, a.Severity)) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (w *alertWorld) GetAlert(_ context.Context, id string) (api.Incident, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.alerts[id]
	if !ok {
		return api.Incident{}, fmt.Errorf("alert %q: %w", id, api.ErrNotFound)
	}
	return api.Incident{Alert: a, Chain: "default"}, nil
}

func (w *alertWorld) act(verb, id, by, comment string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.alerts[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s %s: not found", api.ErrNotFound, verb, id)
	case a.State == patrol.AlertResolved:
		return fmt.Errorf("%w: %s %s: already resolved", api.ErrConflict, verb, id)
	}
	if verb == "ack" {
		a.State, a.AckedBy = patrol.AlertAcknowledged, by
	} else {
		a.State, a.ResolvedBy = patrol.AlertResolved, by
	}
	w.alerts[id] = a
	w.notes = append(w.notes, strings.Join([]string{verb, id, by, comment}, " "))
	return nil
}

func (w *alertWorld) AckAlert(_ context.Context, id, by, comment string) error {
	return w.act("ack", id, by, comment)
}

func (w *alertWorld) ResolveAlert(_ context.Context, id, by, comment string) error {
	return w.act("resolve", id, by, comment)
}

func (w *alertWorld) ListSilences(context.Context) ([]patrol.Silence, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]patrol.Silence(nil), w.silences...), nil
}

func (w *alertWorld) CreateSilence(_ context.Context, s patrol.Silence) (patrol.Silence, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s.ID = fmt.Sprintf("s%d", len(w.silences)+1)
	w.silences = append(w.silences, s)
	return s, nil
}

func (w *alertWorld) ExpireSilence(_ context.Context, id, by string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.silences {
		if w.silences[i].ID == id {
			w.silences[i].EndsAt, w.silences[i].ExpiredBy = time.Now(), by
			return nil
		}
	}
	return fmt.Errorf("silence %q: %w", id, api.ErrNotFound)
}

// startAPI serves the real API over w with a viewer and an operator token.
func startAPI(t *testing.T, w *alertWorld) string {
	t.Helper()
	srv := httptest.NewServer(api.New(api.Config{Alerts: w, AlertActions: w, Silences: w, Tokens: api.StaticTokens{
		{ID: "t1", Name: "grafana", Role: api.RoleViewer, Secret: viewerToken},
		{ID: "t2", Name: "alice", Role: api.RoleOperator, Secret: operatorToken},
	}}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// runAPICmd runs the command line and returns stdout, stderr and the exit code. No
// output may show a token.
func runAPICmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	for _, secret := range []string{viewerToken, operatorToken} {
		if strings.Contains(out.String()+errb.String(), secret) {
			t.Errorf("%v printed a token secret:\n%s%s", args, out.String(), errb.String())
		}
	}
	return out.String(), errb.String(), code
}

func TestAlertsList(t *testing.T) {
	w := newAlertWorld()
	url := startAPI(t, w)
	out, errOut, code := runAPICmd(t, "alerts", "--server", url, "--token", viewerToken)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^ID\s+SEV\s+STATE\s+TARGET\s+SINCE\s+DEADLINE\s+STEP\s+SUMMARY$`,
		`(?m)^a1\s+P0\s+firing\s+tcp://10\.0\.0\.5:6379\s+12m\d\ds\s+in 3m[23]\ds\s+1\s+tcp://10\.0\.0\.5:6379 unreachable: refused$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", re, out)
		}
	}
	if strings.Contains(out, "a2") {
		t.Errorf("the resolved alert is listed by default:\n%s", out)
	}
	// A silenced alert pages nobody: no deadline runs for it.
	if !regexp.MustCompile(`(?m)^a3\s+P0\s+silenced\s+\S+\s+\S+\s+-\s`).MatchString(out) {
		t.Errorf("the silenced alert shows a deadline:\n%s", out)
	}

	out, errOut, code = runAPICmd(t, "alerts", "--server", url, "--token", viewerToken, "--label", "team=db")
	if code != exitOK || !strings.Contains(out, "a3 ") || strings.Contains(out, "a1 ") {
		t.Errorf("--label team=db: exit %d (%s), want a3 only:\n%s", code, errOut, out)
	}
	out, _, _ = runAPICmd(t, "alerts", "--server", url, "--token", viewerToken, "--label", "service=~sess.*", "--label", "severity=P0")
	if !strings.Contains(out, "a1 ") || strings.Contains(out, "a3 ") {
		t.Errorf("--label service=~sess.* --label severity=P0: want a1 only:\n%s", out)
	}
	if _, errOut, code := runAPICmd(t, "alerts", "--server", url, "--token", viewerToken, "--label", "team"); code != exitUnknown || !strings.Contains(errOut, "--label") {
		t.Errorf("bad --label: exit %d, %q", code, errOut)
	}

	out, errOut, code = runAPICmd(t, "alerts", "--server", url, "--token", viewerToken, "--state", "all", "--severity", "p1", "--json")
	if code != exitOK {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var got []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if len(got) != 1 || got[0].ID != "a2" || got[0].State != "resolved" {
		t.Errorf("--state all --severity p1: got %+v, want a2 resolved", got)
	}
	if f := w.filters[len(w.filters)-1]; len(f.Severities) != 1 || f.Severities[0] != patrol.P1 || len(f.States) != 6 {
		t.Errorf("filter sent: got %+v", f)
	}

	_, errOut, code = runAPICmd(t, "alerts", "--server", url, "--token", viewerToken, "--state", "burning")
	if code != exitUnknown || !strings.Contains(errOut, `bad request: state: "burning"`) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("bad state: exit %d, stderr %q; want 3 and one line naming the field", code, errOut)
	}
}

// TestAlertsAuthErrors: a missing, unknown or too weak token is a one-line message and
// exit 3; the environment gives the server and the token.
func TestAlertsAuthErrors(t *testing.T) {
	url := startAPI(t, newAlertWorld())
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"alerts"}, "needs a token: pass --token or set PORTPATROL_TOKEN"},
		{"unknown token", []string{"alerts", "--token", "ppt_wrong"}, "refused the token: unknown token"},
		{"viewer acks", []string{"ack", "a1", "--token", viewerToken}, `permission denied: operator role required; token "grafana" has the viewer role`},
		{"viewer silences", []string{"silence", "add", "service=x", "-m", "x", "--token", viewerToken}, "permission denied: operator role required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runAPICmd(t, append(tc.args, "--server", url)...)
			if code != exitUnknown || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 3 and one line containing %q", code, errOut, tc.want)
			}
		})
	}
	t.Run("environment", func(t *testing.T) {
		t.Setenv("PORTPATROL_SERVER", url)
		t.Setenv("PORTPATROL_TOKEN", viewerToken)
		out, errOut, code := runAPICmd(t, "alerts")
		if code != exitOK || !strings.Contains(out, "a1") {
			t.Errorf("exit %d, stdout %q, stderr %q; want the list", code, out, errOut)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		_, errOut, code := runAPICmd(t, "alerts", "--server", "http://127.0.0.1:1", "--token", viewerToken)
		if code != exitUnknown || !strings.Contains(errOut, "cannot reach portpatrol at http://127.0.0.1:1") {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("help shows no token", func(t *testing.T) {
		t.Setenv("PORTPATROL_TOKEN", operatorToken)
		out, _, code := runAPICmd(t, "alerts", "--help")
		if code != exitOK || !strings.Contains(out, "PORTPATROL_TOKEN") || !strings.Contains(out, "Exit codes") {
			t.Errorf("exit %d, help:\n%s", code, out)
		}
	})
}

func TestAckResolve(t *testing.T) {
	w := newAlertWorld()
	url := startAPI(t, w)
	op := []string{"--server", url, "--token", operatorToken}
	out, errOut, code := runAPICmd(t, append([]string{"ack", "a1", "-m", "on it"}, op...)...)
	if code != exitOK || !strings.Contains(out, "Acknowledged a1 (P0 acknowledged) as alice") {
		t.Errorf("ack: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = runAPICmd(t, append([]string{"ack", "nope"}, op...)...)
	if code != exitWarning || strings.TrimSpace(errOut) != "portpatrol: no alert nope on "+url {
		t.Errorf("ack unknown: exit %d, stderr %q; want 1, no alert nope", code, errOut)
	}
	out, errOut, code = runAPICmd(t, append([]string{"resolve", "a1", "-m", "fixed"}, op...)...)
	if code != exitOK || !strings.Contains(out, "Resolved a1 (P0 resolved) as alice") {
		t.Errorf("resolve: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = runAPICmd(t, append([]string{"resolve", "a2"}, op...)...)
	if code != exitWarning || strings.TrimSpace(errOut) != "portpatrol: alert a2: already resolved" {
		t.Errorf("resolve resolved: exit %d, stderr %q; want 1, already resolved", code, errOut)
	}
	if diff := cmp.Diff([]string{"ack a1 alice on it", "resolve a1 alice fixed"}, w.notes); diff != "" {
		t.Errorf("actions (-want +got):\n%s", diff)
	}
}

func TestSilenceCommands(t *testing.T) {
	w := newAlertWorld()
	url := startAPI(t, w)
	op := []string{"--server", url, "--token", operatorToken}

	out, errOut, code := runAPICmd(t, append([]string{"silence", "add", "service=orders", "target=~tcp://db-.*", "--for", "2h", "-m", "schema migration"}, op...)...)
	if code != exitOK || !strings.Contains(out, "Created silence s2 of service=orders,target=~tcp://db-.* until ") || !strings.Contains(out, "(by alice)") {
		t.Fatalf("add: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	got := w.silences[1]
	want := "service=orders,target=~tcp://db-.*"
	if diff := cmp.Diff(want, matcherList(got.Matchers)); diff != "" || got.Comment != "schema migration" || got.Author != "alice" {
		t.Errorf("silence created: %+v; matchers (-want +got):\n%s", got, diff)
	}
	if d := got.EndsAt.Sub(got.StartsAt); d != 2*time.Hour {
		t.Errorf("silence lasts %s, want 2h", d)
	}

	// amtool's flag names, and a window given by its start and end.
	out, errOut, code = runAPICmd(t, append([]string{"silence", "add", "host=db1", "--start", "2030-01-02T03:00:00Z",
		"--end", "2030-01-02T05:30:00Z", "--comment", "planned move"}, op...)...)
	if code != exitOK {
		t.Fatalf("add --start --end --comment: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	got = w.silences[len(w.silences)-1]
	if got.Comment != "planned move" || !got.StartsAt.Equal(time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)) ||
		!got.EndsAt.Equal(time.Date(2030, 1, 2, 5, 30, 0, 0, time.UTC)) {
		t.Errorf("--start/--end/--comment: got %s to %s, %q", got.StartsAt, got.EndsAt, got.Comment)
	}
	out, errOut, code = runAPICmd(t, append([]string{"silence", "add", "host=db2", "--duration", "45m", "--comment", "x"}, op...)...)
	if got := w.silences[len(w.silences)-1]; code != exitOK || got.EndsAt.Sub(got.StartsAt) != 45*time.Minute {
		t.Errorf("--duration 45m: exit %d (%s%s), silence lasts %s", code, out, errOut, got.EndsAt.Sub(got.StartsAt))
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no comment", []string{"silence", "add", "service=x"}, "-m (or --comment) is required"},
		{"end and for", []string{"silence", "add", "service=x", "-m", "x", "--for", "1h", "--end", "2030-01-01"}, "give --end or --for"},
		{"bad start", []string{"silence", "add", "service=x", "-m", "x", "--start", "tomorrow"}, "--start: \"tomorrow\" is not a date"},
		{"bad matcher", []string{"silence", "add", "service", "-m", "x"}, `matcher "service": want =, !=, =~ or !~`},
		{"no matcher", []string{"silence", "add", "-m", "x"}, "requires at least 1 arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := runAPICmd(t, append(tc.args, op...)...)
			if code != exitUnknown || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, stderr %q; want 3 and %q", code, errOut, tc.want)
			}
		})
	}

	out, errOut, code = runAPICmd(t, append([]string{"silence", "expire", "s1"}, op...)...)
	if code != exitOK || out != "Expired silence s1.\n" {
		t.Errorf("expire: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, errOut, code = runAPICmd(t, append([]string{"silence", "expire", "s9"}, op...)...)
	if code != exitWarning || !strings.Contains(errOut, "no silence s9 on ") {
		t.Errorf("expire unknown: exit %d, stderr %q", code, errOut)
	}

	out, errOut, code = runAPICmd(t, "silence", "ls", "--server", url, "--token", viewerToken)
	if code != exitOK {
		t.Fatalf("ls: exit %d: %s", code, errOut)
	}
	for _, re := range []string{
		`(?m)^ID\s+STATE\s+MATCHERS\s+ENDS\s+AUTHOR\s+COMMENT$`,
		`(?m)^s1\s+expired by alice\s+service=orders\s+\d+s ago\s+bob\s+migration$`,
		`(?m)^s2\s+active\s+service=orders,target=~tcp://db-\.\*\s+in 1h59m\s+alice\s+schema migration$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ls output does not match %s:\n%s", re, out)
		}
	}
}

// TestNotifyTest sends a test message to a webhook receiver, and reports a receiver that
// fails and one that does not exist.
func TestNotifyTest(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
	}))
	t.Cleanup(ok.Close)
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "robot disabled", http.StatusForbidden)
	}))
	t.Cleanup(broken.Close)
	path := filepath.Join(t.TempDir(), "portpatrol.yaml")
	yaml := fmt.Sprintf("notify:\n  receivers:\n    - {name: default, type: webhook, url: %q}\n    - {name: broken, type: webhook, url: %q}\n", ok.URL, broken.URL)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := runAPICmd(t, "notify", "test", "default", "-c", path)
	if code != exitOK || out != "sent a test message to default (webhook)\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	mu.Lock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `"kind":"test"`) {
		t.Errorf("the webhook got %q, want one test message", bodies)
	}
	mu.Unlock()

	_, errOut, code = runAPICmd(t, "notify", "test", "broken", "-c", path)
	if code != exitCritical || !strings.Contains(errOut, `receiver "broken" (webhook)`) || !strings.Contains(errOut, "403") {
		t.Errorf("failing receiver: exit %d, stderr %q; want 2 and the provider's error", code, errOut)
	}
	_, errOut, code = runAPICmd(t, "notify", "test", "nobody", "-c", path)
	if code != exitUnknown || !strings.Contains(errOut, `unknown receiver "nobody"; configured: broken, default`) {
		t.Errorf("unknown receiver: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = runAPICmd(t, "notify", "test", "default")
	if code != exitUnknown || !strings.Contains(errOut, "-c CONFIG is required") {
		t.Errorf("no config: exit %d, stderr %q", code, errOut)
	}
}
