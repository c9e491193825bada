package alert_test

import (
	"slices"
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

// TestUnconfirmedFailureKeepsVanishedListener: the host watch's vanished-listener
// finding and the probe's unreachable rule are one incident. When the watch sees the
// listener gone before the probe has confirmed its failures, the probe's first failure
// (the scheduler still judges the target up) neither resolves the watch's P0 nor pages
// again: one firing, and the resolve only once the listener answers.
func TestUnconfirmedFailureKeepsVanishedListener(t *testing.T) {
	h := newHarness(t, chainConfig())
	h.up(db)
	h.run(time.Second)
	err := h.e.ObserveFinding(t.Context(), patrol.Finding{Class: patrol.AlertUnreachable, Subject: db, Severity: "P0",
		Active: true, Summary: "Listener tcp " + db + " is gone", Labels: map[string]string{"source": "hostwatch"}})
	if err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	fired := h.one(alert.Filter{})
	h.observe(signal(db, patrol.ClassRefused, patrol.StatusUp)) // the first failure: not confirmed
	h.run(time.Second)
	h.down(db, patrol.ClassRefused) // confirmed
	h.run(time.Second)
	if a := h.one(alert.Filter{}); a.ID != fired.ID || a.State != patrol.AlertFiring {
		t.Errorf("after the probe's failures: got %s %s, want %s still firing", a.ID, a.State, fired.ID)
	}
	h.up(db)
	h.run(time.Second)
	if got, want := sent(h.sink.take()), []string{"firing noc " + db + "/unreachable", "resolved noc " + db + "/unreachable"}; !slices.Equal(got, want) {
		t.Errorf("notifications: got %q, want %q", got, want)
	}
}
