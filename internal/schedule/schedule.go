// Package schedule runs many checks, each on its own interval, and judges their
// results into up/down states.
//
// One loop sleeps on a single timer until the earliest due job (a min-heap orders
// them), so a hundred thousand jobs cost a heap entry each, not a goroutine and a
// ticker each. Each job starts at a fixed phase of its interval derived from its ID,
// as Prometheus spreads scrapes: the run times of a job are the instants t with
// t.UnixNano() ≡ hash(ID) (mod interval). Jobs with the same interval are therefore
// spread evenly, and the same job runs at the same phase on every instance and after
// every restart.
//
// A due run waits for a per-host slot and then for a global slot, in FIFO order, and
// runs on a pooled worker goroutine; at most Config.Concurrency runs are in flight. A job
// never overlaps itself: a run that ends after its next slot makes that slot start
// late, and slots more than a whole interval late are skipped (Stats.Missed).
package schedule

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// minSleep is the shortest time the loop sleeps: jobs due within it of each other are
// started by one wake-up. Each wake-up costs the Go runtime an idle-and-wake cycle
// worth several runs of the loop's own work; waking at most ~60 times a second
// instead of 250 took a third off the scheduler's CPU per run at 10,000 runs a second
// (6.3 to 4.0 µs, docs/benchmarks.md), for a start at most 16ms after its slot — far
// inside any interval, and confirmations of a failure do not wait for it.
const minSleep = 16 * time.Millisecond

// Config configures a Scheduler. The zero value means the defaults.
type Config struct {
	// Concurrency caps the runs in flight across all jobs; ≤ 0 means
	// DefaultConcurrency.
	Concurrency int
	// PerHost caps the runs in flight per Job.Host; 0 means DefaultPerHost and a
	// negative value means no per-host cap.
	PerHost int
	// Clock is the time source; nil means the system clock. Tests pass a FakeClock.
	// Run timeouts are context deadlines and always follow the system clock.
	Clock Clock
	// NoFastConfirm turns off fast confirmation. With it on (the default), a failing
	// result that does not yet reach the job's FailureThreshold, for a job not
	// already down, is re-checked at once rather than at the next interval, so that a
	// door that stays shut is judged down within moments and a single lost packet
	// is not. A FailureThreshold of 1 leaves nothing to confirm.
	NoFastConfirm bool
	// FlapWindow and FlapChanges define flapping: a job whose state changed between
	// up and down FlapChanges times within FlapWindow is flapping until it has
	// gone a whole FlapWindow without a change. Zero means DefaultFlapWindow and
	// DefaultFlapChanges; a negative FlapChanges turns flap detection off.
	FlapWindow  time.Duration
	FlapChanges int
	// OnResult, when set, receives every recorded result. It is called from the run's
	// own goroutine, concurrently for different jobs but in order and one at a time
	// for each job; the job's next run waits for it, and so does its concurrency slot,
	// so it should be quick. Results of runs cut short by a job's removal or by the
	// end of Run are dropped, not recorded.
	OnResult func(Event)
	// Logger receives debug messages about reloads; nil means no logging.
	Logger *slog.Logger
}

// Scheduler runs jobs. Build it with New, give it jobs with Update and drive it with
// Run. The zero value is not usable. All methods are safe for concurrent use.
type Scheduler struct {
	clock       Clock
	log         *slog.Logger
	onResult    func(Event)
	conc        int
	perHost     int
	fastConfirm bool
	flapWindow  int64
	flapChanges int
	epoch       time.Time // rel times count from here

	mu       sync.Mutex
	jobs     map[string]*entry
	heap     dueHeap
	stale    int // stale items in heap
	global   fifo
	hosts    map[string]*hostSlots
	onHost   map[string]hostCount // jobs and down jobs by Job.Host, for SameHost
	inflight int
	queued   int
	work     chan *task // to idle workers
	idle     int        // workers waiting on work, less the tasks already sent
	workers  sync.WaitGroup

	// Set while Run is active.
	running  bool
	stopping bool
	ctx      context.Context

	// The loop's sleep, for pokes and for tests.
	wake     chan struct{}
	poked    bool
	waiting  bool  // the loop is asleep (or about to be)
	hasArmed bool  // its timer is armed …
	armedAt  int64 // … for this rel time

	nRuns, nConfirms, nMissed uint64
	lag                       lagHist

	// While the loop pops due jobs, start collects those with a Try here; the loop
	// runs them after unlocking.
	collecting bool
	inline     []inlineRun
}

