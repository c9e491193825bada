//go:build unix

package anomaly

import (
	"math"
	"math/rand/v2"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// fourWeeks feeds d four weeks of 5-minute points of a daily and weekly cycle and returns
// the time of the next point.
func fourWeeks(d *Detector, rng *rand.Rand) time.Time {
	tm := t0
	for i := range 4 * 7 * perDay {
		d.Observe(tm, seasonal(i, rng))
		tm = tm.Add(step)
	}
	return tm
}

func seasonal(i int, rng *rand.Rand) float64 {
	ph := 2 * math.Pi * float64(i%perDay) / float64(perDay)
	v := 60 - 40*math.Cos(ph) + 5*rng.NormFloat64()
	if (i/perDay)%7 >= 5 {
		v /= 3
	}
	return v
}

// BenchmarkObserve measures the CPU per point of a detector with four weeks of 5-minute
// history and the memory each series holds; both are printed beside the goals
// (2 µs per point, 64 KiB per series).
func BenchmarkObserve(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 8))
	d := New(Config{})
	tm := fourWeeks(d, rng)
	vals := make([]float64, 4096)
	for i := range vals {
		vals[i] = seasonal(4*7*perDay+i, rng)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := d.Observe(tm, vals[i%len(vals)]); err != nil {
			b.Fatal(err)
		}
		tm = tm.Add(step)
	}
	b.StopTimer()
	// CPU time, not wall time: the machine may be shared.
	perPoint := float64((cpuTime() - cpu0).Nanoseconds()) / float64(b.N)

	// Memory: the heap held by 200 detectors, each with four weeks of history.
	const n = 200
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ds := make([]*Detector, n)
	for k := range ds {
		ds[k] = New(Config{})
		fourWeeks(ds[k], rng)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perSeries := float64(after.HeapAlloc-before.HeapAlloc) / n
	blob, _ := ds[0].MarshalBinary()
	runtime.KeepAlive(ds)

	b.ReportMetric(perPoint, "cpu-ns/point")
	b.ReportMetric(2000, "goal-cpu-ns/point")
	b.ReportMetric(perSeries, "B/series")
	b.ReportMetric(64<<10, "goal-B/series")
	b.ReportMetric(float64(len(blob)), "B/state")
	b.Logf("per point %.0f ns of CPU (goal <= 2000 ns); per series %.0f B in memory, %d B marshalled (goal <= 65536 B), 4 weeks of 5-minute history",
		perPoint, perSeries, len(blob))
}

// cpuTime returns the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
