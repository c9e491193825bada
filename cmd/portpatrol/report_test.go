package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/api"
)

// capacityWorld answers the capacity report with fixed rows and records the since
// it was asked for.
type capacityWorld struct{ since time.Duration }

func (w *capacityWorld) CapacityForecasts(_ context.Context, since time.Duration) ([]api.CapacityForecast, error) {
	w.since = since
	eta := (3*time.Hour + 10*time.Minute).Seconds()
	far := (40 * 24 * time.Hour).Seconds()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	return []api.CapacityForecast{
		{Target: "redis://127.0.0.1:6379", What: "clients", Used: 7420, Limit: 10000, PerDay: 19440, ETASeconds: &eta, Horizon: "short",
			SpanSeconds: 6900, Severity: "P3", At: at, Summary: "at this rate clients reach their limit (10000) in 3h10m0s"},
		{Target: "postgres://127.0.0.1:5432", What: "connections", Used: 61, Limit: 100, PerDay: 0.9, ETASeconds: &far, Horizon: "long",
			SpanSeconds: 20 * 86400, At: at},
		{Target: "mysql://127.0.0.1:3306", What: "connections", Used: 12, Limit: 151, PerDay: -0.2, Horizon: "short", At: at},
	}, nil
}

func TestReportCapacity(t *testing.T) {
	w := &capacityWorld{}
	srv := httptest.NewServer(api.New(api.Config{Capacity: w, Tokens: api.StaticTokens{
		{ID: "t1", Name: "grafana", Role: api.RoleViewer, Secret: viewerToken},
	}}))
	t.Cleanup(srv.Close)
	view := []string{"--server", srv.URL, "--token", viewerToken}

	out, errOut, code := runAPICmd(t, append([]string{"report", "capacity"}, view...)...)
	if code != exitOK {
		t.Fatalf("report capacity: exit %d, %s", code, errOut)
	}
	for _, want := range []string{
		"TARGET                     WHAT         USED  LIMIT  PER DAY  RUNS OUT IN  FIT            ALERT",
		"redis://127.0.0.1:6379     clients      7420  10000  +19440   3h10m0s      short 1h55m0s  P3",
		"postgres://127.0.0.1:5432  connections  61    100    +0.9     40.0d        long 20.0d     -",
		"mysql://127.0.0.1:3306     connections  12    151    -0.2     -            -              -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report capacity: missing %q in:\n%s", want, out)
		}
	}
	if w.since != 0 {
		t.Errorf("since without --since: %v", w.since)
	}
	if _, errOut, code = runAPICmd(t, append([]string{"report", "capacity", "--since", "7d"}, view...)...); code != exitOK || w.since != 7*24*time.Hour {
		t.Errorf("--since 7d: exit %d (%s), the daemon was asked for %v", code, errOut, w.since)
	}
	_, errOut, code = runAPICmd(t, append([]string{"report", "capacity", "--since", "soon"}, view...)...)
	if code != exitUnknown || !strings.Contains(errOut, "since") {
		t.Errorf("--since soon: exit %d, %q; want bad input naming since", code, errOut)
	}
	out, _, code = runAPICmd(t, append([]string{"report", "capacity", "--json"}, view...)...)
	if code != exitOK || !strings.Contains(out, `"eta_seconds": 11400`) || !strings.Contains(out, `"eta_seconds": null`) {
		t.Errorf("report capacity --json: exit %d:\n%s", code, out)
	}
}
