package status_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/status"
)

var now = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// source is a fake Source.
type source struct {
	mu       sync.Mutex
	alerts   []patrol.Alert
	services []status.Listed
	notes    []patrol.StatusNote
}

func (s *source) Alerts(context.Context) []patrol.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]patrol.Alert(nil), s.alerts...)
}

func (s *source) Services(context.Context) []status.Listed { return s.services }

func (s *source) ListStatusNotes(context.Context) ([]patrol.StatusNote, error) { return s.notes, nil }

// listed lists services under their own names.
func listed(keys ...string) []status.Listed {
	out := make([]status.Listed, len(keys))
	for i, k := range keys {
		out[i] = status.Listed{Key: k, Name: k}
	}
	return out
}

// memStore is a fake Store.
type memStore struct {
	mu   sync.Mutex
	docs map[string][]byte
	puts int
	fail error
}

func (m *memStore) PutHistory(_ context.Context, svc string, doc []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	if m.docs == nil {
		m.docs = map[string][]byte{}
	}
	m.docs[svc] = doc
	m.puts++
	return nil
}

func (m *memStore) ListHistory(context.Context) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.docs), nil
}

const (
	cacheTarget = "tcp://10.1.2.3:6379"
	cacheError  = "connection refused"
)

// cacheDown is a firing P0 on the cache, with the internals the page must not show.
func cacheDown() patrol.Alert {
	return patrol.Alert{
		ID: "3fa85f64a1b2-1kq2", Fingerprint: "unreachable@" + cacheTarget, Rule: "unreachable",
		Class: patrol.AlertUnreachable, Severity: patrol.P0, State: patrol.AlertFiring, Target: cacheTarget,
		Labels:  map[string]string{"service": "cache", "host": "10.1.2.3", "customer": "acme"},
		Summary: cacheTarget + " unreachable: refused: " + cacheError, Description: "dial 10.1.2.3:6379: " + cacheError,
		RunbookURL: "https://wiki.internal/runbooks/unreachable", StartsAt: now.Add(-20 * time.Minute),
		FiredAt: now.Add(-19 * time.Minute), Told: []string{"noc-pager"},
		Evidence: []patrol.Result{{Target: cacheTarget, Class: patrol.ClassRefused, Error: cacheError, Start: now.Add(-time.Minute)}},
	}
}

func newPage(t *testing.T, src *source, st status.Store) *status.Page {
	t.Helper()
	p, err := status.New(status.Config{Source: src, Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, h http.Handler, path string) (int, http.Header, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// TestNoInternals: the HTML page and the JSON show the service's status and never the
// target, its address, port, error, alert ID, rule, runbook or receivers.
func TestNoInternals(t *testing.T) {
	slow := cacheDown()
	slow.ID, slow.Severity, slow.Class, slow.Target = "slow-1", patrol.P1, patrol.AlertSlow, "https://10.1.2.9:8443/api"
	slow.Labels = map[string]string{"service": "api"}
	src := &source{alerts: []patrol.Alert{cacheDown(), slow}, services: listed("api", "cache", "web")}
	mux := http.NewServeMux()
	page := newPage(t, src, nil)
	mux.Handle("GET /status", page)
	mux.Handle("GET /status.json", page)

	code, hdr, html := get(t, mux, "/status")
	if code != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /status: %d %s", code, hdr.Get("Content-Type"))
	}
	code, hdr, js := get(t, mux, "/status.json")
	if code != http.StatusOK || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /status.json: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{"cache", "Major outage", "api", "Degraded", "web", "Operational", "since 2026-03-10 11:40 UTC"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, body := range []struct{ name, text string }{{"HTML", html}, {"JSON", js}} {
		for _, secret := range []string{cacheTarget, "10.1.2.3", "6379", cacheError, "refused", "3fa85f64a1b2", "unreachable",
			"wiki.internal", "noc-pager", "acme", "10.1.2.9", "8443", "slow-1"} {
			if strings.Contains(body.text, secret) {
				t.Errorf("%s contains %q", body.name, secret)
			}
		}
		if strings.Contains(body.text, "<script") {
			t.Errorf("%s has a script", body.name)
		}
	}

	var rep status.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string]status.State{}
	for _, s := range rep.Services {
		got[s.Name] = s.State
		if len(s.History) != status.Days {
			t.Errorf("%s: %d days of history, want %d", s.Name, len(s.History), status.Days)
		}
	}
	want := map[string]status.State{"api": status.Degraded, "cache": status.MajorOutage, "web": status.Operational}
	if diff := cmp.Diff(want, got); diff != "" || rep.State != status.MajorOutage {
		t.Errorf("states (-want +got):\n%s\noverall %s", diff, rep.State)
	}
	if c := rep.Services[1]; len(c.Incidents) != 1 || !c.Incidents[0].StartedAt.Equal(now.Add(-20*time.Minute)) || c.History[status.Days-1].State != status.MajorOutage {
		t.Errorf("cache: got %+v, want one incident since 20 minutes ago, today in outage", c)
	}
}

// TestWhatShows: pending, P2–P3, security findings, silenced and in-maintenance alerts
// are not public incidents; inhibited ones are; alerts without a service are not shown.
func TestWhatShows(t *testing.T) {
	mk := func(mod func(*patrol.Alert)) patrol.Alert {
		a := cacheDown()
		mod(&a)
		return a
	}
	for _, tc := range []struct {
		name  string
		alert patrol.Alert
		want  status.State
	}{
		{"firing P0", cacheDown(), status.MajorOutage},
		{"acknowledged", mk(func(a *patrol.Alert) { a.State = patrol.AlertAcknowledged }), status.MajorOutage},
		{"inhibited", mk(func(a *patrol.Alert) { a.State, a.MutedBy = patrol.AlertSilenced, "inhibited by x (host down)" }), status.MajorOutage},
		{"pending", mk(func(a *patrol.Alert) { a.State, a.FiredAt = patrol.AlertPending, time.Time{} }), status.Operational},
		{"P2", mk(func(a *patrol.Alert) { a.Severity, a.Class = patrol.P2, patrol.AlertCapacity }), status.Operational},
		{"security", mk(func(a *patrol.Alert) { a.Severity, a.Class = patrol.P1, patrol.AlertSecurity }), status.Operational},
		{"silenced", mk(func(a *patrol.Alert) { a.State, a.MutedBy = patrol.AlertSilenced, "silence s-1 by ops: known" }), status.Operational},
		{"maintenance", mk(func(a *patrol.Alert) { a.State, a.MutedBy = patrol.AlertSilenced, "maintenance upgrade" }), status.Operational},
		{"resolved", mk(func(a *patrol.Alert) { a.State, a.ResolvedAt = patrol.AlertResolved, now.Add(-time.Minute) }), status.Operational},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := cacheDown()
			other.Labels = map[string]string{"host": "10.1.2.3"}
			rep := newPage(t, &source{alerts: []patrol.Alert{tc.alert, other}, services: listed("cache")}, nil).Report(context.Background())
			if len(rep.Services) != 1 || rep.Services[0].State != tc.want {
				t.Errorf("got %+v, want cache only, %s", rep.Services, tc.want)
			}
		})
	}
}

