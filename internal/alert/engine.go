// Package alert is portpatrol's alert engine. It turns probe results (Signal),
// findings of other engines (patrol.Finding) and anomalies (Anomaly) into incidents with a
// severity P0–P3, and runs each incident's life cycle: pending → firing →
// acknowledged → resolved, muted (silenced) by silences, maintenance windows and
// inhibition, and flapping while the scheduler says so. Unacknowledged alerts escalate
// along their chain when their deadline passes and remind everyone told; grouping
// batches notifications per receiver. Notifications go to a Sink (the durable outbox);
// state goes to a Store so that a restart neither pages twice nor forgets.
//
// The engine has no goroutines and no timers: Observe feeds it, Tick moves time on.
// Both take time from the caller, so tests run on fake time. Whoever shows alerts
// learns of each change through Deps.OnChange rather than by polling.
package alert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Sink receives the notifications the engine decides to send. The durable outbox
// implements it. Enqueue must either accept all of ns durably or return an error, in
// which case the engine offers the same notifications (same keys) again later; it
// must deliver a Key at most once per receiver. The engine calls it with its lock held,
// so it must not call back into the Engine.
type Sink interface {
	Enqueue(ctx context.Context, ns []patrol.Notification) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(ctx context.Context, ns []patrol.Notification) error

// Enqueue calls f.
func (f SinkFunc) Enqueue(ctx context.Context, ns []patrol.Notification) error { return f(ctx, ns) }

// Deps are what an Engine works with besides its configuration.
type Deps struct {
	// Sink receives notifications; required.
	Sink Sink
	// Store keeps alerts and silences; nil means a new MemStore.
	Store Store
	// Now is the clock for Observe without a time, Ack, Resolve and silences; nil
	// means time.Now. Tick takes its time as an argument.
	Now func() time.Time
	// OnChange, when set, is given a copy of an alert after each change of it that
	// can be seen from outside: opened, fired, acknowledged, escalated, reminded,
	// muted or unmuted, flapping or not, resolved, or a new summary, description,
	// deadline or set of labels. An alert that changes several times before the
	// hook is called is given once, as it is then. An alert the engine drops while
	// still open (a pending alert whose condition cleared before it fired) is given
	// once more, as resolved, so that whoever shows it stops.
	//
	// The hook is called in the order of the changes, one call at a time, after the
	// engine's lock is released, by the goroutine whose call to the engine made the
	// change or by one already calling the hook; a call to the engine returns once
	// its changes are handed over, or at once when another goroutine is handing
	// changes over. It may call the engine. It should return quickly, since the
	// caller that delivers waits for it; a hook that can be slow should hand off to
	// a queue of its own.
	OnChange func(patrol.Alert)
}

// Errors that Ack, Resolve and ExpireSilence return; test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrResolved = errors.New("already resolved")
	ErrPending  = errors.New("still pending: nothing to acknowledge yet")
)

// sinkRetry is how long a group waits after the sink refused it.
const sinkRetry = 5 * time.Second

// Engine is the alert engine. Build it with New; the zero value is not usable. All
// methods are safe for concurrent use.
type Engine struct {
	mu    sync.Mutex
	cfg   *settings
	store Store
	sink  Sink
	now   func() time.Time

	// onChange is Deps.OnChange. changes queues the alerts changed since it was last
	// called, each once, in the order of their first change; delivering is set while a
	// goroutine calls it.
	onChange   func(patrol.Alert)
	changes    []*entry
	queued     map[*entry]bool
	delivering bool

	alerts   map[string]*entry // by alert ID: active and recently resolved
	byFP     map[string]*entry // active alerts by fingerprint
	targets  map[string]*targetState
	silences map[string]*patrol.Silence
	groups   map[string]*group

	dirty    map[string]bool // alert IDs to save (true) or delete (false)
	silDirty map[string]bool // silence IDs to save (true) or delete (false)

	// Tick visits only what is due or changed. visit lists the alerts changed since
	// the last Tick (each once; entry.visiting); due holds the time each active alert
	// next has something to do (entry.dueAt; items whose time is not their alert's
	// dueAt are stale and skipped). muteAll asks for muting to be worked out for every
	// alert (a window or silence started or ended); muteList lists the alerts whose
	// labels, severity or state changed (entry.muteQueued); inh indexes the active
	// alerts by inhibition rule (inhibit.go), nil until muting is first worked out.
	visit, spare []*entry
	due          dueHeap
	muteAll      bool
	muteList     []*entry
	inh          []inhIndex

	winActive   []bool
	silActive   map[string]bool
	lastGC      time.Time
	scratch     []int64
	sent        uint64
	sinkErrors  uint64
	storeErrors uint64
	// After a failed save that took long, the next waits persistBackoff (doubling to
	// 30s) of the monotonic clock, so a store that blocks each write for its busy
	// timeout (a lock held by another process) does not hold the engine's lock, and
	// with it every probe's Observe, all the time. A store that fails at once is
	// tried again at the next Tick.
	persistRetry   time.Time
	persistBackoff time.Duration
}

