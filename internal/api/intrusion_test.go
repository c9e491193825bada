package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fakeIntrusion is detection with conntrack working, nftables missing and two sources.
type fakeIntrusion struct{}

func (fakeIntrusion) IntrusionState(_ context.Context, top int) (IntrusionState, error) {
	st := IntrusionState{Enabled: true, DryRun: true, Conntrack: IntrusionPart{Available: true},
		Nftables: IntrusionPart{Reason: "open table: operation not permitted"}, Events: 1200, Lost: 1, Sources: 2, ActiveBans: 0,
		Scans:     []ScanCount{{Class: "scan", Kind: "fast_scan", Count: 3}},
		Allowlist: []AllowEntry{{Prefix: "127.0.0.0/8", Source: "loopback"}, {Prefix: "10.244.1.0/24", Source: "kubernetes pod range of node n1"}}}
	all := []TopSource{
		{Source: "203.0.113.7", Score: 140, DistinctPorts: 120, DistinctHosts: 1, NewFlows: 120, Refused: 20, FirstSeen: t0, LastSeen: t0.Add(time.Minute), Found: []string{"fast_scan"}, Banned: true},
		{Source: "198.51.100.20", Score: 1, DistinctPorts: 1, DistinctHosts: 1, NewFlows: 5, FirstSeen: t0, LastSeen: t0},
	}
	st.Top = all[:min(top, len(all))]
	return st, nil
}

func TestIntrusionRoute(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	doc := loadDoc(t)
	for _, tt := range []struct {
		path   string
		status int
		top    int
		want   string
	}{
		{"/api/v1/intrusion", http.StatusOK, 2, `"reason":"open table: operation not permitted"`},
		{"/api/v1/intrusion?top=1", http.StatusOK, 1, `"source":"203.0.113.7"`},
		{"/api/v1/intrusion?top=1", http.StatusOK, 1, `"allowlist":[{"prefix":"127.0.0.0/8","source":"loopback"},{"prefix":"10.244.1.0/24","source":"kubernetes pod range of node n1"}]`},
		{"/api/v1/intrusion?top=0", http.StatusOK, 0, `"top":[]`},
		{"/api/v1/intrusion?top=many", http.StatusBadRequest, 0, `top: \"many\" is not a number of sources between 0 and 500`},
		{"/api/v1/intrusion?top=501", http.StatusBadRequest, 0, `"field":"top"`},
	} {
		rec := do(t, s, "GET", tt.path, viewerSecret, "")
		if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
			t.Errorf("%s: got %d %s, want %d containing %s", tt.path, rec.Code, rec.Body, tt.status, tt.want)
			continue
		}
		checkResponse(t, doc, route{method: "GET", path: "/api/v1/intrusion"}, httptestRequest("GET", tt.path), rec.Code, rec.Header(), rec.Body.Bytes())
		if tt.status != http.StatusOK {
			continue
		}
		var st IntrusionState
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Top) != tt.top || st.Top == nil {
			t.Errorf("%s: got %d sources, want %d", tt.path, len(st.Top), tt.top)
		}
		if tt.top == 2 && (st.Top[1].Found == nil || !st.Top[0].Banned) {
			t.Errorf("%s: got %+v, want found as an empty list and the first banned", tt.path, st.Top)
		}
	}
	off := newServer(f, func(c *Config) { c.Intrusion = nil })
	if rec := do(t, off, "GET", "/api/v1/intrusion", viewerSecret, ""); rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "intrusion.enabled is false") {
		t.Errorf("without intrusion: got %d %s", rec.Code, rec.Body)
	}
}