// inlineRun is a due run of a job with a Try, started by the loop itself.
type inlineRun struct {
	e       *entry
	job     *Job
	due     int64
	confirm bool
}

// hostCount counts the jobs of one host and how many of them are down.
type hostCount struct{ jobs, down int32 }

// hostSlots counts one host's runs in flight and holds its waiting ones. It exists
// only while the host has either.
type hostSlots struct {
	name     string
	inflight int
	waiting  fifo
}

// Where an entry is while Run is active.
const (
	stIdle    uint8 = iota // in the heap, or between runs under the lock
	stQueued               // due, waiting for a slot
	stRunning              // its run is in flight
)

// entry is the scheduler's record of one job: its schedule and its judged state.
// Every field is guarded by Scheduler.mu.
type entry struct {
	job     *Job
	hash    uint64
	gen     uint32 // the current heap item's gen
	where   uint8
	removed bool
	regrid  bool               // the interval changed while queued or running
	confirm bool               // the pending run is a fast confirmation
	due     int64              // when the pending or current run was due
	slot    int64              // the interval slot last run
	cancel  context.CancelFunc // cancels the run in flight
	held    *hostSlots         // whose slot the entry holds while queued globally or running

	state      patrol.Status
	flapping   bool
	succ, fail int32
	since      time.Time
	last       *patrol.Result
	changes    []int64 // rel times of the latest up/down changes, oldest first
}