// entry is a live alert.
type entry struct {
	Record
	// quiet reports that a silence or a maintenance window mutes the alert, which
	// holds back its impact notice; inhibition does not.
	quiet bool
	// visiting and muteQueued report that the alert is in Engine.visit and
	// Engine.muteList; src that it inhibits others (it is a source in Engine.inh, where
	// inh says where it stands under each rule); dueAt is its item in Engine.due.
	visiting, muteQueued, src bool
	inh                       []inhMember
	dueAt                     time.Time
}

// New builds an engine from cfg and loads its state from d.Store. It fails when cfg is
// invalid (a joined list of *ConfigError), when d.Sink is nil or when the store
// cannot be read.
func New(ctx context.Context, cfg Config, d Deps) (*Engine, error) {
	s, err := cfg.compile()
	if err != nil {
		return nil, fmt.Errorf("alert config: %w", err)
	}
	if d.Sink == nil {
		return nil, errors.New("alert engine: no sink")
	}
	e := &Engine{
		cfg: s, store: d.Store, sink: d.Sink, now: d.Now, onChange: d.OnChange, queued: map[*entry]bool{},
		alerts: map[string]*entry{}, byFP: map[string]*entry{}, targets: map[string]*targetState{},
		silences: map[string]*patrol.Silence{}, groups: map[string]*group{},
		dirty: map[string]bool{}, silDirty: map[string]bool{}, silActive: map[string]bool{},
		winActive: make([]bool, len(s.windows)), muteAll: true,
	}
	if e.store == nil {
		e.store = NewMemStore()
	}
	if e.now == nil {
		e.now = time.Now
	}
	recs, err := e.store.LoadAlerts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	sils, err := e.store.LoadSilences(ctx)
	if err != nil {
		return nil, fmt.Errorf("load silences: %w", err)
	}
	now := e.now()
	for _, r := range recs {
		if _, ok := s.chains[r.Chain]; !ok {
			// The chain was removed from the configuration since.
			r.Chain = e.route(&r.Alert)
		}
		ent := &entry{Record: r}
		e.alerts[r.Alert.ID] = ent
		if r.Alert.Active() {
			if old := e.byFP[r.Alert.Fingerprint]; old == nil || old.Alert.StartsAt.Before(r.Alert.StartsAt) {
				e.byFP[r.Alert.Fingerprint] = ent
			}
			e.markVisit(ent)
		}
		for _, o := range r.Owed {
			for _, rcv := range o.Receivers {
				e.enqueue(ent, o.Kind, o.Seq, rcv, now)
			}
		}
	}
	for i := range sils {
		sl := sils[i]
		e.silences[sl.ID] = &sl
	}
	return e, nil
}

// Observe runs the rules on one probe result. Decisions to notify are taken by the
// next Tick, after muting has been worked out for everything observed until then, and
// the alerts Observe opened or changed are saved by that Tick too, together, before
// anything is sent: an outage of many targets is saved in a few transactions rather
// than one per result. The error is for a signal without a target.
func (e *Engine) Observe(ctx context.Context, sig Signal) error {
	if sig.Target == "" {
		return errors.New("observe: signal without a target")
	}
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if sig.At.IsZero() {
		sig.At = now
	}
	e.observe(sig, now)
	return nil
}

