package alert_test

import (
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TestLearnedReplacesAnomalyRule: with AnomalyRule.Learned (the daemon's learned
// detector runs) the p95 rule raises nothing on what it would page on, while
// ObserveAnomaly still raises a P3 under the rule's settings, with the given summary.
func TestLearnedReplacesAnomalyRule(t *testing.T) {
	h := newHarness(t, alert.Config{Rules: alert.Rules{Anomaly: alert.AnomalyRule{Rule: alert.Rule{For: time.Second}, Window: 10, Learned: true}}})
	ok := func(d time.Duration) {
		s := signal(db, patrol.ClassOK, patrol.StatusUp)
		s.Result.Duration = d
		s.At = h.now()
		h.observe(s)
		h.run(10 * time.Second)
	}
	for range 60 {
		ok(20 * time.Millisecond)
	}
	for range 5 {
		ok(200 * time.Millisecond)
	}
	if got := h.e.List(alert.Filter{}); len(got) != 0 {
		t.Fatalf("p95 rule with Learned: got %v, want no alert", got)
	}
	err := h.e.ObserveAnomaly(t.Context(), alert.Anomaly{Target: db, Metric: "baseline", Score: 0.999, Active: true,
		Summary: db + " anomalous against its learned baseline: latency (ms)", Why: "latency (ms) far above the usual"})
	if err != nil {
		t.Fatal(err)
	}
	h.run(2 * time.Second)
	a := h.one(alert.Filter{})
	if a.Rule != "anomaly:baseline" || a.Severity != patrol.P3 || a.State != patrol.AlertFiring || a.Summary != db+" anomalous against its learned baseline: latency (ms)" {
		t.Errorf("got %s %s %s %q, want anomaly:baseline P3 firing with the given summary", a.Rule, a.Severity, a.State, a.Summary)
	}
}
