package daemon

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// replayKind is what is injected into one target of the replay.
type replayKind int

const (
	injLatency  replayKind = iota + 1 // latency ×4 for 30 minutes
	injFailures                       // half the probes fail for 20 minutes
	injBoth                           // latency ×3 and a third of the probes fail, 20 minutes
	injShift                          // latency ×2.5 from then on: pages once, then is the new normal
	injConnDrop                       // connections drop to zero for 30 minutes
	injBlip                           // latency ×10 for 90 seconds: too short to page
)

func (k replayKind) String() string {
	return [...]string{"", "latency ×4 for 30m", "half the probes fail for 20m", "latency ×3 and a third failing for 20m",
		"latency ×2.5 from then on", "connections to zero for 30m", "latency ×10 for 90s (no page)"}[k]
}

// injection is one anomaly put into the replay.
type injection struct {
	target int
	kind   replayKind
	at     time.Time
	dur    time.Duration
	// want lists the signals the alert must name; nil means no alert at all.
	want []string
}

func (in injection) active(t time.Time) bool {
	return !t.Before(in.at) && (in.dur == 0 || t.Before(in.at.Add(in.dur)))
}

// replaySize is how many targets and days the replay runs: 1,000 targets for a week by
// default, fewer under the race detector (whose instrumentation costs the detector's
// arithmetic about tenfold) and with -short; PORTPATROL_REPLAY_TARGETS overrides it.
func replaySize(t *testing.T) (targets, days int) {
	targets, days = 1000, 7
	switch {
	case testing.Short():
		targets = 40
	case raceEnabled:
		targets = 100
	}
	if v := os.Getenv("PORTPATROL_REPLAY_TARGETS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 {
			t.Fatalf("PORTPATROL_REPLAY_TARGETS=%q: want a number of at least 20", v)
		}
		targets = n
	}
	return targets, days
}

