package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/status"
)

// TestNoDataBeforeFirstObservation: a page six minutes old shows one observed day and
// 29 days of no data, not 30 green days; after a restart it remembers when it began.
func TestNoDataBeforeFirstObservation(t *testing.T) {
	ctx := context.Background()
	start := now.Add(-6 * time.Minute)
	clock := start
	src := &source{services: listed("web")}
	st := &memStore{}
	p, err := status.New(status.Config{Source: src, Store: st, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(ctx, start); err != nil {
		t.Fatal(err)
	}
	clock = now
	check := func(p *status.Page) {
		t.Helper()
		rep := p.Report(ctx)
		h := rep.Services[0].History
		for i, d := range h[:status.Days-1] {
			if d.State != status.NoData {
				t.Fatalf("day %d (%s): got %s, want no_data", i, d.Date, d.State)
			}
		}
		if h[status.Days-1].State != status.Operational || rep.State != status.Operational {
			t.Errorf("today %s, page %s; want operational", h[status.Days-1].State, rep.State)
		}
		if !rep.Services[0].Since.Equal(start) {
			t.Errorf("observed since %s, want %s", rep.Services[0].Since, start)
		}
	}
	check(p)
	_, _, html := get(t, p, "/status")
	if n := strings.Count(html, `<span class="no_data"`); n != status.Days-1 {
		t.Errorf("HTML has %d no-data days, want %d", n, status.Days-1)
	}
	// Restarted two days later, it still knows when observation began.
	clock = now.Add(48 * time.Hour)
	p2, _ := status.New(status.Config{Source: src, Store: st, Now: func() time.Time { return clock }})
	if err := p2.Load(ctx); err != nil {
		t.Fatal(err)
	}
	rep := p2.Report(ctx)
	h := rep.Services[0].History
	if h[status.Days-4].State != status.NoData || h[status.Days-3].State != status.Operational {
		t.Errorf("after restart: %v, want no data until the day observation began", h[status.Days-5:])
	}
}

// TestLoadsOldDocuments: history saved as a bare array by earlier versions loads.
func TestLoadsOldDocuments(t *testing.T) {
	ctx := context.Background()
	old := `[{"id":"x","severity":"P0","start":"2026-03-05T10:00:00Z","end":"2026-03-05T11:00:00Z"}]`
	st := &memStore{docs: map[string][]byte{"cache": []byte(old)}}
	p := newPage(t, &source{services: listed("cache")}, st)
	if err := p.Load(ctx); err != nil {
		t.Fatal(err)
	}
	c := p.Report(ctx).Services[0]
	if len(c.Past) != 1 || c.History[status.Days-6].State != status.MajorOutage || c.History[status.Days-7].State != status.NoData {
		t.Errorf("got %+v", c)
	}
}

// TestOnlyPublicServices: a service not marked public never shows, not even in an
// outage; listed ones show under their public names, in the configured order.
func TestOnlyPublicServices(t *testing.T) {
	db := cacheDown()
	db.ID, db.Labels = "db-1", map[string]string{"service": "db"}
	pay := cacheDown()
	pay.ID, pay.Labels = "pay-1", map[string]string{"service": "payments-api"}
	src := &source{alerts: []patrol.Alert{db, pay},
		services: []status.Listed{{Key: "web", Name: "Website"}, {Key: "payments-api", Name: "Payments"}}}
	page := newPage(t, src, nil)
	_, _, html := get(t, page, "/status")
	_, _, js := get(t, page, "/status.json")
	var rep status.Report
	if err := json.Unmarshal([]byte(js), &rep); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rep.Services {
		names = append(names, s.Name+"="+string(s.State))
	}
	if got := strings.Join(names, " "); got != "Website=operational Payments=major_outage" {
		t.Errorf("services %q", got)
	}
	for _, secret := range []string{">db<", "payments-api", "db-1"} {
		if strings.Contains(html, secret) || strings.Contains(js, secret) {
			t.Errorf("the page shows %q", secret)
		}
	}
}

// TestTitleLogoZoneNotes: title, logo text and zone are the configured ones; notes
// show under their service (by key or public name) or for the page, without author.
func TestTitleLogoZoneNotes(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skipf("no zone database: %v", err)
	}
	src := &source{alerts: []patrol.Alert{cacheDown()}, services: []status.Listed{{Key: "cache", Name: "Sessions"}},
		notes: []patrol.StatusNote{
			{ID: "n1", Service: "Sessions", State: "identified", Text: "A cache node failed; traffic moves to its replica.", Author: "alice", CreatedAt: now.Add(-5 * time.Minute)},
			{ID: "n2", State: "monitoring", Text: "Logins may be slow for a few minutes.", Author: "alice", CreatedAt: now.Add(-2 * time.Minute)},
			{ID: "n3", Service: "internal-db", State: "investigating", Text: "Reports are delayed.", Author: "bob", CreatedAt: now.Add(-time.Minute)},
		}}
	p, err := status.New(status.Config{Source: src, Notes: src, Title: "Acme status", LogoText: "ACME", Location: berlin, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_, _, html := get(t, p, "/status")
	for _, want := range []string{"<title>Acme status</title>", `<span class="logo">ACME</span>`, "times are in Europe/Berlin",
		"since 2026-03-10 12:40 CET", "<b>Identified</b> — A cache node failed", "<b>Monitoring</b> — Logins may be slow", "Reports are delayed."} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	for _, secret := range []string{"alice", "bob", "internal-db", "n1"} {
		if strings.Contains(html, secret) {
			t.Errorf("HTML shows %q", secret)
		}
	}
	rep := p.Report(context.Background())
	if len(rep.Notes) != 2 || rep.Notes[0].Text != "Reports are delayed." || len(rep.Services[0].Notes) != 1 {
		t.Errorf("page notes %+v, service notes %+v", rep.Notes, rep.Services[0].Notes)
	}
}

// TestStandalone: the page's own listener serves the page and its JSON, nothing else.
func TestStandalone(t *testing.T) {
	h := newPage(t, &source{services: listed("web")}, nil).Standalone()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/", 200}, {"GET", "/status", 200}, {"GET", "/status.json", 200},
		{"GET", "/api/v1/targets", 404}, {"GET", "/metrics", 404}, {"GET", "/index.html", 404}, {"POST", "/", 405},
	} {
		code, _, body := func() (int, http.Header, string) {
			if tc.method == "GET" {
				return get(t, h, tc.path)
			}
			rec := newRecorder(h, tc.method, tc.path)
			return rec.Code, rec.Header(), rec.Body.String()
		}()
		if code != tc.code {
			t.Errorf("%s %s: got %d, want %d: %.80s", tc.method, tc.path, code, tc.code, body)
		}
	}
}

func newRecorder(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// TestOneLinePerState: five targets of a service down are one outage since the first.
func TestOneLinePerState(t *testing.T) {
	var alerts []patrol.Alert
	for i := range 5 {
		a := cacheDown()
		a.ID, a.StartsAt = fmt.Sprintf("a%d", i), now.Add(-time.Duration(10-i)*time.Minute)
		alerts = append(alerts, a)
	}
	slow := cacheDown()
	slow.ID, slow.Severity, slow.Class, slow.StartsAt = "slow", patrol.P1, patrol.AlertSlow, now.Add(-time.Hour)
	rep := newPage(t, &source{alerts: append(alerts, slow), services: listed("cache")}, nil).Report(context.Background())
	want := []status.Incident{{State: status.MajorOutage, StartedAt: now.Add(-10 * time.Minute)}, {State: status.Degraded, StartedAt: now.Add(-time.Hour)}}
	if got := rep.Services[0].Incidents; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
