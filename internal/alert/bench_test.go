package alert_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// discardStore keeps nothing, so the benchmark measures the engine's own memory.
type discardStore struct{}

func (discardStore) SaveAlert(context.Context, alert.Record) error          { return nil }
func (discardStore) DeleteAlert(context.Context, string) error              { return nil }
func (discardStore) LoadAlerts(context.Context) ([]alert.Record, error)     { return nil, nil }
func (discardStore) SaveSilence(context.Context, patrol.Silence) error      { return nil }
func (discardStore) DeleteSilence(context.Context, string) error            { return nil }
func (discardStore) LoadSilences(context.Context) ([]patrol.Silence, error) { return nil, nil }

// BenchmarkFlapStorm: 10,000 targets (100 hosts × 100 ports) flap at once for five
// minutes: down, up, down, up, then the scheduler calls them flapping. The number of
// notifications must be bounded by the groups, not the targets or the flaps.
func BenchmarkFlapStorm(b *testing.B) {
	const hosts, ports = 100, 100
	for _, mode := range []struct {
		name    string
		groupBy []string
		bound   int // the most notifications there may be
	}{
		{"group_by=host", nil, hosts},
		{"no_grouping", []string{alert.GroupByNothing}, hosts * ports},
	} {
		b.Run(mode.name, func(b *testing.B) {
			var notes, alertsIn atomic.Int64
			sk := alert.SinkFunc(func(_ context.Context, ns []patrol.Notification) error {
				notes.Add(int64(len(ns)))
				for _, n := range ns {
					alertsIn.Add(int64(len(n.Alerts)))
				}
				return nil
			})
			cfg := alert.Config{Grouping: alert.Grouping{GroupBy: mode.groupBy}}
			sigs := make([]alert.Signal, 0, hosts*ports)
			for h := range hosts {
				host := fmt.Sprintf("10.0.%d.%d", h/250, h%250+1)
				for p := range ports {
					sigs = append(sigs, alert.Signal{
						Target: fmt.Sprintf("tcp://%s:%d", host, 8000+p), Host: host,
						Labels: map[string]string{"service": "svc", "env": "prod"},
					})
				}
			}
			ctx := context.Background()
			var bytesPerTarget float64
			for b.Loop() {
				notes.Store(0)
				alertsIn.Store(0)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				now := t0
				e, err := alert.New(ctx, cfg, alert.Deps{Sink: sk, Store: discardStore{}, Now: func() time.Time { return now }})
				if err != nil {
					b.Fatal(err)
				}
				for step := range 30 { // every 10s for 5 minutes
					state, class := patrol.StatusDown, patrol.ClassTimeout
					if step%2 == 1 {
						state, class = patrol.StatusUp, patrol.ClassOK
					}
					for i := range sigs {
						s := sigs[i]
						s.Status, s.Flapping, s.At = state, step >= 4, now
						s.Result = patrol.Result{Target: s.Target, Start: now, Class: class, Duration: time.Millisecond}
						if err := e.Observe(ctx, s); err != nil {
							b.Fatal(err)
						}
					}
					for range 10 {
						now = now.Add(time.Second)
						if err := e.Tick(ctx, now); err != nil {
							b.Fatal(err)
						}
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				bytesPerTarget = float64(after.HeapAlloc-before.HeapAlloc) / float64(len(sigs))
				runtime.KeepAlive(e)
			}
			n := int(notes.Load())
			if n > mode.bound {
				b.Errorf("got %d notifications for %d targets, want at most %d", n, len(sigs), mode.bound)
			}
			b.ReportMetric(float64(n), "notifications")
			b.ReportMetric(bytesPerTarget, "B/target")
			b.Logf("%s: %d targets flapping → %d notifications carrying %d alerts (bound %d); engine heap %.0f B/target",
				mode.name, len(sigs), n, alertsIn.Load(), mode.bound, bytesPerTarget)
		})
	}
}

// BenchmarkTickOpenAlerts: 50,000 targets are down, their alerts open and notified,
// and a Tick comes every 100 ms while a hundred of them change a second (one result
// each, as at 100,000 targets probed every 60 s). A Tick should cost what is due or
// changed, not what is open.
func BenchmarkTickOpenAlerts(b *testing.B) {
	const n = 50000
	ctx := context.Background()
	now := t0
	sk := alert.SinkFunc(func(context.Context, []patrol.Notification) error { return nil })
	e, err := alert.New(ctx, alert.Config{}, alert.Deps{Sink: sk, Store: discardStore{}, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	sigs := make([]alert.Signal, n)
	for i := range sigs {
		tg := fmt.Sprintf("tcp://127.0.0.1:%d", 10000+i)
		sigs[i] = alert.Signal{Target: tg, Host: "127.0.0.1", Status: patrol.StatusDown,
			Labels: map[string]string{"service": "svc", "env": "prod"},
			Result: patrol.Result{Target: tg, Class: patrol.ClassRefused, Duration: time.Millisecond}}
	}
	observe := func(i int) {
		s := sigs[i%n]
		s.At, s.Result.Start = now, now
		if err := e.Observe(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		observe(i)
	}
	for range 600 { // a minute of ticks: every alert fires and is sent
		now = now.Add(100 * time.Millisecond)
		if err := e.Tick(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		for range 10 { // ten results between two ticks
			observe(i)
			i++
		}
		now = now.Add(100 * time.Millisecond)
		if err := e.Tick(ctx, now); err != nil {
			b.Fatal(err)
		}
	}
	open := 0
	for _, c := range e.Stats().Alerts {
		open += c
	}
	b.ReportMetric(float64(open), "alerts")
}
