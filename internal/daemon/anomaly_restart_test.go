package daemon

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
)

// anomalyConfig has one target whose latency threshold is learned, and no host watch.
const anomalyConfig = `host_watch: {disabled: true}
targets:
  - url: tcp://127.0.0.1:6379
    warn: auto
    labels: {service: cache}
`

// steadyResults feeds the daemon's result path a result of tcp://127.0.0.1:6379 every
// 30 seconds from `from` for `dur`: about 2 ms with a daily cycle and noise; scale
// multiplies the latency.
func steadyResults(t *testing.T, d *Daemon, rng *rand.Rand, from time.Time, dur time.Duration, scale float64) time.Time {
	t.Helper()
	job := &schedule.Job{ID: "tcp://127.0.0.1:6379", Host: "127.0.0.1", Labels: map[string]string{"service": "cache"}}
	at := from
	for ; at.Before(from.Add(dur)); at = at.Add(30 * time.Second) {
		h := float64(at.Hour()) + float64(at.Minute())/60
		ms := 2 * (1 + 0.3*math.Sin(2*math.Pi*h/24)) * math.Exp(0.05*rng.NormFloat64()) * scale
		d.onResult(schedule.Event{Job: job, Status: patrol.StatusUp,
			Result: patrol.Result{Target: job.ID, Start: at, Duration: time.Duration(ms * float64(time.Millisecond)), Class: patrol.ClassOK}})
	}
	return at
}