// TestAnomalyReplay replays a week of 10-second probe results of many targets through
// the feeder the daemon uses and a real alert engine on fake time, with a few anomalies
// injected, and checks that the alerts raised are exactly the injected ones. It prints
// the CPU it spent.
func TestAnomalyReplay(t *testing.T) {
	n, days := replaySize(t)
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	day := 24 * time.Hour
	at := func(d int, hm string) time.Time {
		h, m, _ := strings.Cut(hm, ":")
		hh, _ := strconv.Atoi(h)
		mm, _ := strconv.Atoi(m)
		return start.Add(time.Duration(d)*day + time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute)
	}
	pick := func(per1000 int) int { return per1000 * n / 1000 }
	injections := []injection{
		{target: pick(7), kind: injLatency, at: at(2, "10:00"), dur: 30 * time.Minute, want: []string{"latency (ms)"}},
		{target: pick(123), kind: injFailures, at: at(3, "03:00"), dur: 20 * time.Minute, want: []string{"failure ratio"}},
		{target: pick(250) + 1, kind: injBoth, at: at(4, "14:00"), dur: 20 * time.Minute, want: []string{"latency (ms)", "failure ratio"}},
		{target: pick(400) + 2, kind: injShift, at: at(4, "20:00"), want: []string{"latency (ms)"}},
		{target: pick(550), kind: injConnDrop, at: at(5, "09:00"), dur: 30 * time.Minute, want: []string{"connections"}},
		{target: pick(901) + 3, kind: injBlip, at: at(6, "11:00"), dur: 90 * time.Second},
	}
	byTarget := map[int]injection{}
	for _, in := range injections {
		byTarget[in.target] = in
	}
	if len(byTarget) != len(injections) {
		t.Fatalf("%d targets are too few for %d distinct injections", n, len(injections))
	}

	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	cfg := config.Default()
	if !cfg.Alerting.Rules.Anomaly.Learned {
		t.Fatal("the default configuration keeps the p95 rule on beside the learned detector")
	}
	type fired struct {
		target     string
		firedAt    time.Time
		signals    map[string]bool
		desc       string
		most       int
		resolvedAt time.Time
	}
	var (
		mu    sync.Mutex
		seen  = map[string]*fired{} // by alert ID
		sent  atomic.Int64
		ids   []string
		order = func(id string) {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	)
	eng, err := alert.New(t.Context(), cfg.Alerting, alert.Deps{
		Sink: alert.SinkFunc(func(_ context.Context, ns []patrol.Notification) error { sent.Add(int64(len(ns))); return nil }),
		Now:  now,
		OnChange: func(a patrol.Alert) {
			if a.Class != patrol.AlertAnomaly {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			f := seen[a.ID]
			if f == nil {
				f = &fired{target: a.Target, signals: map[string]bool{}}
				seen[a.ID] = f
			}
			if a.State == patrol.AlertFiring && f.firedAt.IsZero() {
				f.firedAt = now()
				order(a.ID)
			}
			if a.State == patrol.AlertResolved && f.resolvedAt.IsZero() {
				f.resolvedAt = now()
			}
			// The description kept is the one that names the most signals at once.
			if _, list, ok := strings.Cut(a.Summary, "learned baseline: "); ok {
				names := strings.Split(list, ", ")
				for _, s := range names {
					f.signals[s] = true
				}
				if len(names) > f.most {
					f.most, f.desc = len(names), a.Description
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	feeder := newAnomalyFeeder(cfg.Anomaly.ThresholdOrDefault(), eng.ObserveAnomaly, nil, nil)

	// The fleet: latencies from 1 to 50 ms with a daily cycle and quieter weekends,
	// multiplicative noise and rare natural bumps; every tenth target reports
	// connections (used of 500) with a daily cycle.
	type target struct {
		job    schedule.Job
		base   float64
		phase  float64
		rng    *rand.Rand
		cap    *patrol.Capacity
		inj    *injection
		result patrol.Result
	}
	fleet := make([]*target, n)
	for i := range fleet {
		id := fmt.Sprintf("tcp://127.0.%d.%d:%d", i/250, i%250+1, 6379+i%7)
		tg := &target{
			job:   schedule.Job{ID: id, Host: fmt.Sprintf("127.0.%d.%d", i/250, i%250+1), Labels: map[string]string{"service": "svc" + strconv.Itoa(i%13)}},
			base:  math.Exp(math.Log(1) + math.Log(50)*float64((i*7919)%n)/float64(n)),
			phase: float64(i%24) / 24,
			rng:   rand.New(rand.NewPCG(uint64(i), 42)),
		}
		if i%10 == 0 || byTarget[i].kind == injConnDrop {
			tg.cap = &patrol.Capacity{What: "connections", Limit: 500}
		}
		if in, ok := byTarget[i]; ok {
			tg.inj = &in
		}
		fleet[i] = tg
	}
	step := 10 * time.Second
	generateOnly := false
	feed := func(tg *target, ts time.Time) {
		hour := float64(ts.Sub(start)%day) / float64(time.Hour)
		cycle := 1 + 0.3*math.Sin(2*math.Pi*(hour/24+tg.phase))
		if wd := ts.Weekday(); wd == time.Saturday || wd == time.Sunday {
			cycle *= 0.85
		}
		lat := tg.base * cycle * math.Exp(0.08*tg.rng.NormFloat64())
		if tg.rng.Float64() < 0.002 {
			lat *= 1.3 + tg.rng.Float64()
		}
		r := &tg.result
		*r = patrol.Result{Target: tg.job.ID, Start: ts, Class: patrol.ClassOK}
		fail := false
		if in := tg.inj; in != nil && in.active(ts) {
			switch in.kind {
			case injLatency:
				lat *= 4
			case injFailures:
				fail = tg.rng.Float64() < 0.5
			case injBoth:
				lat *= 3
				fail = tg.rng.Float64() < 1.0/3
			case injShift:
				lat *= 2.5
			case injBlip:
				lat *= 10
			}
		}
		r.Duration = time.Duration(lat * float64(time.Millisecond))
		if fail {
			r.Class, r.Error, r.Duration = patrol.ClassTimeout, "no answer within 5s", 5*time.Second
		} else if tg.cap != nil {
			used := 200 * cycle * (1 + 0.05*tg.rng.NormFloat64())
			if in := tg.inj; in != nil && in.kind == injConnDrop && in.active(ts) {
				used = 0
			}
			tg.cap.Used = int64(math.Round(used))
			r.Capacity = tg.cap
		}
		if !generateOnly {
			feeder.feed(t.Context(), &tg.job, r)
		}
	}

	// Minute by minute: every target's six results of the minute, spread over the
	// cores as the scheduler's workers would, then the engine's tick at the minute's
	// end.
	workers := runtime.GOMAXPROCS(0)
	cpuTime := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	// The cost of making the data alone, over one day of the fleet, to tell it apart.
	generateOnly = true
	gen0 := cpuTime()
	for m := range 24 * 60 {
		t0 := start.Add(time.Duration(m) * time.Minute)
		for i := range n {
			for k := range 6 {
				feed(fleet[i], t0.Add(time.Duration(k)*step+time.Duration(i%10)*time.Second/10))
			}
		}
	}
	genPer := float64(cpuTime()-gen0) / float64(24*60*6*n)
	for i, tg := range fleet {
		tg.rng = rand.New(rand.NewPCG(uint64(i), 42))
	}
	generateOnly = false
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0 := float64(ms.HeapAlloc)
	cpu0 := cpuTime()
	wall := time.Now()
	minutes := days * 24 * 60
	var points int64
	for m := range minutes {
		t0 := start.Add(time.Duration(m) * time.Minute)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n; i += workers {
					for k := range 6 {
						feed(fleet[i], t0.Add(time.Duration(k)*step+time.Duration(i%10)*time.Second/10))
					}
				}
			})
		}
		wg.Wait()
		points += int64(6 * n)
		end := t0.Add(time.Minute)
		clock.Store(end.UnixNano())
		if err := eng.Tick(t.Context(), end); err != nil {
			t.Fatalf("tick at %s: %v", end, err)
		}
	}
	cpu := cpuTime() - cpu0
	series := feeder.Len()
	race := ""
	if raceEnabled {
		race = " under the race detector"
	}
	t.Logf("replayed %d targets × %d days of 10-second results%s: %d results into %d series (latency, failure ratio and, on every tenth target, connections, each scored per 5-minute window)",
		n, days, race, points, series)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap := float64(ms.HeapAlloc) - heap0
	per := float64(cpu.Nanoseconds()) / float64(points)
	t.Logf("CPU (user+sys of this process, getrusage): %s for the week, %.0f ns per result; making the data alone costs %.0f ns of it (measured over one day), so the feeder and the alert engine cost %.0f ns per result; wall %s on %d cores",
		cpu.Round(time.Millisecond), per, genPer, per-genPer, time.Since(wall).Round(time.Millisecond), workers)
	t.Logf("memory: the Go heap grew by %.2f MB over the week (the feeder's series and windows, the engine's alerts): %.0f B per target, %.0f B per series",
		heap/1e6, heap/float64(n), heap/float64(series))
	runtime.KeepAlive(feeder)
	runtime.KeepAlive(fleet)

	mu.Lock()
	defer mu.Unlock()
	matched := map[int]bool{}
	for _, id := range ids {
		f := seen[id]
		i := slices.IndexFunc(fleet, func(tg *target) bool { return tg.job.ID == f.target })
		in, ok := byTarget[i]
		sigs := slices.Sorted(func(yield func(string) bool) {
			for s := range f.signals {
				if !yield(s) {
					return
				}
			}
		})
		t.Logf("alert %s on %s fired %s (%s), signals %v, resolved %s:\n%s", id, f.target, f.firedAt.Format("Mon 15:04"),
			map[bool]string{true: "injected: " + in.kind.String(), false: "NOT injected"}[ok], sigs, f.resolvedAt.Format("Mon 15:04"), f.desc)
		switch {
		case !ok || in.want == nil:
			t.Errorf("alert on %s (%s) at %s: nothing that pages was injected there\n%s", f.target, strings.Join(sigs, ", "), f.firedAt, f.desc)
			continue
		case matched[i]:
			t.Errorf("second alert on %s at %s: one episode must page once", f.target, f.firedAt)
		case f.firedAt.Before(in.at) || f.firedAt.After(in.at.Add(15*time.Minute)):
			t.Errorf("alert on %s fired at %s; the anomaly began at %s (want within 15 minutes)", f.target, f.firedAt, in.at)
		}
		matched[i] = true
		for _, s := range in.want {
			if !f.signals[s] {
				t.Errorf("alert on %s names %v; want it to name %s\n%s", f.target, sigs, s, f.desc)
			}
		}
		if !strings.Contains(f.desc, "band") || !strings.Contains(f.desc, "usual") {
			t.Errorf("alert on %s: the description gives no expected band:\n%s", f.target, f.desc)
		}
	}
	for _, in := range injections {
		if in.want != nil && !matched[in.target] {
			t.Errorf("%s on %s at %s raised no alert", in.kind, fleet[in.target].job.ID, in.at)
		}
	}
	if t.Failed() {
		return
	}
	if f := seen[ids[slices.IndexFunc(ids, func(id string) bool { return seen[id].target == fleet[pick(400)+2].job.ID })]]; f.resolvedAt.IsZero() {
		t.Errorf("the level shift on %s is still alerting at the end: a lasting shift must become the new normal", f.target)
	}
	t.Logf("notifications sent: %d", sent.Load())
}
