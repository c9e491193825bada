package schedule_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// t0 is an arbitrary start, deliberately not aligned to any interval.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// harness runs a Scheduler on a fake clock and collects its events.
type harness struct {
	t   *testing.T
	clk *schedule.FakeClock
	s   *schedule.Scheduler

	mu     sync.Mutex
	events []schedule.Event
}

func newHarness(t *testing.T, cfg schedule.Config, start time.Time) *harness {
	t.Helper()
	h := &harness{t: t, clk: schedule.NewFakeClock(start)}
	cfg.Clock = h.clk
	cfg.OnResult = func(ev schedule.Event) {
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}
	h.s = schedule.New(cfg)
	return h
}

// start runs the scheduler until the test ends.
func (h *harness) start() {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.s.Run(ctx) }()
	h.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			h.t.Errorf("Run: %v", err)
		}
	})
	h.settle()
}

// settle waits until the scheduler has done everything due at the fake time.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !schedule.Quiet(h.s) {
		if time.Now().After(deadline) {
			h.t.Fatalf("scheduler not quiet after 10s: %+v", h.s.Stats())
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// advance moves the fake time forward by total in steps, settling after each.
func (h *harness) advance(total, step time.Duration) {
	h.t.Helper()
	for d := time.Duration(0); d < total; d += step {
		h.clk.Advance(step)
		h.settle()
	}
}

// take returns the events so far and forgets them.
func (h *harness) take() []schedule.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev := h.events
	h.events = nil
	return ev
}

func (h *harness) update(jobs []schedule.Job) {
	h.t.Helper()
	if err := h.s.Update(jobs); err != nil {
		h.t.Fatalf("Update: %v", err)
	}
}

// result builds a result at the fake time.
func result(clk *schedule.FakeClock, id string, up bool) patrol.Result {
	r := patrol.Result{Target: id, Start: clk.Now(), Class: patrol.ClassOK}
	if !up {
		r.Fail(patrol.ClassRefused, "connection refused")
	}
	return r
}

// scripted returns a Run function that reports the given outcomes in turn and then
// repeats the last one.
func scripted(clk *schedule.FakeClock, id string, outcomes ...bool) func(context.Context) patrol.Result {
	var mu sync.Mutex
	i := 0
	return func(context.Context) patrol.Result {
		mu.Lock()
		up := outcomes[min(i, len(outcomes)-1)]
		i++
		mu.Unlock()
		return result(clk, id, up)
	}
}

func TestSpreadEvenly(t *testing.T) {
	const (
		n        = 10000
		interval = time.Minute
		step     = 250 * time.Millisecond
	)
	h := newHarness(t, schedule.Config{}, t0)
	jobs := make([]schedule.Job, n)
	for i := range jobs {
		id := fmt.Sprintf("tcp://10.0.%d.%d:443", i/250, i%250)
		jobs[i] = schedule.Job{ID: id, Interval: interval, Run: scripted(h.clk, id, true)}
	}
	h.update(jobs)
	h.start()
	h.advance(interval, step)

	events := h.take()
	if len(events) != n {
		t.Fatalf("got %d runs in one interval, want %d", len(events), n)
	}
	perSecond := make([]int, interval/time.Second)
	seen := make(map[string]bool, n)
	for _, ev := range events {
		if seen[ev.Job.ID] {
			t.Fatalf("%s ran twice in one interval", ev.Job.ID)
		}
		seen[ev.Job.ID] = true
		if ev.Lag < 0 || ev.Lag > step {
			t.Errorf("%s: got lag %s, want within [0, %s]", ev.Job.ID, ev.Lag, step)
		}
		due := ev.Result.Start.Add(-ev.Lag).Sub(t0)
		sec := int(due / time.Second)
		if due < 0 || sec >= len(perSecond) {
			t.Fatalf("%s was due at %s, outside the first interval", ev.Job.ID, due)
		}
		perSecond[sec]++
	}
	share := n / len(perSecond)
	for sec, c := range perSecond {
		if c > 2*share {
			t.Errorf("second %d carries %d runs, want at most %d (twice its share)", sec, c, 2*share)
		}
	}
}

