package alert_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// BenchmarkResultCostOpenAlerts: K targets are down, their alerts open, fired and
// notified; then N other targets go down and come back up, ten results between two
// ticks of 100 ms, as in an alert storm. It reports the engine's cost per result
// (Observe and the share of Tick it causes) for K = 0, 1,000 and 10,000. The goal is a
// cost flat in K; the K=0 figure is the anchor the others are printed beside.
func BenchmarkResultCostOpenAlerts(b *testing.B) {
	const n = 1000
	var anchor float64
	for _, k := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprintf("open=%d", k), func(b *testing.B) {
			ctx := context.Background()
			now := t0
			sk := alert.SinkFunc(func(context.Context, []patrol.Notification) error { return nil })
			cfg := alert.Config{Grouping: alert.Grouping{GroupWait: time.Second, GroupInterval: 10 * time.Second}}
			e, err := alert.New(ctx, cfg, alert.Deps{Sink: sk, Store: discardStore{}, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			sig := func(i int, st patrol.Status, class patrol.Class) alert.Signal {
				host := fmt.Sprintf("10.%d.%d.1", i/100/250, i/100%250)
				tg := fmt.Sprintf("tcp://%s:%d", host, 8000+i%100)
				return alert.Signal{Target: tg, Host: host, Status: st, At: now,
					Labels: map[string]string{"service": "svc", "env": "prod"},
					Result: patrol.Result{Target: tg, Start: now, Class: class, Duration: time.Millisecond}}
			}
			tick := func() {
				now = now.Add(100 * time.Millisecond)
				if err := e.Tick(ctx, now); err != nil {
					b.Fatal(err)
				}
			}
			// The K open alerts, on targets of their own.
			for i := range k {
				if err := e.Observe(ctx, sig(n+i, patrol.StatusDown, patrol.ClassRefused)); err != nil {
					b.Fatal(err)
				}
			}
			for range 600 {
				tick()
			}
			storm := func(st patrol.Status, class patrol.Class) {
				for i := range n {
					if err := e.Observe(ctx, sig(i, st, class)); err != nil {
						b.Fatal(err)
					}
					if i%10 == 9 {
						tick()
					}
				}
				for range 150 { // past group_wait and group_interval: everything is sent
					tick()
				}
			}
			start := time.Now()
			results := 0
			for b.Loop() {
				storm(patrol.StatusDown, patrol.ClassRefused)
				storm(patrol.StatusUp, patrol.ClassOK)
				results += 2 * n
			}
			ns := float64(time.Since(start).Nanoseconds()) / float64(results)
			b.ReportMetric(ns, "ns/result")
			open := 0
			for key, c := range e.Stats().Alerts {
				if key.State != patrol.AlertResolved {
					open += c
				}
			}
			if open < k {
				b.Fatalf("%d alerts open, want %d", open, k)
			}
			if k == 0 {
				anchor = ns
				b.Logf("%d open alerts: %.0f ns per result (anchor; goal: the same with 1,000 and 10,000 open)", open, ns)
				return
			}
			b.Logf("%d open alerts: %.0f ns per result; anchor (0 open) %.0f ns, %.2f× (goal: flat in open alerts)", open, ns, anchor, ns/anchor)
		})
	}
}
