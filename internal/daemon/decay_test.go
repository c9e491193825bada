package daemon

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// A latency that creeps up over a week — too slowly for the learned baseline, which
// takes each day's level as the new normal — raises one P3 decay alert within the week,
// naming the ratio; a steady neighbour raises none. The comparison survives a restart
// through the store.
func TestLatencyDecayAlert(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	var raised []alert.Anomaly
	f := newAnomalyFeeder(0.995, func(_ context.Context, a alert.Anomaly) error {
		if a.Metric == decayMetric {
			raised = append(raised, a)
		}
		return nil
	}, nil, nil)
	creep := &schedule.Job{ID: "https://127.0.0.1:8443/health", Host: "127.0.0.1"}
	steady := &schedule.Job{ID: "tcp://127.0.0.1:5432", Host: "127.0.0.1"}
	rng := rand.New(rand.NewPCG(5, 5))
	rampAt := start.Add(14 * 24 * time.Hour)
	lat := func(at time.Time, base float64) time.Duration {
		h := float64(at.Hour()) + float64(at.Minute())/60
		ms := base * (1 + 0.3*math.Sin(2*math.Pi*h/24)) * math.Exp(0.2*rng.NormFloat64())
		return time.Duration(ms * float64(time.Millisecond))
	}
	feedUntil := func(from, to time.Time) {
		for at := from; at.Before(to); at = at.Add(30 * time.Second) {
			base := 10.0
			if at.After(rampAt) {
				base *= 1 + 1.5*min(1, at.Sub(rampAt).Hours()/(7*24)) // ×2.5 over the week
			}
			r := patrol.Result{Target: creep.ID, Start: at, Duration: lat(at, base), Class: patrol.ClassOK}
			f.feed(t.Context(), creep, &r)
			s := patrol.Result{Target: steady.ID, Start: at, Duration: lat(at, 10), Class: patrol.ClassOK}
			f.feed(t.Context(), steady, &s)
		}
	}
	feedUntil(start, rampAt.Add(4*24*time.Hour))
	db, _, err := OpenStore(t.Context(), parse(t, "host_watch: {disabled: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := f.save(t.Context(), db, rampAt.Add(4*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	// A restart in the middle of the ramp: the comparison goes on from the store.
	g := newAnomalyFeeder(0.995, f.raise, nil, nil)
	if _, err := g.restore(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	if g.targets[creep.ID].dc == nil || g.targets[creep.ID].dc.day != f.targets[creep.ID].dc.day {
		t.Fatal("the decay state was not restored")
	}
	f = g
	feedUntil(rampAt.Add(4*24*time.Hour), rampAt.Add(10*24*time.Hour))

	if len(raised) == 0 {
		t.Fatal("no decay alert for a latency that rose 2.5× in a week")
	}
	first := raised[0]
	if first.Target != creep.ID || !first.Active || first.Severity != "P3" || !strings.Contains(first.Summary, "× last week's") {
		t.Errorf("first decay alert: %+v", first)
	}
	for _, a := range raised {
		if a.Target == steady.ID {
			t.Errorf("decay alert on the steady target: %s", a.Summary)
		}
	}
	t.Logf("first decay alert %s after the ramp began: %s", first.At.Sub(rampAt), first.Summary)
	if d := first.At.Sub(rampAt); d > 7*24*time.Hour {
		t.Errorf("decay alert %s after the ramp began, want within the week", d)
	}
}

func TestDecayStateRejectsBadInput(t *testing.T) {
	var dc decay
	for i := range 20 {
		dc.point(time.Date(2026, 11, 2+i, 12, 0, 0, 0, time.UTC), 5+float64(i))
	}
	b, _ := dc.MarshalBinary()
	var back decay
	if err := back.UnmarshalBinary(b); err != nil || back.days != dc.days || back.p95 != dc.p95 {
		t.Fatalf("round trip: %v", err)
	}
	for i := range b {
		if (&decay{}).UnmarshalBinary(b[:i]) == nil {
			t.Fatalf("a state cut at %d bytes was accepted", i)
		}
	}
	bad := append([]byte(nil), b...)
	bad[20] = 99 // head out of range
	if (&decay{}).UnmarshalBinary(bad) == nil {
		t.Error("a head out of range was accepted")
	}
}