func TestOffsetDeterministic(t *testing.T) {
	const interval = 10 * time.Second
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("tcp://db-%d.example:5432", i)
	}
	// Two instances started at different times must put each ID at the same phase.
	dues := func(start time.Time) map[string]int64 {
		h := newHarness(t, schedule.Config{}, start)
		jobs := make([]schedule.Job, len(ids))
		for i, id := range ids {
			jobs[i] = schedule.Job{ID: id, Interval: interval, Run: scripted(h.clk, id, true)}
		}
		h.update(jobs)
		h.start()
		h.advance(interval, 100*time.Millisecond)
		out := make(map[string]int64)
		for _, ev := range h.take() {
			due := ev.Result.Start.Add(-ev.Lag)
			out[ev.Job.ID] = due.UnixNano() % int64(interval)
		}
		return out
	}
	a := dues(t0)
	b := dues(t0.Add(17*time.Hour + 3300*time.Millisecond))
	distinct := make(map[int64]bool)
	for _, id := range ids {
		want := int64(schedule.HashID(id) % uint64(interval))
		if a[id] != want || b[id] != want {
			t.Errorf("%s: got phases %d and %d, want %d in both", id, a[id], b[id], want)
		}
		distinct[want] = true
	}
	if len(distinct) < len(ids)*9/10 {
		t.Errorf("got %d distinct phases for %d IDs", len(distinct), len(ids))
	}
}

func TestThresholds(t *testing.T) {
	U, D, N := patrol.StatusUp, patrol.StatusDown, patrol.StatusUnknown
	tests := []struct {
		name       string
		fail, succ int
		outcomes   []bool
		want       []patrol.Status
	}{
		{"defaults", 0, 0, []bool{true, false, false, true}, []patrol.Status{U, U, D, U}},
		{"first results count from unknown", 0, 0, []bool{false, false}, []patrol.Status{N, D}},
		{"failure threshold 3", 3, 1, []bool{false, false, false, false}, []patrol.Status{N, N, D, D}},
		{"a success breaks a failure streak", 3, 1, []bool{false, false, true, false, false, false}, []patrol.Status{N, N, U, U, U, D}},
		{"success threshold 2", 1, 2, []bool{false, true, false, true, true}, []patrol.Status{D, D, D, D, U}},
		{"threshold 1 both ways", 1, 1, []bool{true, false, true}, []patrol.Status{U, D, U}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, schedule.Config{NoFastConfirm: true, FlapChanges: -1}, t0)
			h.update([]schedule.Job{{
				ID: "j", Interval: time.Second, FailureThreshold: tt.fail, SuccessThreshold: tt.succ,
				Run: scripted(h.clk, "j", tt.outcomes...),
			}})
			h.start()
			prev := patrol.StatusUnknown
			for i, want := range tt.want {
				h.advance(time.Second, time.Second)
				ev := h.take()
				if len(ev) != 1 {
					t.Fatalf("result %d: got %d events, want 1", i, len(ev))
				}
				e := ev[0]
				if e.Status != want || e.Prev != prev || e.Changed != (want != prev) {
					t.Errorf("result %d: got state %s (prev %s, changed %v), want %s (prev %s, changed %v)",
						i, e.Status, e.Prev, e.Changed, want, prev, want != prev)
				}
				prev = want
			}
			st := h.s.Snapshot()[0]
			last := tt.outcomes[len(tt.outcomes)-1]
			if st.Status != prev || (last && st.Successes == 0) || (!last && st.Failures == 0) {
				t.Errorf("snapshot: got %+v, want state %s", st, prev)
			}
		})
	}
}

