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
