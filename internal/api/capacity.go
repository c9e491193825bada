package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Capacity reports the capacity forecasts: every used/limit pair a probe reads, what
// runs out first at the top.
type Capacity interface {
	// CapacityForecasts fits each pair's long horizon over the last since (0: all
	// that is kept, 30 days).
	CapacityForecasts(ctx context.Context, since time.Duration) ([]CapacityForecast, error)
}

// CapacityForecast is one used/limit pair of a target: the latest reading, the fitted
// rise per day, and the time until the limit at that rate (absent when no rise toward
// the limit is forecast). Horizon is "short" (the last two hours of 5-minute windows)
// or "long" (hourly means over SpanSeconds); Severity is the open forecast alert's.
type CapacityForecast struct {
	Target      string    `json:"target"`
	What        string    `json:"what"`
	Used        float64   `json:"used"`
	Limit       float64   `json:"limit"`
	PerDay      float64   `json:"per_day"`
	ETASeconds  *float64  `json:"eta_seconds"`
	Horizon     string    `json:"horizon"`
	SpanSeconds float64   `json:"span_seconds"`
	Severity    string    `json:"severity,omitempty"`
	At          time.Time `json:"at"`
	Summary     string    `json:"summary"`
}

// Bands gives the learned latency band of a target for the history view.
type Bands interface {
	// LatencyBand returns the band at each of times; ok is false while the target's
	// detector is still learning, or when it has none.
	LatencyBand(ctx context.Context, target string, times []time.Time) (band []BandPoint, ok bool)
}

type capacityList struct {
	Since     string             `json:"since"`
	Forecasts []CapacityForecast `json:"forecasts"`
}

func (s *Server) capacityRoutes() []route {
	return []route{{"GET", "/api/v1/capacity", RoleViewer, s.listCapacity}}
}

func (s *Server) listCapacity(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.Capacity == nil {
		unavailable(w, "capacity forecasts (anomaly.enabled is false)")
		return
	}
	var since time.Duration
	if v := r.URL.Query().Get("since"); v != "" {
		d, bad := parseDays("since", v, time.Hour, 366*24*time.Hour)
		if bad != nil {
			writeBad(w, bad)
			return
		}
		since = d
	}
	fs, err := s.cfg.Capacity.CapacityForecasts(r.Context(), since)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if fs == nil {
		fs = []CapacityForecast{}
	}
	out := capacityList{Forecasts: fs}
	if since > 0 {
		out.Since = since.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// parseDays is parseDuration that also takes whole days ("30d").
func parseDays(field, v string, lo, hi time.Duration) (time.Duration, *badRequest) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > int(hi/(24*time.Hour)) {
			return 0, badField(field, "%q is not a number of days from 1 to %d", v, hi/(24*time.Hour))
		}
		v = strconv.Itoa(days*24) + "h"
	}
	return parseDuration(field, v, lo, hi)
}