// Flush saves what Observe changed since the last Tick. Call it before the engine is
// dropped — at shutdown, before a new engine loads the same store, when another
// instance takes over alerting — so that nothing observed is lost.
func (e *Engine) Flush(ctx context.Context) error {
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	e.persistRetry = time.Time{} // a last try, whatever the backoff
	return e.persist(ctx)
}

// ObserveFinding raises, updates or clears the alert of a finding.
func (e *Engine) ObserveFinding(ctx context.Context, f patrol.Finding) error {
	rs := e.cfg.rule(f.Class)
	if rs == nil {
		return fmt.Errorf("finding %s on %s: unknown class %q", f.Rule, f.Subject, f.Class)
	}
	if f.Subject == "" {
		return fmt.Errorf("finding %s of class %s: empty subject", f.Rule, f.Class)
	}
	sev := rs.severity
	if f.Severity != "" {
		v, err := patrol.ParseSeverity(f.Severity)
		if err != nil {
			return fmt.Errorf("finding %s on %s: %w", f.Rule, f.Subject, err)
		}
		sev = v
	}
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if f.At.IsZero() {
		f.At = now
	}
	rule := f.Rule
	if rule == "" {
		rule = string(f.Class)
	}
	e.apply(cond{
		rs: rs, rule: rule, subject: f.Subject, sev: sev, labels: alertLabels(f.Labels, "", f.Subject),
		verdict: verdictOf(f.Active), ready: true, summary: f.Summary, desc: f.Description, at: f.At,
	}, now)
	return e.persist(ctx)
}

// ObserveAnomaly raises, updates or clears the alert of an anomaly.
func (e *Engine) ObserveAnomaly(ctx context.Context, a Anomaly) error {
	if a.Target == "" || a.Metric == "" {
		return fmt.Errorf("anomaly %q on %q: empty target or metric", a.Metric, a.Target)
	}
	sev := e.cfg.anomaly.severity
	if a.Severity != "" {
		v, err := patrol.ParseSeverity(a.Severity)
		if err != nil {
			return fmt.Errorf("anomaly %s on %s: %w", a.Metric, a.Target, err)
		}
		sev = v
	}
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if a.At.IsZero() {
		a.At = now
	}
	if a.Summary == "" {
		a.Summary = fmt.Sprintf("%s %s anomalous (score %.1f)", a.Target, a.Metric, a.Score)
	}
	e.apply(cond{
		rs: &e.cfg.anomaly.ruleSettings, rule: "anomaly:" + a.Metric, subject: a.Target, sev: sev,
		labels: alertLabels(a.Labels, "", a.Target), verdict: verdictOf(a.Active), ready: true,
		summary: a.Summary, desc: a.Why, at: a.At,
		// A severity given with the anomaly (a forecast's P2 under half an hour, P3
		// under a day) is followed by the open alert as it changes.
		follow: a.Severity != "",
	}, now)
	return e.persist(ctx)
}

// Tick moves the engine's time to now: pending alerts whose `for` has passed fire,
// silences and maintenance windows start and end, unacknowledged alerts escalate and
// remind, and groups whose wait is over go to the sink. The daemon calls it every
// second. The error is from the sink or the store; what failed is retried on later
// ticks.
func (e *Engine) Tick(ctx context.Context, now time.Time) error {
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()

	for len(e.due) > 0 && !e.due[0].at.After(now) {
		it := e.due.pop()
		if it.ent.dueAt.Equal(it.at) {
			it.ent.dueAt = time.Time{}
			e.markVisit(it.ent)
		}
	}
	for _, ent := range e.visit {
		if e.active(ent) && ent.base() == patrol.AlertPending && !now.Before(ent.Alert.StartsAt.Add(e.cfg.forOf(ent.Alert.Class))) {
			e.fire(ent, now)
		}
	}
	for i := range e.cfg.windows {
		if on := e.cfg.windows[i].activeAt(now); on != e.winActive[i] {
			e.winActive[i], e.muteAll = on, true
		}
	}
	for id, sl := range e.silences {
		if on := sl.Active(now); on != e.silActive[id] {
			e.silActive[id], e.muteAll = on, true
		}
	}
	if e.muteAll || len(e.muteList) > 0 {
		e.recomputeMutes(now)
	}
	list := e.visit
	e.visit = e.spare[:0]
	for _, ent := range list {
		ent.visiting = false
	}
	for _, ent := range list {
		if !e.active(ent) {
			continue
		}
		e.advance(ent, now)
		e.impact(ent, now)
		e.schedule(ent, now)
	}
	clear(list)
	e.spare = list[:0]
	// Save what is owed before it is sent, so a crash after sending is deduplicated by
	// key and a crash before it sends again.
	err := e.persist(ctx)
	if err == nil {
		err = e.flush(ctx, now)
	}
	e.gc(now)
	return errors.Join(err, e.persist(ctx))
}

