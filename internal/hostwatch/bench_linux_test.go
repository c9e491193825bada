package hostwatch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"golang.org/x/sys/unix"
)

// BenchmarkWatchCPU measures what the watch loop costs: 100 loopback listeners, the
// loop at its default 250ms for 10s (detail dumps every 5s included), and the process's
// CPU time (rusage, user + system) over the wall time. The headline figure starts after
// the first tick, whose cold owner scan a long-running watch pays once; the figure with
// it is printed beside. The whole process is measured, Go runtime and idle listeners
// included, so both are upper bounds. It ignores b.N: one run is the measurement.
func BenchmarkWatchCPU(b *testing.B) {
	const listeners, run = 100, 10 * time.Second
	for range listeners {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
	}
	w := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	r0, t0 := rusage(b), time.Now()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for ticksTaken(w) == 0 {
		time.Sleep(time.Millisecond)
	}
	r1, t1 := rusage(b), time.Now()
	time.Sleep(run)
	r2, t2 := rusage(b), time.Now()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		b.Fatal(err)
	}
	warm := 100 * (r2 - r1).Seconds() / t2.Sub(t1).Seconds()
	cold := 100 * (r2 - r0).Seconds() / t2.Sub(t0).Seconds()
	var m dto.Metric
	w.metrics.tick.Write(&m)
	n, sum := m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
	w.mu.Lock()
	seen := len(w.ls)
	w.mu.Unlock()
	fmt.Printf("watch CPU: %.2f%% of a core with %d listeners (goal < 0.5%%); %.2f%% with the first, cold tick; %d ticks in %s, %.0f µs per tick on average; %d listeners on the host\n",
		warm, listeners, cold, n, t2.Sub(t0).Round(time.Millisecond), sum/float64(max(n, 1))*1e6, seen)
	b.ReportMetric(warm, "%core")
	b.ReportMetric(cold, "%core-with-start")
}

// rusage returns the process's user plus system CPU time.
func rusage(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ticksTaken returns how many ticks w has taken.
func ticksTaken(w *Watch) uint64 {
	var m dto.Metric
	w.metrics.tick.Write(&m)
	return m.GetHistogram().GetSampleCount()
}

// BenchmarkTick is one warm watch tick with 100 loopback listeners: the LISTEN-only
// dump, owners of new sockets (none, once warm) and the rules; "detail" adds the
// established/traffic dump and the owners' resources of a detail tick.
func BenchmarkTick(b *testing.B) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ln.Close() })
	}
	ctx := context.Background()
	for _, detail := range []bool{false, true} {
		name := "listen"
		di := time.Hour
		if detail {
			name, di = "detail", time.Nanosecond
		}
		b.Run(name, func(b *testing.B) {
			w := New(Config{DetailInterval: di})
			if err := w.tick(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := w.tick(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