func TestFastConfirm(t *testing.T) {
	U, D, N := patrol.StatusUp, patrol.StatusDown, patrol.StatusUnknown
	type ev struct {
		State   patrol.Status
		Confirm bool
	}
	tests := []struct {
		name       string
		off        bool
		fail, succ int
		outcomes   []bool
		want       [][]ev // per interval
	}{
		{"re-checks at once", false, 0, 0, []bool{false},
			[][]ev{{{N, false}, {D, true}}, {{D, false}}}},
		{"re-checks until the threshold", false, 3, 0, []bool{false},
			[][]ev{{{N, false}, {N, true}, {D, true}}, {{D, false}}}},
		{"a passing re-check ends it", false, 0, 0, []bool{true, false, true},
			[][]ev{{{U, false}}, {{U, false}, {U, true}}, {{U, false}}}},
		{"not while down", false, 0, 2, []bool{false, false, true, false},
			[][]ev{{{N, false}, {D, true}}, {{D, false}}, {{D, false}}}},
		{"nothing to confirm at threshold 1", false, 1, 0, []bool{false},
			[][]ev{{{D, false}}, {{D, false}}}},
		{"off", true, 0, 0, []bool{false},
			[][]ev{{{N, false}}, {{D, false}}, {{D, false}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, schedule.Config{NoFastConfirm: tt.off, FlapChanges: -1}, t0)
			h.update([]schedule.Job{{
				ID: "j", Interval: time.Minute, FailureThreshold: tt.fail, SuccessThreshold: tt.succ,
				Run: scripted(h.clk, "j", tt.outcomes...),
			}})
			h.start()
			for i, want := range tt.want {
				h.advance(time.Minute, time.Second)
				var got []ev
				for _, e := range h.take() {
					got = append(got, ev{e.Status, e.Confirm})
					if e.Confirm && e.Lag != 0 {
						t.Errorf("interval %d: confirmation lag %s, want 0 (immediate)", i, e.Lag)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("interval %d: got %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestFlapping(t *testing.T) {
	const window = 10 * time.Second
	tests := []struct {
		name      string
		changes   int
		outcomes  []bool
		wantStart int // index of the result that starts flapping; -1 for never
		wantEnd   int
	}{
		// Changes at results 1, 2, 3 (0 is the first judgement, not a change).
		{"flaps after three changes, clears after a stable window", 3,
			[]bool{true, false, true, false, true, true}, 3, 4 + 10},
		{"two changes are not flapping", 3, []bool{true, false, true, true}, -1, -1},
		{"off", -1, []bool{true, false, true, false, true, false, true}, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, schedule.Config{NoFastConfirm: true, FlapChanges: tt.changes, FlapWindow: window}, t0)
			h.update([]schedule.Job{{
				ID: "j", Interval: time.Second, FailureThreshold: 1,
				Run: scripted(h.clk, "j", tt.outcomes...),
			}})
			h.start()
			flapping := false
			for i := 0; i < 20; i++ {
				h.advance(time.Second, time.Second)
				ev := h.take()
				if len(ev) != 1 {
					t.Fatalf("result %d: got %d events, want 1", i, len(ev))
				}
				e := ev[0]
				wantFlap := tt.wantStart >= 0 && i >= tt.wantStart && i < tt.wantEnd
				if e.Flapping != wantFlap || e.FlapChanged != (wantFlap != flapping) {
					t.Errorf("result %d: got flapping %v (changed %v), want %v (changed %v)",
						i, e.Flapping, e.FlapChanged, wantFlap, wantFlap != flapping)
				}
				flapping = e.Flapping
			}
		})
	}
}

func TestConcurrencyCaps(t *testing.T) {
	tests := []struct {
		conc, perHost, jobs, hosts int
		want                       int // the in-flight peak the caps allow
	}{
		{4, 2, 60, 3, 4},
		{3, -1, 30, 1, 3},
		{10, 1, 30, 5, 5},
		{8, 3, 40, 2, 6},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("global %d per host %d", tt.conc, tt.perHost), func(t *testing.T) {
			h := newHarness(t, schedule.Config{Concurrency: tt.conc, PerHost: tt.perHost}, t0)
			var (
				cur, peak atomic.Int32
				hostCur   = make([]atomic.Int32, tt.hosts)
				hostPeak  = make([]atomic.Int32, tt.hosts)
				full      = make(chan struct{})
				fullOnce  sync.Once
			)
			raise := func(c, p *atomic.Int32) {
				n := c.Add(1)
				for {
					old := p.Load()
					if n <= old || p.CompareAndSwap(old, n) {
						return
					}
				}
			}
			jobs := make([]schedule.Job, tt.jobs)
			for i := range jobs {
				id, host := fmt.Sprintf("j%d", i), i%tt.hosts
				jobs[i] = schedule.Job{ID: id, Host: fmt.Sprintf("h%d", host), Interval: 10 * time.Second,
					Run: func(ctx context.Context) patrol.Result {
						raise(&cur, &peak)
						raise(&hostCur[host], &hostPeak[host])
						if peak.Load() >= int32(tt.want) {
							fullOnce.Do(func() { close(full) })
						}
						// Hold the slot until the caps are reached, so the peak is
						// observed whatever the goroutines' timing.
						select {
						case <-full:
						case <-time.After(2 * time.Second):
						}
						hostCur[host].Add(-1)
						cur.Add(-1)
						return result(h.clk, id, true)
					}}
			}
			h.update(jobs)
			h.start()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() { // readers race with the runs under -race
				for {
					select {
					case <-stop:
						return
					default:
						_ = h.s.Snapshot()
						st := h.s.Stats()
						if st.Running > tt.conc {
							t.Errorf("Stats.Running %d over the cap %d", st.Running, tt.conc)
						}
					}
				}
			})
			h.advance(10*time.Second, 10*time.Second)
			close(stop)
			wg.Wait()
			if got := len(h.take()); got != tt.jobs {
				t.Errorf("got %d runs, want %d", got, tt.jobs)
			}
			if got := int(peak.Load()); got != tt.want {
				t.Errorf("got global peak %d, want %d", got, tt.want)
			}
			for i := range hostPeak {
				if got := int(hostPeak[i].Load()); tt.perHost > 0 && got > tt.perHost {
					t.Errorf("host %d: got peak %d, want at most %d", i, got, tt.perHost)
				}
			}
		})
	}
}

func TestUpdateKeepsStateAndStopsRemoved(t *testing.T) {
	h := newHarness(t, schedule.Config{FlapChanges: -1}, t0)
	var mu sync.Mutex
	runs := map[string]int{}
	job := func(id string, up bool, interval time.Duration, labels map[string]string) schedule.Job {
		run := scripted(h.clk, id, up)
		return schedule.Job{ID: id, Interval: interval, FailureThreshold: 1, Labels: labels,
			Run: func(ctx context.Context) patrol.Result {
				mu.Lock()
				runs[id]++
				mu.Unlock()
				return run(ctx)
			}}
	}
	h.update([]schedule.Job{
		job("a", false, time.Second, nil),
		job("b", true, time.Second, nil),
		job("c", true, time.Second, nil),
	})
	h.start()
	h.advance(time.Second, time.Second)
	h.take()

	h.update([]schedule.Job{
		job("a", false, time.Second, map[string]string{"team": "db"}),
		job("c", true, 2*time.Second, nil),
		job("d", true, time.Second, nil),
	})
	got := map[string]schedule.JobState{}
	for _, st := range h.s.Snapshot() {
		got[st.Job.ID] = st
	}
	if _, ok := got["b"]; ok || len(got) != 3 {
		t.Fatalf("got jobs %v, want a, c, d", got)
	}
	if a := got["a"]; a.Status != patrol.StatusDown || a.Failures != 1 || a.Since.IsZero() {
		t.Errorf("a: got %+v, want its down state kept", a)
	}
	if c := got["c"]; c.Status != patrol.StatusUp || c.Successes != 1 {
		t.Errorf("c: got %+v, want its up state kept", c)
	}
	if d := got["d"]; d.Status != patrol.StatusUnknown || d.Last != nil {
		t.Errorf("d: got %+v, want a fresh job", d)
	}
	a := got["a"]
	wantA := patrol.TargetState{Target: "a", Status: patrol.StatusDown, Since: a.Since, Labels: map[string]string{"team": "db"},
		Last: a.Last.Summary()}
	if diff := cmp.Diff(wantA, a.TargetState()); diff != "" || a.Last.Class == "" {
		t.Errorf("a's target state (-want +got):\n%s", diff)
	}
	if ts := got["d"].TargetState(); ts.Status != patrol.StatusUnknown || ts.Last != (patrol.ResultSummary{}) {
		t.Errorf("d's target state: got %+v, want unknown with no result", ts)
	}

	h.advance(2*time.Second, time.Second)
	for _, e := range h.take() {
		if e.Job.ID == "a" && e.Job.Labels["team"] != "db" {
			t.Errorf("a: got labels %v, want the updated ones", e.Job.Labels)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]int{"a": 3, "b": 1, "c": 2, "d": 2}
	if fmt.Sprint(runs) != fmt.Sprint(want) {
		t.Errorf("got runs %v, want %v", runs, want)
	}
}

func TestUpdateCancelsRemovedRun(t *testing.T) {
	h := newHarness(t, schedule.Config{}, t0)
	started := make(chan struct{})
	returned := make(chan error, 1)
	h.update([]schedule.Job{{ID: "slow", Interval: time.Second,
		Run: func(ctx context.Context) patrol.Result {
			close(started)
			<-ctx.Done()
			returned <- ctx.Err()
			return result(h.clk, "slow", false)
		}}})
	h.start()
	h.clk.Advance(time.Second)
	<-started
	h.update(nil)
	if err := <-returned; !errors.Is(err, context.Canceled) {
		t.Errorf("got run context error %v, want context.Canceled", err)
	}
	h.settle()
	if ev := h.take(); len(ev) != 0 {
		t.Errorf("got events %v from a removed job, want none", ev)
	}
	if st := h.s.Stats(); st.Jobs != 0 || st.Running != 0 || st.Runs != 0 {
		t.Errorf("got stats %+v, want no jobs and no recorded runs", st)
	}
}

func TestUpdateRejects(t *testing.T) {
	run := func(context.Context) patrol.Result { return patrol.Result{Class: patrol.ClassOK} }
	tests := []struct {
		name string
		job  schedule.Job
		want string
	}{
		{"empty ID", schedule.Job{Run: run}, "empty ID"},
		{"no run", schedule.Job{ID: "x"}, "no Run function"},
		{"timeout over interval", schedule.Job{ID: "x", Run: run, Interval: time.Second, Timeout: 2 * time.Second}, "longer than the interval"},
		{"timeout over default interval", schedule.Job{ID: "x", Run: run, Timeout: time.Minute}, "longer than the interval"},
		{"tiny interval", schedule.Job{ID: "x", Run: run, Interval: time.Microsecond}, "shorter than"},
		{"negative threshold", schedule.Job{ID: "x", Run: run, FailureThreshold: -1}, "negative failure threshold"},
		{"duplicate", schedule.Job{ID: "ok", Run: run}, "duplicate ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule.New(schedule.Config{})
			if err := s.Update([]schedule.Job{{ID: "ok", Run: run}}); err != nil {
				t.Fatal(err)
			}
			err := s.Update([]schedule.Job{{ID: "ok", Run: run}, tt.job})
			var je *schedule.JobError
			if !errors.As(err, &je) || je.Index != 1 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a *JobError at index 1 containing %q", err, tt.want)
			}
			if st := s.Stats(); st.Jobs != 1 {
				t.Errorf("got %d jobs after a rejected update, want the old 1", st.Jobs)
			}
		})
	}
}

func TestJobDefaults(t *testing.T) {
	run := func(context.Context) patrol.Result { return patrol.Result{Class: patrol.ClassOK} }
	tests := []struct {
		job                        schedule.Job
		interval, timeout          time.Duration
		failThreshold, okThreshold int
	}{
		{schedule.Job{ID: "zero", Run: run}, schedule.DefaultInterval, schedule.DefaultTimeout, 2, 1},
		{schedule.Job{ID: "short", Run: run, Interval: 2 * time.Second}, 2 * time.Second, 2 * time.Second, 2, 1},
		{schedule.Job{ID: "equal", Run: run, Interval: 5 * time.Second, Timeout: 5 * time.Second, FailureThreshold: 4, SuccessThreshold: 3},
			5 * time.Second, 5 * time.Second, 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.job.ID, func(t *testing.T) {
			s := schedule.New(schedule.Config{})
			if err := s.Update([]schedule.Job{tt.job}); err != nil {
				t.Fatal(err)
			}
			j, ok := s.Job(tt.job.ID)
			if !ok {
				t.Fatalf("Job(%q): not found", tt.job.ID)
			}
			if j.Interval != tt.interval || j.Timeout != tt.timeout || j.FailureThreshold != tt.failThreshold || j.SuccessThreshold != tt.okThreshold {
				t.Errorf("got interval %s timeout %s thresholds %d/%d, want %s %s %d/%d", j.Interval, j.Timeout,
					j.FailureThreshold, j.SuccessThreshold, tt.interval, tt.timeout, tt.failThreshold, tt.okThreshold)
			}
		})
	}
}

// Update keeps its own copy of the jobs, whatever the caller does with its slice after,
// and Job finds them by ID.
func TestUpdateKeepsOwnCopy(t *testing.T) {
	run := func(context.Context) patrol.Result { return patrol.Result{Class: patrol.ClassOK} }
	jobs := []schedule.Job{{ID: "a", Host: "h1", Run: run}, {ID: "b", Host: "h2", Run: run, Interval: time.Minute}}
	s := schedule.New(schedule.Config{})
	if err := s.Update(jobs); err != nil {
		t.Fatal(err)
	}
	jobs[0].Host, jobs[1].Interval = "changed", time.Hour
	for _, tt := range []struct {
		id       string
		ok       bool
		host     string
		interval time.Duration
	}{
		{"a", true, "h1", schedule.DefaultInterval},
		{"b", true, "h2", time.Minute},
		{"c", false, "", 0},
	} {
		j, ok := s.Job(tt.id)
		if ok != tt.ok {
			t.Fatalf("Job(%q): got ok %v, want %v", tt.id, ok, tt.ok)
		}
		if !ok {
			continue
		}
		if j.ID != tt.id || j.Host != tt.host || j.Interval != tt.interval {
			t.Errorf("Job(%q): got %q host %q interval %s, want host %q interval %s", tt.id, j.ID, j.Host, j.Interval, tt.host, tt.interval)
		}
	}
}

func TestRunTimeout(t *testing.T) {
	h := newHarness(t, schedule.Config{}, t0)
	got := make(chan time.Duration, 1)
	h.update([]schedule.Job{{ID: "j", Interval: time.Minute, Timeout: 3 * time.Second,
		Run: func(ctx context.Context) patrol.Result {
			if dl, ok := ctx.Deadline(); ok {
				got <- time.Until(dl)
			} else {
				got <- 0
			}
			return result(h.clk, "j", true)
		}}})
	h.start()
	h.advance(time.Minute, time.Second)
	if d := <-got; d <= 2*time.Second || d > 3*time.Second {
		t.Errorf("got a run deadline %s away, want about 3s", d)
	}
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t, schedule.Config{}, t0)
	h.update([]schedule.Job{{ID: "j", Interval: time.Second, Run: scripted(h.clk, "j", true)}})
	h.start()
	if err := h.s.Run(context.Background()); err == nil {
		t.Fatal("second concurrent Run returned nil, want an error")
	}
	h.advance(2*time.Second, time.Second)
	if n := len(h.take()); n != 2 {
		t.Errorf("got %d runs in two intervals, want 2", n)
	}
}

func TestRestart(t *testing.T) {
	clk := schedule.NewFakeClock(t0)
	var runs atomic.Int32
	s := schedule.New(schedule.Config{Clock: clk, OnResult: func(schedule.Event) { runs.Add(1) }})
	if err := s.Update([]schedule.Job{{ID: "j", Interval: time.Second, Run: scripted(clk, "j", true)}}); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		for !schedule.Quiet(s) {
			time.Sleep(20 * time.Microsecond)
		}
		clk.Advance(time.Second)
		for !schedule.Quiet(s) {
			time.Sleep(20 * time.Microsecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
		if got := runs.Load(); got != int32(round) {
			t.Errorf("round %d: got %d runs in all, want %d", round, got, round)
		}
	}
}

// TestUpdateWhileRunning reloads jobs over and over on the system clock while they
// run, for the race detector and the invariants.
func TestUpdateWhileRunning(t *testing.T) {
	const conc, perHost = 8, 2
	var cur atomic.Int32
	run := func(ctx context.Context) patrol.Result {
		if n := cur.Add(1); n > conc {
			t.Errorf("%d runs in flight, want at most %d", n, conc)
		}
		defer cur.Add(-1)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Microsecond):
		}
		return patrol.Result{Class: patrol.ClassRefused}
	}
	s := schedule.New(schedule.Config{Concurrency: conc, PerHost: perHost, FlapChanges: 2, FlapWindow: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for round := range 60 {
		jobs := make([]schedule.Job, 0, 100)
		for i := range 100 {
			if (i+round)%3 == 0 {
				continue
			}
			jobs = append(jobs, schedule.Job{
				ID: fmt.Sprintf("j%d", i), Host: fmt.Sprintf("h%d", i%5),
				Interval: time.Duration(2+round%3) * time.Millisecond, Timeout: time.Millisecond,
				Run: run,
			})
		}
		if err := s.Update(jobs); err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Running > conc || st.Queued < 0 {
			t.Fatalf("round %d: got stats %+v", round, st)
		}
		_ = s.Snapshot()
		time.Sleep(3 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Running != 0 || st.Queued != 0 || st.Runs == 0 {
		t.Errorf("after Run: got stats %+v, want runs recorded and none running or queued", st)
	}
}

// A job's Try runs on the scheduler's loop instead of Run; a Try that cannot finish
// at once hands the run to Run; a fast confirmation goes through Run.
func TestTry(t *testing.T) {
	h := newHarness(t, schedule.Config{FlapChanges: -1}, t0)
	var mu sync.Mutex
	calls := map[string]int{}
	count := func(k string) {
		mu.Lock()
		calls[k]++
		mu.Unlock()
	}
	h.update([]schedule.Job{
		{ID: "inline", Interval: time.Minute,
			Run: func(context.Context) patrol.Result { count("inline.run"); return result(h.clk, "inline", true) },
			Try: func() (patrol.Result, bool) { count("inline.try"); return result(h.clk, "inline", true), true }},
		{ID: "declines", Interval: time.Minute,
			Run: func(context.Context) patrol.Result { count("declines.run"); return result(h.clk, "declines", true) },
			Try: func() (patrol.Result, bool) { count("declines.try"); return patrol.Result{}, false }},
		{ID: "down", Interval: time.Minute,
			Run: func(context.Context) patrol.Result { count("down.run"); return result(h.clk, "down", false) },
			Try: func() (patrol.Result, bool) { count("down.try"); return result(h.clk, "down", false), true }},
	})
	h.start()
	h.advance(3*time.Minute, time.Second)
	want := map[string]int{
		"inline.try": 3, "inline.run": 0,
		"declines.try": 3, "declines.run": 3,
		"down.try": 3, "down.run": 1, // the first failure is confirmed at once; then it is down
	}
	mu.Lock()
	defer mu.Unlock()
	for k, n := range want {
		if calls[k] != n {
			t.Errorf("%s: %d calls, want %d (all: %v)", k, calls[k], n, calls)
		}
	}
	states := map[string]patrol.Status{}
	for _, e := range h.take() {
		states[e.Job.ID] = e.Status
	}
	if states["inline"] != patrol.StatusUp || states["declines"] != patrol.StatusUp || states["down"] != patrol.StatusDown {
		t.Errorf("states: %v", states)
	}
}

func TestSameHostCountsOtherJobsAndDown(t *testing.T) {
	h := newHarness(t, schedule.Config{NoFastConfirm: true, FlapChanges: -1}, t0)
	job := func(id, host string, outcomes ...bool) schedule.Job {
		return schedule.Job{ID: id, Host: host, Interval: time.Second, FailureThreshold: 1, SuccessThreshold: 1,
			Run: scripted(h.clk, id, outcomes...)}
	}
	h.update([]schedule.Job{
		job("db1:5432", "db1", false),
		job("db1:6379", "db1", false, true), // down, then up
		job("db1:9100", "db1", true),
		job("web:80", "web", true),
	})
	type same struct {
		host         string
		others, down int
		ok           bool
	}
	check := func(when string, want map[string]same) {
		t.Helper()
		for id, w := range want {
			var g same
			g.host, g.others, g.down, g.ok = h.s.SameHost(id)
			if g != w {
				t.Errorf("%s: SameHost(%q): got %+v, want %+v", when, id, g, w)
			}
		}
	}
	check("before any run", map[string]same{
		"db1:5432": {"db1", 2, 0, true}, "web:80": {"web", 0, 0, true}, "gone:1": {},
	})
	h.start()
	h.advance(time.Second, time.Second)
	check("after the first results", map[string]same{
		"db1:5432": {"db1", 2, 1, true}, // db1:6379 is down; itself is not counted
		"db1:9100": {"db1", 2, 2, true},
		"web:80":   {"web", 0, 0, true},
	})
	h.advance(time.Second, time.Second)
	check("after db1:6379 came up", map[string]same{
		"db1:5432": {"db1", 2, 0, true},
		"db1:9100": {"db1", 2, 1, true},
	})
	// A job that moves to another host takes its state with it; a removed one is gone.
	h.update([]schedule.Job{
		job("db1:5432", "db2", false),
		job("db1:9100", "db1", true),
		job("web:80", "web", true),
	})
	check("after the update", map[string]same{
		"db1:5432": {"db2", 0, 0, true},
		"db1:9100": {"db1", 0, 0, true},
		"db1:6379": {},
	})
	h.update([]schedule.Job{job("db1:5432", "db2", false), job("x:1", "db2", true)})
	check("after a second update", map[string]same{"x:1": {"db2", 1, 1, true}})
}

// A job added to a running scheduler with Soon runs within Soon, not at its phase of a
// long interval; without it, the same job waits for its phase.
func TestSoonBringsTheFirstRunForward(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	h := newHarness(t, schedule.Config{}, t0)
	h.start()
	ok := func(context.Context) patrol.Result { return patrol.Result{Class: patrol.ClassOK} }
	var jobs []schedule.Job
	for i := range 50 {
		jobs = append(jobs, schedule.Job{ID: fmt.Sprintf("late-%d", i), Interval: time.Hour, Run: ok},
			schedule.Job{ID: fmt.Sprintf("soon-%d", i), Interval: time.Hour, Soon: 10 * time.Second, Run: ok})
	}
	if err := h.s.Update(jobs); err != nil {
		t.Fatal(err)
	}
	h.advance(10*time.Second, 100*time.Millisecond)
	soon, late := 0, 0
	for _, ev := range h.take() {
		if strings.HasPrefix(ev.Result.Target, "soon-") || strings.HasPrefix(ev.Job.ID, "soon-") {
			soon++
		} else {
			late++
		}
	}
	if soon != 50 {
		t.Errorf("%d of the 50 jobs with Soon 10s ran within 10s, want all", soon)
	}
	if late > 5 {
		t.Errorf("%d of the 50 jobs without Soon ran within 10s of an hour's interval, want about none", late)
	}
}