// Filter selects alerts for List. The zero value selects every alert that is not
// resolved.
type Filter struct {
	// States lists the states wanted; empty means all but resolved.
	States     []patrol.AlertState
	Severities []patrol.Severity
	// Target is an exact subject; empty means any.
	Target   string
	Matchers patrol.Matchers
}

// List returns copies of the alerts the filter selects, most urgent first, then
// oldest first.
func (e *Engine) List(f Filter) []patrol.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []patrol.Alert
	for _, ent := range e.alerts {
		a := &ent.Alert
		switch {
		case len(f.States) == 0 && a.State == patrol.AlertResolved,
			len(f.States) > 0 && !slices.Contains(f.States, a.State),
			len(f.Severities) > 0 && !slices.Contains(f.Severities, a.Severity),
			f.Target != "" && a.Target != f.Target,
			!f.Matchers.Matches(labelGetter(a)):
			continue
		}
		out = append(out, e.snapshot(ent))
	}
	slices.SortFunc(out, func(a, b patrol.Alert) int {
		return cmp.Or(cmp.Compare(a.Severity, b.Severity), a.StartsAt.Compare(b.StartsAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Get returns a copy of the alert with its bookkeeping and journal.
func (e *Engine) Get(id string) (Record, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ent, ok := e.alerts[id]
	if !ok {
		return Record{}, false
	}
	r := ent.Record
	r.Alert = e.snapshot(ent)
	r.Owed = slices.Clone(r.Owed)
	for i := range r.Owed {
		r.Owed[i].Receivers = slices.Clone(r.Owed[i].Receivers)
	}
	r.Notes = slices.Clone(r.Notes)
	r.ImpactTold = slices.Clone(r.ImpactTold)
	return r, true
}

// Ack acknowledges a firing alert: escalation and reminders stop, and everyone told so
// far is told who took it. Acknowledging an acknowledged alert changes nothing.
func (e *Engine) Ack(ctx context.Context, id, by, comment string) error {
	if by == "" {
		return fmt.Errorf("ack %s: empty name of who acknowledges", id)
	}
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	ent, ok := e.alerts[id]
	switch {
	case !ok:
		return fmt.Errorf("ack %s: %w", id, ErrNotFound)
	case ent.base() == patrol.AlertResolved:
		return fmt.Errorf("ack %s: %w", id, ErrResolved)
	case ent.base() == patrol.AlertPending:
		return fmt.Errorf("ack %s: %w", id, ErrPending)
	case ent.base() == patrol.AlertAcknowledged:
		return nil
	}
	now := e.now()
	ent.Alert.AckedAt, ent.Alert.AckedBy = now, by
	ent.Notes = append(ent.Notes, patrol.Note{At: now, By: by, Action: "acknowledged", Text: comment})
	e.dropPaging(ent)
	if len(ent.Alert.Told) > 0 {
		e.owe(ent, patrol.NotifyAck, 0, ent.Alert.Told, now)
	}
	e.touch(ent)
	return e.persist(ctx)
}

// Resolve resolves an alert by hand; everyone told is told. If its condition still
// holds, the next result opens a new incident.
func (e *Engine) Resolve(ctx context.Context, id, by, comment string) error {
	if by == "" {
		return fmt.Errorf("resolve %s: empty name of who resolves", id)
	}
	defer e.deliver() // after the unlock
	e.mu.Lock()
	defer e.mu.Unlock()
	ent, ok := e.alerts[id]
	switch {
	case !ok:
		return fmt.Errorf("resolve %s: %w", id, ErrNotFound)
	case ent.base() == patrol.AlertResolved:
		return fmt.Errorf("resolve %s: %w", id, ErrResolved)
	}
	now := e.now()
	ent.Notes = append(ent.Notes, patrol.Note{At: now, By: by, Action: "resolved", Text: comment})
	e.resolve(ent, by, now)
	return e.persist(ctx)
}

// CreateSilence validates and stores a silence and returns it with its ID; a zero
// StartsAt means now. As in Alertmanager, at least one matcher must not match the
// empty string, so that "target=~.*" cannot mute everything by accident; it needs an
// author, an end in the future, and may last at most Config.MaxSilence. A refused
// silence is a *patrol.SilenceError naming the field at fault.
func (e *Engine) CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if s.StartsAt.IsZero() {
		s.StartsAt = now
	}
	refuse := func(field, format string, args ...any) (patrol.Silence, error) {
		return patrol.Silence{}, &patrol.SilenceError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	// Round-trip the matchers so that ones built by hand get their regexps compiled.
	ms := make(patrol.Matchers, len(s.Matchers))
	for i, m := range s.Matchers {
		mm, err := patrol.NewMatcher(m.Name, m.Op, m.Value)
		if err != nil {
			return refuse(fmt.Sprintf("matchers[%d]", i), "%v", err)
		}
		ms[i] = mm
	}
	switch {
	case len(ms) == 0:
		return refuse("matchers", "none; name what to silence, e.g. target=tcp://db:5432")
	case ms.MatchEverything():
		return refuse("matchers", "%s all match the empty string, so the silence would mute nearly every alert; "+
			"add one that does not, e.g. target=tcp://db:5432", ms)
	case s.Author == "":
		return refuse("author", "empty")
	case !s.EndsAt.After(s.StartsAt):
		return refuse("ends_at", "end %s is not after start %s", s.EndsAt.Format(time.RFC3339), s.StartsAt.Format(time.RFC3339))
	case !s.EndsAt.After(now):
		return refuse("ends_at", "end %s is in the past", s.EndsAt.Format(time.RFC3339))
	case s.EndsAt.Sub(s.StartsAt) > e.cfg.maxSilence:
		return refuse("ends_at", "lasts %s, longer than the maximum of %s (alerting.max_silence)",
			s.EndsAt.Sub(s.StartsAt), e.cfg.maxSilence)
	}
	s.Matchers = ms
	s.CreatedAt = now
	s.ID = "s-" + strconv.FormatInt(now.UnixNano(), 36)
	for n := 2; e.silences[s.ID] != nil; n++ {
		s.ID = "s-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.Itoa(n)
	}
	s.ExpiredBy = ""
	e.silences[s.ID] = &s
	e.silDirty[s.ID] = true
	e.muteAll = true
	return s, e.persist(ctx)
}

// ExpireSilence ends a silence now. The alerts it muted are unmuted on the next Tick.
func (e *Engine) ExpireSilence(ctx context.Context, id, by string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	sl, ok := e.silences[id]
	if !ok {
		return fmt.Errorf("expire silence %s: %w", id, ErrNotFound)
	}
	now := e.now()
	if !sl.EndsAt.After(now) {
		return nil
	}
	sl.EndsAt = now
	if sl.StartsAt.After(now) {
		sl.StartsAt = now
	}
	sl.ExpiredBy = by
	e.silDirty[id] = true
	e.muteAll = true
	return e.persist(ctx)
}

// Silences returns copies of the silences, active and pending ones first, then by end.
func (e *Engine) Silences() []patrol.Silence {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	out := make([]patrol.Silence, 0, len(e.silences))
	for _, sl := range e.silences {
		c := *sl
		c.Matchers = slices.Clone(sl.Matchers)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b patrol.Silence) int {
		ea, eb := !a.EndsAt.After(now), !b.EndsAt.After(now)
		if ea != eb {
			if ea {
				return 1
			}
			return -1
		}
		return cmp.Or(a.EndsAt.Compare(b.EndsAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Windows returns the configured maintenance windows with whether each is open now
// and its current or next occurrence.
func (e *Engine) Windows() []WindowStatus {
	now := e.now()
	out := make([]WindowStatus, len(e.cfg.windows))
	for i := range e.cfg.windows {
		out[i] = e.cfg.windows[i].status(now)
	}
	return out
}

// AlertKey is one cell of Stats.Alerts.
type AlertKey struct {
	State    patrol.AlertState
	Severity patrol.Severity
}

// Stats are counters for /metrics.
type Stats struct {
	// Alerts counts alerts by state and severity, resolved ones still retained
	// included.
	Alerts map[AlertKey]int
	// Silences counts active silences; Windows counts open maintenance windows.
	Silences, Windows int
	// Notifications counts notifications the sink accepted.
	Notifications uint64
	// SinkErrors and StoreErrors count failed calls.
	SinkErrors, StoreErrors uint64
}

// Stats returns the current counts.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	st := Stats{Alerts: map[AlertKey]int{}, Notifications: e.sent, SinkErrors: e.sinkErrors, StoreErrors: e.storeErrors}
	for _, ent := range e.alerts {
		st.Alerts[AlertKey{ent.Alert.State, ent.Alert.Severity}]++
	}
	for _, sl := range e.silences {
		if sl.Active(now) {
			st.Silences++
		}
	}
	for i := range e.cfg.windows {
		if e.cfg.windows[i].activeAt(now) {
			st.Windows++
		}
	}
	return st
}

// slowPersist is how long a failed save must have taken for the next to wait.
const slowPersist = 250 * time.Millisecond

// errPersistLater is persist's answer while it waits after a failed save.
var errPersistLater = errors.New("save alerts: storage failed a moment ago; retrying shortly")

// persist saves and deletes what changed. Failures stay marked, to be retried.
func (e *Engine) persist(ctx context.Context) (err error) {
	if len(e.dirty)+len(e.silDirty) == 0 {
		return nil
	}
	if time.Now().Before(e.persistRetry) {
		return errPersistLater
	}
	began := time.Now()
	defer func() {
		if err == nil || time.Since(began) < slowPersist {
			e.persistBackoff = 0
			return
		}
		e.persistBackoff = min(max(2*e.persistBackoff, 500*time.Millisecond), 30*time.Second)
		e.persistRetry = time.Now().Add(e.persistBackoff)
	}()
	var errs []error
	if n := len(e.dirty); n > 0 {
		defer func() {
			// A map does not shrink; a big one left empty would make every later
			// call pay to iterate it.
			if len(e.dirty) == 0 && n > 64 {
				e.dirty = map[string]bool{}
			}
		}()
	}
	if bs, ok := e.store.(AlertBatchStore); ok {
		errs = append(errs, e.persistBatches(ctx, bs))
	} else {
		for _, id := range slices.Sorted(maps.Keys(e.dirty)) {
			var err error
			if ent, ok := e.alerts[id]; ok && e.dirty[id] {
				r := ent.Record
				r.Alert = e.snapshot(ent)
				err = e.store.SaveAlert(ctx, r)
			} else {
				err = e.store.DeleteAlert(ctx, id)
			}
			if err != nil {
				e.storeErrors++
				errs = append(errs, fmt.Errorf("save alert %s: %w", id, err))
				continue
			}
			delete(e.dirty, id)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(e.silDirty)) {
		var err error
		if sl, ok := e.silences[id]; ok && e.silDirty[id] {
			err = e.store.SaveSilence(ctx, *sl)
		} else {
			err = e.store.DeleteSilence(ctx, id)
		}
		if err != nil {
			e.storeErrors++
			errs = append(errs, fmt.Errorf("save silence %s: %w", id, err))
			continue
		}
		delete(e.silDirty, id)
	}
	return errors.Join(errs...)
}

// persistBatch is how many alert records go into one transaction of an
// AlertBatchStore: enough that an outage of many targets costs few flushes, few enough
// that one transaction holds the engine's lock only briefly.
const persistBatch = 1000

// persistBatches saves the dirty alerts through bs, persistBatch records at a time.
// A batch that fails stays dirty, to be retried.
func (e *Engine) persistBatches(ctx context.Context, bs AlertBatchStore) error {
	ids := slices.Sorted(maps.Keys(e.dirty))
	var errs []error
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), persistBatch)]
		ids = ids[len(chunk):]
		var save []Record
		var del []string
		for _, id := range chunk {
			if ent, ok := e.alerts[id]; ok && e.dirty[id] {
				r := ent.Record
				r.Alert = e.snapshot(ent)
				save = append(save, r)
			} else {
				del = append(del, id)
			}
		}
		if err := bs.SaveAlerts(ctx, save, del); err != nil {
			e.storeErrors++
			errs = append(errs, fmt.Errorf("save %d alerts from %s: %w", len(chunk), chunk[0], err))
			continue
		}
		for _, id := range chunk {
			delete(e.dirty, id)
		}
	}
	return errors.Join(errs...)
}

// gc forgets resolved alerts, expired silences and silent targets once the retention
// has passed, at most once a minute.
func (e *Engine) gc(now time.Time) {
	if now.Sub(e.lastGC) < time.Minute {
		return
	}
	e.lastGC = now
	cut := now.Add(-e.cfg.retention)
	for _, ent := range e.alerts {
		if ent.base() == patrol.AlertResolved && len(ent.Owed) == 0 && ent.Alert.ResolvedAt.Before(cut) {
			e.forget(ent)
		}
	}
	for id, sl := range e.silences {
		if sl.EndsAt.Before(cut) {
			delete(e.silences, id)
			delete(e.silActive, id)
			e.silDirty[id] = false
		}
	}
	for id, ts := range e.targets {
		if ts.lastSeen.Before(cut) {
			delete(e.targets, id)
		}
	}
	for id, g := range e.groups {
		if len(g.items) == 0 && (!g.flushed || !now.Before(g.lastFlush.Add(e.cfg.groupInterval))) {
			delete(e.groups, id)
		}
	}
}

// forget drops an alert from memory and the store. One still shown as open is told
// to the change hook as resolved.
func (e *Engine) forget(ent *entry) {
	if ent.Alert.State != patrol.AlertResolved {
		ent.Alert.State = patrol.AlertResolved
		e.changed(ent)
	}
	delete(e.alerts, ent.Alert.ID)
	if e.byFP[ent.Alert.Fingerprint] == ent {
		delete(e.byFP, ent.Alert.Fingerprint)
	}
	e.dirty[ent.Alert.ID] = false
}

// changed queues an alert for the change hook.
func (e *Engine) changed(ent *entry) {
	if e.onChange == nil || e.queued[ent] {
		return
	}
	e.queued[ent] = true
	e.changes = append(e.changes, ent)
}

// deliver calls the change hook with the alerts changed, unless another goroutine is
// doing so: that one then also delivers what is queued now. It must be called without
// e.mu held.
func (e *Engine) deliver() {
	if e.onChange == nil {
		return
	}
	for {
		e.mu.Lock()
		if e.delivering || len(e.changes) == 0 {
			e.mu.Unlock()
			return
		}
		batch := make([]patrol.Alert, len(e.changes))
		for i, ent := range e.changes {
			batch[i] = e.snapshot(ent)
		}
		clear(e.queued)
		clear(e.changes)
		e.changes = e.changes[:0]
		e.delivering = true
		e.mu.Unlock()
		e.hand(batch)
	}
}

// hand calls the change hook with each alert of batch, and lets the next delivery
// start even if the hook panics.
func (e *Engine) hand(batch []patrol.Alert) {
	defer func() {
		e.mu.Lock()
		e.delivering = false
		e.mu.Unlock()
	}()
	for _, a := range batch {
		e.onChange(a)
	}
}

// newID returns a new alert ID: the fingerprint's hash and the start time.
func (e *Engine) newID(fp string, start time.Time) string {
	h := fnv.New64a()
	h.Write([]byte(fp))
	base := fmt.Sprintf("%012x-%s", h.Sum64()&0xffffffffffff, strconv.FormatInt(start.UnixNano(), 36))
	id := base
	for n := 2; e.alerts[id] != nil; n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	return id
}