// The learned baselines survive a restart: Close saves them to the store, New restores
// them, and the restored detector is the one that was saved — so the daemon pages on
// an anomaly right after the restart, which a detector learning from scratch could
// not (it learns for a day first). The alert goes through the engine: a silence on the
// target's host mutes it.
func TestAnomalyBaselinesSurviveRestart(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	clock := notifytest.NewClock(start)
	dir := t.TempDir()
	d1, err := New(Config{Config: parse(t, anomalyConfig), DataDir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	end := steadyResults(t, d1, rng, start, 3*24*time.Hour, 1)
	clock.Advance(end.Sub(clock.Now()))
	if n := d1.anomalies.Len(); n != 2 {
		t.Fatalf("series learned: got %d, want 2 (latency, failure ratio)", n)
	}
	tgt := d1.anomalies.target("tcp://127.0.0.1:6379")
	saved, err := tgt.sig[sigLatency].det.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}

	d2, err := New(Config{Config: parse(t, anomalyConfig), DataDir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d2.Close() })
	if n := d2.anomalies.Len(); n != 2 {
		t.Fatalf("series restored: got %d, want 2", n)
	}
	got, err := d2.anomalies.target("tcp://127.0.0.1:6379").sig[sigLatency].det.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, saved) {
		t.Fatalf("restored latency state differs from the saved one (%d and %d bytes)", len(got), len(saved))
	}

	ctx := t.Context()
	m, err := patrol.ParseMatcher("host=127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d2.engine().CreateSilence(ctx, patrol.Silence{Matchers: patrol.Matchers{m}, Author: "test", Comment: "maintenance",
		StartsAt: end, EndsAt: end.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// Latency ×4 for 30 minutes, then back to normal for an hour.
	at := steadyResults(t, d2, rng, end, 30*time.Minute, 4)
	clock.Advance(at.Sub(clock.Now()))
	if err := d2.engine().Tick(ctx, at); err != nil {
		t.Fatal(err)
	}
	list := d2.engine().List(alert.Filter{Target: "tcp://127.0.0.1:6379", States: patrol.AlertStates})
	var an *patrol.Alert
	for i := range list {
		if list[i].Class == patrol.AlertAnomaly {
			an = &list[i]
		}
	}
	if an == nil {
		t.Fatalf("no anomaly alert after latency ×4 for 30 minutes on a restored baseline; alerts: %+v", list)
	}
	if an.State != patrol.AlertSilenced || an.Severity != patrol.P3 || an.Rule != "anomaly:baseline" {
		t.Errorf("anomaly alert: got state %s, severity %s, rule %s; want silenced, P3, anomaly:baseline", an.State, an.Severity, an.Rule)
	}
	if !strings.Contains(an.Description, "latency (ms) far above the usual") || !strings.Contains(an.Description, "band") {
		t.Errorf("description gives no reason or band:\n%s", an.Description)
	}
	if an.Labels["service"] != "cache" || an.Labels["host"] != "127.0.0.1" {
		t.Errorf("labels: got %v, want the target's service and host", an.Labels)
	}
	// The slow results were judged against the learned threshold (warn: auto): the
	// P1 slow rule saw them.
	slow := false
	for _, a := range list {
		slow = slow || a.Class == patrol.AlertSlow
	}
	if !slow {
		t.Errorf("warn: auto: no slow alert after 30 minutes at 4× the learned latency; alerts: %+v", list)
	}
	// A restart while the alert is open: the next daemon clears it once the latency
	// is back.
	if err := d2.Close(); err != nil {
		t.Fatal(err)
	}
	d3, err := New(Config{Config: parse(t, anomalyConfig), DataDir: dir, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d3.Close() })
	at = steadyResults(t, d3, rng, at, time.Hour, 1)
	clock.Advance(at.Sub(clock.Now()))
	if err := d3.engine().Tick(ctx, at); err != nil {
		t.Fatal(err)
	}
	for _, a := range d3.engine().List(alert.Filter{Target: "tcp://127.0.0.1:6379"}) {
		if a.Class == patrol.AlertAnomaly {
			t.Errorf("anomaly alert still %s an hour after the latency came back: %s", a.State, a.Summary)
		}
	}
}

// warn: auto turns a result slow only when it is slower than the slowest result of a
// usual window at that hour, and never while the series is still learning.
func TestAnomalyAutoWarn(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	f := newAnomalyFeeder(0.995, func(context.Context, alert.Anomaly) error { return nil }, func(string) bool { return true }, nil)
	job := &schedule.Job{ID: "tcp://127.0.0.1:6379", Host: "127.0.0.1"}
	rng := rand.New(rand.NewPCG(3, 4))
	res := func(at time.Time, ms float64) patrol.Result {
		r := patrol.Result{Target: job.ID, Start: at, Duration: time.Duration(ms * float64(time.Millisecond)), Class: patrol.ClassOK}
		f.feed(t.Context(), job, &r)
		return r
	}
	at := start
	slowWhileLearning := 0
	for ; at.Before(start.Add(2 * 24 * time.Hour)); at = at.Add(30 * time.Second) {
		ms := 2 * math.Exp(0.05*rng.NormFloat64())
		if at.Before(start.Add(12 * time.Hour)) {
			ms *= 10 // learning: nothing is slow yet, however slow
		}
		if r := res(at, ms); r.Class != patrol.ClassOK {
			slowWhileLearning++
		}
	}
	if slowWhileLearning > 0 {
		t.Errorf("%d results slow while learning or within the usual spread; want none", slowWhileLearning)
	}
	r := res(at, 6)
	t.Logf("6 ms: %s, %s", r.Class, r.Error)
	if r.Class != patrol.ClassSlow || !strings.Contains(r.Error, "learned for") {
		t.Errorf("6 ms where 2 ms is usual: got %s %q, want slow over the learned threshold", r.Class, r.Error)
	}
	if r := res(at.Add(30*time.Second), 2); r.Class != patrol.ClassOK {
		t.Errorf("2 ms: got %s %q, want ok", r.Class, r.Error)
	}

	// A target probed every 5 minutes: one result a window, the band is its own.
	job = &schedule.Job{ID: "tcp://127.0.0.1:5432", Host: "127.0.0.1"}
	at = start
	for ; at.Before(start.Add(2 * 24 * time.Hour)); at = at.Add(5 * time.Minute) {
		if r := res(at, 2*math.Exp(0.05*rng.NormFloat64())); r.Class != patrol.ClassOK {
			t.Fatalf("5-minute target, usual latency: got %s %q, want ok", r.Class, r.Error)
		}
	}
	if r := res(at, 6); r.Class != patrol.ClassSlow {
		t.Errorf("5-minute target, 6 ms where 2 ms is usual: got %s, want slow", r.Class)
	}
}

// A stored state that is corrupt, truncated or under a key of no known signal is
// skipped at start: that series learns again, and nothing else is lost.
func TestAnomalyRestoreSkipsBadStates(t *testing.T) {
	db, _, err := OpenStore(t.Context(), parse(t, "host_watch: {disabled: true}\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := newAnomalyFeeder(0.995, func(context.Context, alert.Anomaly) error { return nil }, nil, nil)
	job := &schedule.Job{ID: "tcp://127.0.0.1:5432", Host: "127.0.0.1"}
	at := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for i := range 2000 {
		r := patrol.Result{Target: job.ID, Start: at.Add(time.Duration(i) * 30 * time.Second), Duration: 3 * time.Millisecond, Class: patrol.ClassOK,
			Capacity: &patrol.Capacity{What: "connections", Used: int64(40 + i%7), Limit: 100}}
		f.feed(t.Context(), job, &r)
	}
	if err := f.save(t.Context(), db, at.Add(1000*time.Minute)); err != nil {
		t.Fatal(err)
	}
	good, err := db.LoadAnomalyStates(t.Context())
	if err != nil || len(good) != 5 {
		t.Fatalf("saved: got %d states, %v; want 5 (latency, failure ratio, connections, their trend, the latency's week-over-week days)", len(good), err)
	}
	bad := good[0]
	bad.Key = "latency tcp://127.0.0.1:1"
	bad.State = append([]byte(nil), bad.State[:len(bad.State)/2]...)
	flipped := good[1]
	flipped.Key = "failures tcp://127.0.0.1:1"
	flipped.State = bytes.Repeat([]byte{0xff}, len(flipped.State))
	unknown := good[2]
	unknown.Key = "cpu tcp://127.0.0.1:1"
	var trend store.AnomalyState
	for _, s := range good {
		if strings.HasPrefix(s.Key, forecastPrefix) {
			trend = s
		}
	}
	trend.Key = forecastPrefix + "connections tcp://127.0.0.1:1"
	trend.State = trend.State[:len(trend.State)-5]
	if err := db.PutAnomalyStates(t.Context(), []store.AnomalyState{bad, flipped, unknown, trend}); err != nil {
		t.Fatal(err)
	}
	g := newAnomalyFeeder(0.995, func(context.Context, alert.Anomaly) error { return nil }, nil, nil)
	n, err := g.restore(t.Context(), db)
	if err != nil || n != 5 {
		t.Errorf("restore: got %d series, %v; want the 5 good ones", n, err)
	}
	if _, ok := g.targets["tcp://127.0.0.1:1"]; ok {
		t.Error("a target of bad states only was restored")
	}
}
