package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

func (f *fake) CapacityForecasts(_ context.Context, since time.Duration) ([]CapacityForecast, error) {
	eta := 11400.0
	return []CapacityForecast{
		{Target: "redis://127.0.0.1:6379", What: "clients", Used: 7420, Limit: 10000, PerDay: 19440, ETASeconds: &eta,
			Horizon: "short", SpanSeconds: 6900 + since.Seconds(), Severity: "P3", At: t0, Summary: "at this rate clients reach their limit (10000) in 3h10m0s"},
		{Target: "mysql://127.0.0.1:3306", What: "connections", Used: 12, Limit: 151, PerDay: -0.2, Horizon: "short", At: t0},
	}, nil
}

func TestCapacityForecasts(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	for _, tt := range []struct {
		query  string
		status int
		span   float64
	}{
		{"", http.StatusOK, 6900},
		{"?since=7d", http.StatusOK, 6900 + 7*86400},
		{"?since=36h", http.StatusOK, 6900 + 36*3600},
		{"?since=soon", http.StatusBadRequest, 0},
		{"?since=0d", http.StatusBadRequest, 0},
		{"?since=400d", http.StatusBadRequest, 0},
	} {
		rec := do(t, s, "GET", "/api/v1/capacity"+tt.query, viewerSecret, "")
		if rec.Code != tt.status {
			t.Errorf("%s: got %d, want %d: %s", tt.query, rec.Code, tt.status, rec.Body)
			continue
		}
		if tt.status != http.StatusOK {
			var e errorBody
			if json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Field != "since" {
				t.Errorf("%s: got %s, want an error naming since", tt.query, rec.Body)
			}
			continue
		}
		var v capacityList
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil || len(v.Forecasts) != 2 || v.Forecasts[0].SpanSeconds != tt.span || v.Forecasts[1].ETASeconds != nil {
			t.Errorf("%s: got %s (%v)", tt.query, rec.Body, err)
		}
	}
}

func (f *fake) LatencyBand(_ context.Context, target string, times []time.Time) ([]BandPoint, bool) {
	if target != dbID {
		return nil, false
	}
	out := make([]BandPoint, len(times))
	for i, at := range times {
		out[i] = BandPoint{Time: at, Lower: 0.001, Expected: 0.002, Upper: 0.004}
	}
	return out, true
}

// A target's history carries the learned band at the middle of each bucket, when its
// detector has one.
func TestHistoryCarriesTheLearnedBand(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	rec := do(t, s, "GET", "/api/v1/targets/history?id="+dbID, viewerSecret, "")
	var v historyView
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &v) != nil {
		t.Fatalf("history: %d %s", rec.Code, rec.Body)
	}
	if len(v.Points) == 0 || len(v.Band) != len(v.Points) {
		t.Fatalf("got %d band points for %d points: %s", len(v.Band), len(v.Points), rec.Body)
	}
	if mid := v.Points[0].Time.Add(time.Duration(v.StepSeconds*1e9) / 2); !v.Band[0].Time.Equal(mid) || v.Band[0].Expected != 0.002 {
		t.Errorf("band[0] = %+v, want at %v", v.Band[0], mid)
	}
}