// TestHistory: Sync keeps resolved incidents after the engine forgets them, saves them,
// a new page loads them, and incidents older than 30 days go.
func TestHistory(t *testing.T) {
	ctx := context.Background()
	old := cacheDown()
	old.ID, old.State = "old", patrol.AlertResolved
	old.StartsAt, old.ResolvedAt = now.AddDate(0, 0, -3), now.AddDate(0, 0, -3).Add(45*time.Minute)
	ancient := old
	ancient.ID, ancient.StartsAt, ancient.ResolvedAt = "ancient", now.AddDate(0, 0, -40), now.AddDate(0, 0, -40).Add(time.Hour)
	src := &source{alerts: []patrol.Alert{old, ancient}, services: listed("cache")}
	st := &memStore{}
	p := newPage(t, src, st)
	if err := p.Sync(ctx, now); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, now); err != nil || st.puts != 1 {
		t.Errorf("second Sync: %v, %d puts; want 1 put in all", err, st.puts)
	}

	// The engine forgets the alert; a restarted daemon loads what was saved.
	src.alerts = nil
	p2 := newPage(t, src, st)
	if err := p2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rep := p2.Report(ctx)
	c := rep.Services[0]
	wantPast := []status.Incident{{State: status.MajorOutage, StartedAt: old.StartsAt, ResolvedAt: old.ResolvedAt}}
	if diff := cmp.Diff(wantPast, c.Past); diff != "" || c.State != status.Operational {
		t.Errorf("past incidents (-want +got):\n%s\nstate %s", diff, c.State)
	}
	if d := c.History[status.Days-4]; d.Date != "2026-03-07" || d.State != status.MajorOutage {
		t.Errorf("3 days ago: got %+v, want 2026-03-07 major_outage", d)
	}
	if d := c.History[status.Days-1]; d.State != status.Operational {
		t.Errorf("today: got %+v, want operational", d)
	}
	_, _, html := get(t, p2, "/status")
	if !strings.Contains(html, "resolved after 45m") {
		t.Errorf("HTML lacks the past incident:\n%s", html)
	}

	// 31 days on, it is forgotten, in memory and in the store.
	if err := p2.Sync(ctx, now.AddDate(0, 0, 31)); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Since     time.Time         `json:"since"`
		Incidents []json.RawMessage `json:"incidents"`
	}
	if err := json.Unmarshal(st.docs["cache"], &doc); err != nil || len(doc.Incidents) != 0 || !doc.Since.Equal(old.StartsAt) {
		t.Errorf("stored history: got %s (%v), want no incidents, observed since the oldest incident %s", st.docs["cache"], err, old.StartsAt)
	}

	st.fail = errors.New("disk full")
	src.alerts = []patrol.Alert{old}
	if err := p2.Sync(ctx, now); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Sync with a failing store: got %v", err)
	}
}

func TestMethod(t *testing.T) {
	p := newPage(t, &source{}, nil)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: got %d, want 405", rec.Code)
	}
	if _, err := status.New(status.Config{}); err == nil {
		t.Error("New without a source: got no error")
	}
}
