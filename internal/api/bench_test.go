package api

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// BenchmarkTargetsOverview10k measures GET /api/v1/targets over 10,000 targets with
// 200 open alerts, authentication included. Goal: under 100 ms per request.
func BenchmarkTargetsOverview10k(b *testing.B) {
	const n = 10000
	states := make([]patrol.TargetState, n)
	for i := range states {
		st := patrol.StatusUp
		if i%50 == 0 {
			st = patrol.StatusDown
		}
		states[i] = patrol.TargetState{
			Target: fmt.Sprintf("tcp://host-%04d.dc1.internal:%d", i/4, 5432+i%4), Status: st, Since: t0,
			Labels: map[string]string{"service": fmt.Sprintf("svc-%02d", i%40), "env": "prod"},
			Last:   patrol.ResultSummary{Time: t0, Class: patrol.ClassOK, Duration: time.Duration(i%90+1) * time.Millisecond},
		}
	}
	var alerts []patrol.Alert
	for i := 0; i < n; i += 50 {
		alerts = append(alerts, patrol.Alert{ID: fmt.Sprint("a", i), Target: states[i].Target, Severity: patrol.P0,
			State: patrol.AlertFiring, StartsAt: t0})
	}
	f, _ := newWorld()
	f.targetStates = func(context.Context) ([]patrol.TargetState, error) { return states, nil }
	f.listAlerts = func(context.Context, AlertFilter) ([]patrol.Alert, error) { return alerts, nil }
	s := newServer(f, nil)
	req := httptest.NewRequest("GET", "/api/v1/targets", nil)
	req.Header.Set("Authorization", "Bearer "+viewerSecret)
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("got %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/request")
	b.ReportMetric(float64(size)/1e6, "MB/response")
	b.Logf("GET /api/v1/targets, %d targets: %.1f ms per request, %.2f MB (goal: under 100 ms)", n, float64(per.Microseconds())/1000, float64(size)/1e6)
}