// New returns a scheduler with no jobs.
func New(cfg Config) *Scheduler {
	s := &Scheduler{
		clock:       cfg.Clock,
		log:         cfg.Logger,
		onResult:    cfg.OnResult,
		conc:        cfg.Concurrency,
		perHost:     cfg.PerHost,
		fastConfirm: !cfg.NoFastConfirm,
		flapWindow:  int64(cfg.FlapWindow),
		flapChanges: cfg.FlapChanges,
		jobs:        make(map[string]*entry),
		hosts:       make(map[string]*hostSlots),
		onHost:      make(map[string]hostCount),
		wake:        make(chan struct{}, 1),
	}
	if s.conc <= 0 {
		s.conc = DefaultConcurrency
	}
	s.work = make(chan *task, s.conc)
	if s.clock == nil {
		s.clock = systemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.perHost == 0 {
		s.perHost = DefaultPerHost
	}
	if s.flapWindow <= 0 {
		s.flapWindow = int64(DefaultFlapWindow)
	}
	if s.flapChanges == 0 {
		s.flapChanges = DefaultFlapChanges
	}
	s.epoch = s.clock.Now()
	return s
}

func (s *Scheduler) rel(t time.Time) int64 { return int64(t.Sub(s.epoch)) }

// Update replaces the set of jobs. A job whose ID was already present keeps its state,
// consecutive counts and flap history, and its next run uses the new settings; it
// keeps its place in the schedule unless its interval changed. Jobs no longer present
// stop: a run in flight has its context cancelled and its result dropped.
//
// Update checks every job first and changes nothing if any is invalid: it then returns
// the errors (each a *JobError) joined.
func (s *Scheduler) Update(jobs []Job) error {
	// The scheduler's copies of the jobs are one slice, not an allocation each: at
	// 100,000 jobs that is 8.8 MB in one piece rather than 9.6 MB in 100,000.
	own := make([]Job, len(jobs))
	norm := make([]*Job, len(jobs))
	seen := make(map[string]int, len(jobs))
	var errs []error
	for i := range jobs {
		j := &jobs[i]
		if err := normalize(j, &own[i], i); err != nil {
			errs = append(errs, err)
			continue
		}
		if first, dup := seen[j.ID]; dup {
			errs = append(errs, &JobError{Index: i, ID: j.ID, Reason: "duplicate ID, first at index " + strconv.Itoa(first)})
			continue
		}
		seen[j.ID] = i
		norm[i] = &own[i]
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.running && !s.stopping
	now := s.clock.Now()
	next := make(map[string]*entry, len(norm))
	var added, changed int
	for _, j := range norm {
		e := s.jobs[j.ID]
		if e == nil {
			e = &entry{job: j, hash: hashID(j.ID), state: patrol.StatusUnknown}
			added++
			if live {
				due := s.firstDue(e, now)
				if j.Soon > 0 {
					due = min(due, s.rel(now)+int64(e.hash%uint64(j.Soon)))
				}
				s.arm(e, due)
			}
		} else {
			regrid := e.job.Interval != j.Interval
			e.job = j
			if regrid {
				changed++
				switch {
				case !live:
				case e.where == stIdle:
					s.stale++
					s.arm(e, s.firstDue(e, now))
				default:
					e.regrid = true
				}
			}
		}
		next[j.ID] = e
	}
	removed := 0
	for id, e := range s.jobs {
		if next[id] == e {
			continue
		}
		removed++
		e.removed = true
		switch {
		case !live:
		case e.where == stRunning:
			if e.cancel != nil {
				e.cancel()
			}
		case e.where == stQueued:
			s.queued--
		default:
			s.stale++
		}
	}
	s.jobs = next
	clear(s.onHost)
	for _, e := range next {
		c := s.onHost[e.job.Host]
		c.jobs++
		if e.state == patrol.StatusDown {
			c.down++
		}
		s.onHost[e.job.Host] = c
	}
	if s.stale > len(s.heap)/2 {
		s.compact()
	}
	s.log.Debug("jobs updated", "jobs", len(next), "added", added, "removed", removed, "regridded", changed)
	return nil
}

// compact drops stale items from the heap.
func (s *Scheduler) compact() {
	h := s.heap[:0]
	for _, it := range s.heap {
		if !it.e.removed && it.gen == it.e.gen {
			h = append(h, it)
		}
	}
	clear(s.heap[len(h):])
	s.heap = h
	s.heap.init()
	s.stale = 0
}

// firstDue returns the first instant at or after now in e's phase of its interval.
func (s *Scheduler) firstDue(e *entry, now time.Time) int64 {
	iv := int64(e.job.Interval)
	phase := int64(e.hash % uint64(iv))
	w := now.UnixNano() % iv
	if w < 0 {
		w += iv
	}
	d := phase - w
	if d < 0 {
		d += iv
	}
	return s.rel(now) + d
}

// arm puts e in the heap for due, waking the loop if that is earlier than its sleep.
func (s *Scheduler) arm(e *entry, due int64) {
	e.gen++
	e.where = stIdle
	e.due = due
	s.heap.push(dueItem{due: due, gen: e.gen, e: e})
	if !s.hasArmed || due < s.armedAt {
		s.poke()
	}
}

func (s *Scheduler) poke() {
	if s.poked || !s.running {
		return
	}
	s.poked = true
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs the jobs until ctx is done, then waits for the runs in flight (their
// contexts are cancelled) and returns nil. Jobs may be updated before and during
// Run. Run may be called again after it returns; it returns an error if called while
// already running.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return errors.New("schedule: Run called while already running")
	}
	s.running, s.stopping, s.ctx = true, false, ctx
	now := s.clock.Now()
	s.heap = s.heap[:0]
	s.stale = 0
	for _, e := range s.jobs {
		e.gen++
		e.where, e.regrid, e.confirm = stIdle, false, false
		e.due = s.firstDue(e, now)
		s.heap = append(s.heap, dueItem{due: e.due, gen: e.gen, e: e})
	}
	s.heap.init()
	s.log.Debug("scheduler started", "jobs", len(s.jobs))
	s.mu.Unlock()

	s.loop(ctx)

	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.workers.Wait()

	s.mu.Lock()
	defer s.mu.Unlock()
	s.heap = nil
	s.global = fifo{}
	s.hosts = make(map[string]*hostSlots)
	s.inflight, s.queued, s.idle = 0, 0, 0
	for len(s.work) > 0 {
		<-s.work // abandoned at the end: their contexts are already cancelled
	}
	for _, e := range s.jobs {
		e.where, e.cancel, e.held = stIdle, nil, nil
	}
	s.running, s.ctx = false, nil
	s.poked, s.waiting, s.hasArmed = false, false, false
	select {
	case <-s.wake:
	default:
	}
	s.log.Debug("scheduler stopped")
	return nil
}

// loop starts due jobs and sleeps until the next one is due.
func (s *Scheduler) loop(ctx context.Context) {
	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		s.waiting, s.poked = false, false
		if ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		now := s.rel(s.clock.Now())
		s.collecting, s.inline = true, s.inline[:0]
		for len(s.heap) > 0 && s.heap[0].due <= now {
			it := s.heap.pop()
			e := it.e
			if e.removed || it.gen != e.gen {
				s.stale--
				continue
			}
			e.slot, e.confirm = it.due, false
			s.admit(e)
		}
		s.collecting = false
		if len(s.inline) > 0 {
			batch := s.inline
			s.mu.Unlock()
			for _, r := range batch {
				s.runInline(r)
			}
			continue
		}
		s.hasArmed = len(s.heap) > 0
		if s.hasArmed {
			s.armedAt = max(s.heap[0].due, now+int64(minSleep))
			timer.Reset(time.Duration(s.armedAt - now))
		} else {
			timer.Stop()
		}
		s.waiting = true
		s.mu.Unlock()

		select {
		case <-ctx.Done():
		case <-timer.C():
		case <-s.wake:
		}
	}
}

// admit starts e's due run or queues it for a per-host, then a global, slot.
func (s *Scheduler) admit(e *entry) {
	if h := e.job.Host; h != "" && s.perHost > 0 {
		hs := s.hosts[h]
		if hs == nil {
			hs = &hostSlots{name: h}
			s.hosts[h] = hs
		}
		if hs.inflight >= s.perHost {
			hs.waiting.push(e)
			e.where = stQueued
			s.queued++
			return
		}
		hs.inflight++
		e.held = hs
	}
	if s.inflight >= s.conc {
		s.global.push(e)
		e.where = stQueued
		s.queued++
		return
	}
	s.start(e)
}

// task is one run handed to a worker.
type task struct {
	ctx     context.Context
	cancel  context.CancelFunc
	e       *entry
	job     *Job // e's job when the run started
	due     int64
	confirm bool
}

// start runs e, which holds its per-host slot if it needs one, on an idle worker or
// a new one. The work channel holds at most Concurrency tasks, so the send never
// blocks.
func (s *Scheduler) start(e *entry) {
	if s.stopping || s.ctx.Err() != nil {
		return
	}
	s.inflight++
	e.where = stRunning
	if s.collecting && e.job.Try != nil {
		s.inline = append(s.inline, inlineRun{e: e, job: e.job, due: e.due, confirm: e.confirm})
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, e.job.Timeout)
	e.cancel = cancel
	t := &task{ctx: ctx, cancel: cancel, e: e, job: e.job, due: e.due, confirm: e.confirm}
	if s.idle > 0 {
		s.idle--
		s.work <- t
		return
	}
	s.workers.Add(1)
	go s.worker(s.ctx, t)
}

// worker runs tasks until ctx, Run's context, is done. Reusing workers keeps their
// grown stacks.
func (s *Scheduler) worker(ctx context.Context, t *task) {
	defer s.workers.Done()
	for {
		s.run(t)
		select {
		case t = <-s.work:
		case <-ctx.Done():
			return
		}
	}
}

// release frees the global and per-host slots of e's finished run and hands them to
// waiting runs, first come first served.
func (s *Scheduler) release(e *entry) {
	s.inflight--
	e.where = stIdle
	s.freeHost(e)
	for s.inflight < s.conc {
		w := s.global.pop()
		if w == nil {
			break
		}
		if w.removed {
			s.freeHost(w)
			continue
		}
		s.queued--
		s.start(w)
	}
}

// freeHost frees e's per-host slot, if it holds one, and moves the host's first
// waiting run to the global queue.
func (s *Scheduler) freeHost(e *entry) {
	hs := e.held
	if hs == nil {
		return
	}
	e.held = nil
	hs.inflight--
	for hs.inflight < s.perHost {
		w := hs.waiting.pop()
		if w == nil {
			break
		}
		if w.removed {
			continue
		}
		hs.inflight++
		w.held = hs
		s.global.push(w)
	}
	// An idle host's slots are kept for its next run, as long as there are no more of
	// them than jobs: hosts that left the jobs are dropped as they go idle.
	if hs.inflight == 0 && hs.waiting.len() == 0 && len(s.hosts) > len(s.jobs) {
		delete(s.hosts, hs.name)
	}
}

// run runs one task on a worker and marks the worker idle when done.
func (s *Scheduler) run(t *task) {
	start := s.clock.Now()
	res := t.job.Run(t.ctx)
	t.cancel()
	s.finish(t.e, t.job, &res, start, t.due, t.confirm, true)
}

// runInline runs r's Try on the loop; a run Try cannot finish at once goes to a
// worker.
func (s *Scheduler) runInline(r inlineRun) {
	start := s.clock.Now()
	res, ok := r.job.Try()
	if ok {
		s.finish(r.e, r.job, &res, start, r.due, r.confirm, false)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.e.removed || s.stopping || s.ctx.Err() != nil {
		s.release(r.e)
		return
	}
	s.inflight-- // start counts it in again
	s.start(r.e)
}

// finish records a run's result, frees its slots and schedules the job's next run.
// worker says the run was on a worker, which becomes idle.
func (s *Scheduler) finish(e *entry, job *Job, res *patrol.Result, start time.Time, due int64, confirm, worker bool) {
	s.mu.Lock()
	e.cancel = nil
	if e.removed || s.stopping || s.ctx.Err() != nil {
		if worker {
			s.idle++
		}
		s.release(e)
		s.mu.Unlock()
		return
	}
	ev := s.record(e, job, res, time.Duration(s.rel(start)-due), confirm)
	s.mu.Unlock()

	if s.onResult != nil {
		s.onResult(ev)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if worker {
		s.idle++
	}
	s.release(e)
	if e.removed || s.stopping || s.ctx.Err() != nil {
		return
	}
	now := s.clock.Now()
	n := s.rel(now)
	if s.fastConfirm && !res.Up() && e.state != patrol.StatusDown && int(e.fail) < job.FailureThreshold {
		e.due, e.confirm = n, true
		s.admit(e)
		return
	}
	e.confirm = false
	if e.regrid {
		e.regrid = false
		s.arm(e, s.firstDue(e, now))
		return
	}
	iv := int64(e.job.Interval)
	next := e.slot + iv
	if next+iv <= n {
		k := (n - next) / iv
		next += k * iv
		s.nMissed += uint64(k)
	}
	if next <= n {
		e.slot, e.due = next, next
		s.admit(e)
		return
	}
	s.arm(e, next)
}

// record judges res into e's state and returns the event.
func (s *Scheduler) record(e *entry, job *Job, res *patrol.Result, lag time.Duration, confirm bool) Event {
	t := s.clock.Now()
	now := s.rel(t)
	up := res.Up()
	prev := e.state
	if up {
		e.succ, e.fail = e.succ+1, 0
	} else {
		e.succ, e.fail = 0, e.fail+1
	}
	switch {
	case up && prev != patrol.StatusUp && int(e.succ) >= job.SuccessThreshold:
		e.state = patrol.StatusUp
	case !up && prev != patrol.StatusDown && int(e.fail) >= job.FailureThreshold:
		e.state = patrol.StatusDown
	}
	changed := e.state != prev
	if changed {
		e.since = t
		if prev == patrol.StatusDown || e.state == patrol.StatusDown {
			c := s.onHost[e.job.Host]
			if e.state == patrol.StatusDown {
				c.down++
			} else {
				c.down--
			}
			s.onHost[e.job.Host] = c
		}
	}
	wasFlapping := e.flapping
	if s.flapChanges > 0 {
		if changed && prev != patrol.StatusUnknown {
			if len(e.changes) == s.flapChanges {
				copy(e.changes, e.changes[1:])
				e.changes = e.changes[:len(e.changes)-1]
			} else if e.changes == nil {
				e.changes = make([]int64, 0, s.flapChanges)
			}
			e.changes = append(e.changes, now)
			if len(e.changes) == s.flapChanges && now-e.changes[0] <= s.flapWindow {
				e.flapping = true
			}
		}
		if e.flapping && now-e.changes[len(e.changes)-1] >= s.flapWindow {
			e.flapping = false
		}
	}
	// The last result is overwritten in place, under s.mu: one allocation per job,
	// not per run. Snapshot hands out copies.
	if e.last == nil {
		e.last = new(patrol.Result)
	}
	*e.last = *res
	s.nRuns++
	if confirm {
		s.nConfirms++
	}
	s.lag.observe(lag)
	return Event{
		Job:         job,
		Result:      *res,
		Status:      e.state,
		Prev:        prev,
		Changed:     changed,
		Flapping:    e.flapping,
		FlapChanged: e.flapping != wasFlapping,
		Confirm:     confirm,
		Lag:         lag,
	}
}

// Snapshot returns every job's state, sorted by ID.
func (s *Scheduler) Snapshot() []JobState {
	s.mu.Lock()
	out := make([]JobState, 0, len(s.jobs))
	for _, e := range s.jobs {
		var last *patrol.Result
		if e.last != nil {
			l := *e.last
			last = &l
		}
		out = append(out, JobState{
			Job:       e.job,
			Status:    e.state,
			Flapping:  e.flapping,
			Since:     e.since,
			Successes: int(e.succ),
			Failures:  int(e.fail),
			Last:      last,
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b JobState) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	return out
}

// Job returns the job with ID id as the scheduler runs it, defaults filled in; ok is
// false when there is no such job. The Job is shared and must not be modified.
func (s *Scheduler) Job(id string) (job *Job, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.jobs[id]; e != nil {
		return e.job, true
	}
	return nil, false
}

// SameHost returns the Job.Host of the job with ID id, and how many other jobs have
// that host and how many of those are down; ok is false when there is no such job. It
// reads an index kept up to date by Update and by every change of state, so its cost
// does not grow with the number of jobs.
func (s *Scheduler) SameHost(id string) (host string, others, down int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.jobs[id]
	if e == nil {
		return "", 0, 0, false
	}
	c := s.onHost[e.job.Host]
	others, down = int(c.jobs)-1, int(c.down)
	if e.state == patrol.StatusDown {
		down--
	}
	return e.job.Host, others, down, true
}

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Jobs:     len(s.jobs),
		Running:  s.inflight,
		Queued:   s.queued,
		Runs:     s.nRuns,
		Confirms: s.nConfirms,
		Missed:   s.nMissed,
		Lag:      s.lag.export(),
	}
}
