package daemon

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// A connection leak on a Redis-like target, fed as 10-second probe results through the
// feeder into a real alert engine on fake time: the forecast alert opens at P3 with the
// forecast in words, rises to P2 under half an hour before the limit, and clears after a
// restart empties the pool. A steady neighbour with a daily curve never gets one.
func TestCapacityForecastAlerts(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	cfg := config.Default()
	type change struct {
		at       time.Time
		sev      string
		state    patrol.AlertState
		summary  string
		desc     string
		resolved bool
	}
	var changes []change
	eng, err := alert.New(t.Context(), cfg.Alerting, alert.Deps{
		Sink: alert.SinkFunc(func(context.Context, []patrol.Notification) error { return nil }),
		Now:  now,
		OnChange: func(a patrol.Alert) {
			if a.Rule == "anomaly:"+forecastMetric && a.Target == "redis://127.0.0.1:6379" {
				changes = append(changes, change{at: now(), sev: a.Severity.String(), state: a.State, summary: a.Summary, desc: a.Description})
			}
			if a.Rule == "anomaly:"+forecastMetric && a.Target != "redis://127.0.0.1:6379" {
				t.Errorf("forecast alert on the steady target: %s", a.Summary)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := newAnomalyFeeder(cfg.Anomaly.ThresholdOrDefault(), eng.ObserveAnomaly, nil, nil)
	leaky := &schedule.Job{ID: "redis://127.0.0.1:6379", Host: "127.0.0.1"}
	steady := &schedule.Job{ID: "postgres://127.0.0.1:5432", Host: "127.0.0.1"}
	rng := rand.New(rand.NewPCG(7, 7))
	leakAt := start.Add(30 * time.Hour) // after a day of history
	restartAt := leakAt.Add(170 * time.Minute)
	used := func(at time.Time) int64 {
		switch {
		case at.Before(leakAt):
			return 300 + int64(rng.IntN(11))
		case at.Before(restartAt):
			return 300 + int64(4*at.Sub(leakAt).Minutes()) + int64(rng.IntN(11)) // +4 a minute
		}
		return 40 + int64(rng.IntN(11))
	}
	end := restartAt.Add(3 * time.Hour)
	for at := start; at.Before(end); at = at.Add(10 * time.Second) {
		clock.Store(at.UnixNano())
		r := patrol.Result{Target: leaky.ID, Start: at, Duration: 2 * time.Millisecond, Class: patrol.ClassOK,
			Capacity: &patrol.Capacity{What: "clients", Used: min(used(at), 1000), Limit: 1000}}
		f.feed(t.Context(), leaky, &r)
		day := at.Sub(start).Hours() / 24
		s := patrol.Result{Target: steady.ID, Start: at, Duration: 2 * time.Millisecond, Class: patrol.ClassOK,
			Capacity: &patrol.Capacity{What: "connections", Used: int64(60 + 30*sinTurn(day) + float64(rng.IntN(5))), Limit: 100}}
		f.feed(t.Context(), steady, &s)
		if at.Second() == 0 {
			if err := eng.Tick(t.Context(), at); err != nil {
				t.Fatal(err)
			}
		}
	}
	var sevs []string
	var firstP3, firstP2, resolved time.Time
	for _, c := range changes {
		if len(sevs) == 0 || sevs[len(sevs)-1] != c.sev+" "+string(c.state) {
			sevs = append(sevs, c.sev+" "+string(c.state))
		}
		switch {
		case c.state == patrol.AlertFiring && c.sev == "P3" && firstP3.IsZero():
			firstP3 = c.at
			if !strings.Contains(c.summary, "at this rate clients reach their limit (1000) in") || !strings.Contains(c.desc, "a minute over the last") {
				t.Errorf("P3 alert says %q / %q; want the forecast in words and the rate a minute", c.summary, c.desc)
			}
		case c.state == patrol.AlertFiring && c.sev == "P2" && firstP2.IsZero():
			firstP2 = c.at
		case c.state == patrol.AlertResolved && resolved.IsZero():
			resolved = c.at
		}
	}
	t.Logf("forecast alert: %s; P3 %s and P2 %s before the limit (at %s), resolved %s after the restart",
		strings.Join(sevs, " → "), leakAt.Add(175*time.Minute).Sub(firstP3), leakAt.Add(175*time.Minute).Sub(firstP2),
		leakAt.Add(175*time.Minute).Format("Jan 2 15:04"), resolved.Sub(restartAt))
	limitAt := leakAt.Add(175 * time.Minute)
	if firstP3.IsZero() || limitAt.Sub(firstP3) < 60*time.Minute {
		t.Errorf("P3 fired at %v, want at least an hour before the limit at %v", firstP3, limitAt)
	}
	if firstP2.IsZero() || limitAt.Sub(firstP2) > 45*time.Minute || limitAt.Sub(firstP2) < 10*time.Minute {
		t.Errorf("P2 fired at %v, want 10 to 45 minutes before the limit at %v", firstP2, limitAt)
	}
	if resolved.IsZero() || resolved.Before(restartAt) {
		t.Errorf("resolved at %v, want after the restart at %v", resolved, restartAt)
	}

	// The report: the leaky target was at the top while it leaked; after the restart
	// nothing is forecast, and the fuller pool comes first.
	d := &Daemon{anomalies: f}
	rows, err := (&apiAdapter{d: d}).CapacityForecasts(t.Context(), 0)
	if err != nil || len(rows) != 2 {
		t.Fatalf("report: got %d rows, %v; want 2", len(rows), err)
	}
	for _, r := range rows {
		if r.ETASeconds != nil {
			t.Errorf("after the restart: %s still forecast to run out in %vs", r.Target, *r.ETASeconds)
		}
	}
}

// sinTurn is a daily curve: the sine of a whole turn a day.
func sinTurn(days float64) float64 {
	return math.Sin(2 * 3.141592653589793 * days)
}

// The store's disk: a day at 40 % of 10 GB, then 50 MB a minute of new data; the forecast
// alert names the store's directory and says when the disk fills. The real statfs of a
// directory gives used ≤ limit.
func TestStoreDiskForecast(t *testing.T) {
	var raised []alert.Anomaly
	f := newAnomalyFeeder(0.995, func(_ context.Context, a alert.Anomaly) error { raised = append(raised, a); return nil }, nil, nil)
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	fillAt := start.Add(26 * time.Hour)
	var now time.Time
	d := &Daemon{anomalies: f, dbName: "sqlite:/var/lib/portpatrol/portpatrol.db", diskUsage: func(dir string) (float64, float64, error) {
		if dir != "/var/lib/portpatrol" {
			t.Errorf("statfs of %q, want the store's directory", dir)
		}
		used := 4096.0
		if now.After(fillAt) {
			used += 50 * now.Sub(fillAt).Minutes()
		}
		return used, 10240, nil
	}}
	for now = start; now.Before(fillAt.Add(2 * time.Hour)); now = now.Add(5 * time.Minute) {
		if err := d.forecastStoreDisk(t.Context(), now); err != nil {
			t.Fatal(err)
		}
	}
	if len(raised) == 0 || raised[0].Target != "store:/var/lib/portpatrol" || !strings.Contains(raised[0].Summary, "disk MB reach their limit (10240) in") {
		t.Fatalf("got %+v, want a forecast alert for the store's disk", raised)
	}
	t.Logf("%s after the fill began: %s (%s)", raised[0].At.Sub(fillAt), raised[0].Summary, raised[0].Severity)

	used, limit, err := diskUsage(t.TempDir())
	if err != nil || used <= 0 || limit < used {
		t.Errorf("diskUsage of a temporary directory: %v MB of %v MB, %v", used, limit, err)
	}
	d.dbName = "postgres://u@127.0.0.1/test"
	if err := d.forecastStoreDisk(t.Context(), now); err != nil {
		t.Errorf("with PostgreSQL: %v, want nothing done", err)
	}
}

// The learned band of a target's median latency, for the dashboard: none while the
// series learns, then the usual value of each hour in seconds.
func TestLatencyBand(t *testing.T) {
	f := newAnomalyFeeder(0.995, func(context.Context, alert.Anomaly) error { return nil }, nil, nil)
	job := &schedule.Job{ID: "tcp://127.0.0.1:6379", Host: "127.0.0.1"}
	ad := &apiAdapter{d: &Daemon{anomalies: f}}
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	usual := func(at time.Time) float64 { return 4 + 2*math.Sin(2*math.Pi*float64(at.Hour())/24) } // ms
	feed := func(from, to time.Time) {
		for at := from; at.Before(to); at = at.Add(10 * time.Second) {
			r := patrol.Result{Target: job.ID, Start: at, Duration: time.Duration(usual(at) * float64(time.Millisecond)), Class: patrol.ClassOK}
			f.feed(t.Context(), job, &r)
		}
	}
	feed(start, start.Add(12*time.Hour))
	if _, ok := ad.LatencyBand(t.Context(), job.ID, []time.Time{start}); ok {
		t.Error("a band after 12 hours, want none before a day of learning")
	}
	if _, ok := ad.LatencyBand(t.Context(), "tcp://127.0.0.1:1", []time.Time{start}); ok {
		t.Error("a band for an unknown target")
	}
	feed(start.Add(12*time.Hour), start.Add(3*24*time.Hour))
	var times []time.Time
	for h := range 24 {
		times = append(times, start.Add(2*24*time.Hour+time.Duration(h)*time.Hour+30*time.Minute))
	}
	band, ok := ad.LatencyBand(t.Context(), job.ID, times)
	if !ok || len(band) != 24 {
		t.Fatalf("got %d points, %v; want 24", len(band), ok)
	}
	for i, b := range band {
		want := usual(times[i]) / 1e3
		if math.Abs(b.Expected-want) > 0.0005 || b.Lower > want || b.Upper < want || b.Lower < 0 {
			t.Errorf("%s: band %.5f..%.5f..%.5f s, want around %.5f", times[i].Format("15:04"), b.Lower, b.Expected, b.Upper, want)
		}
	}
}
