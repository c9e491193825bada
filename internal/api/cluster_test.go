package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func (f *fake) ClusterStatus(context.Context) ClusterStatus {
	return ClusterStatus{Self: "s1", Location: "eu", Connected: true, Leader: "s2", Token: 41, Epoch: 7, Targets: 14,
		Locations: []string{"eu", "us"},
		Members: []ClusterMember{{ID: "s1", Location: "eu", Role: "serve", Owned: 7, Started: time.Unix(0, 0).UTC()},
			{ID: "s2", Location: "eu", Role: "serve", Owned: 7, Leader: true, Started: time.Unix(0, 0).UTC()},
			{ID: "g1", Location: "us", Role: "agent", Owned: 14, Started: time.Unix(0, 0).UTC()}}}
}

func TestClusterStatusAnswersOrSaysOff(t *testing.T) {
	f, _ := newWorld()
	rec := do(t, newServer(f, nil), "GET", "/api/v1/cluster", viewerSecret, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("got %d: %s", rec.Code, rec.Body)
	}
	var st ClusterStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Leader != "s2" || st.Token != 41 || len(st.Members) != 3 || !st.Members[1].Leader || st.Members[2].Owned != 14 {
		t.Errorf("got %+v", st)
	}
	off := newServer(f, func(c *Config) { c.Cluster = nil })
	if rec := do(t, off, "GET", "/api/v1/cluster", viewerSecret, ""); rec.Code != http.StatusNotImplemented || !strings.Contains(rec.Body.String(), "cluster.url") {
		t.Errorf("without cluster mode: got %d %s, want 501 naming cluster.url", rec.Code, rec.Body)
	}
	if rec := do(t, newServer(f, nil), "GET", "/api/v1/cluster", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("without a token: got %d, want 401", rec.Code)
	}
}
