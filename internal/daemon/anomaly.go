package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/anomaly"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
)

// The signals the feeder learns per target. Each is a series of its own with a
// detector of its own; the alert of a target names every signal anomalous at once.
const (
	sigLatency  = iota // the median duration of the usable results of a window, in ms: a rise is bad
	sigFailures        // the share of failed results in a window: a rise is bad
	sigCapacity        // the mean capacity used (Redis clients, MySQL/PostgreSQL connections): both ways
	nSignals
)

// signals names the series: the key prefix in the store, the name in reasons, the
// direction that matters, and the seasonal bucket. The bucket sets the memory: 12.7 KB a
// series at 5 minutes (the weekly profile), 2.1 KB at an hour, 1.2 KB at a day. Latency
// keeps an hourly shape, the failure ratio none worth its memory; capacity, whose daily
// curve is the signal, keeps 5-minute buckets (docs/anomaly.md, "In the daemon").
var signals = [nSignals]struct {
	key, name string
	dir       anomaly.Direction
	bucket    time.Duration
}{
	{"latency", "latency (ms)", anomaly.Up, time.Hour},
	{"failures", "failure ratio", anomaly.Up, 24 * time.Hour},
	{"capacity", "connections", anomaly.Both, 5 * time.Minute},
}

const (
	// anomalyMetric is the one Anomaly.Metric of every target, so that the signals of a
	// target make one alert (rule "anomaly:baseline").
	anomalyMetric = "baseline"
	// anomalyClear is how long a signal's score must stay under half the threshold
	// before it is no longer anomalous: two calm windows.
	anomalyClear = 10 * time.Minute
	// anomalyLearn is how long a series learns before it may raise an alert: the
	// detector needs history to tell usual from unusual, and a day holds the daily
	// cycle once.
	anomalyLearn = 24 * time.Hour
	// anomalyQuiet is the detector's quiet period (anomaly.Config.Quiet's default),
	// during which it halves its scores: the feeder undoes the halving to tell whether
	// an episode goes on.
	anomalyQuiet = 12 * time.Hour
	// anomalyWindow is the window each signal is summarised over before it is scored:
	// one point per signal and window, at the window's end. Five minutes is the
	// resolution the detector's constants were chosen at (docs/anomaly.md) and its
	// seasonal bucket; at 10-second results a point per result would make the spread
	// of an hour (360 points) a hair-trigger, and cost 30 times the CPU.
	anomalyWindow = 5 * time.Minute
	// maxWindowSamples bounds the latencies kept for a window's median (a result every
	// 300ms); later ones in the window are left out of the median.
	maxWindowSamples = 1000
	// anomalyForget is how long after its last point a series is dropped, in memory and
	// in the store: a target removed from the configuration for a week.
	anomalyForget = 7 * 24 * time.Hour
	// anomalySaveEvery is how often the learned state goes to the store.
	anomalySaveEvery = 5 * time.Minute
)

// sentUnknown is anomTarget.sent of a target whose anomaly alert was open when the
// daemon started: the next window updates or clears it.
const sentUnknown = 1 << 7

// ratioTrailer marks the feeder's own state of a latency series (the slowest-to-median
// ratio of warn: auto, 12 bytes), kept after the detector's state in the same row.
const ratioTrailer = "ppr1"

// errNotLeading is raise's answer while another replica raises the alerts.
var errNotLeading = errors.New("not the alerting leader")

// anomalyFeeder feeds the signals of every probe result to a learned-baseline detector
// per series (internal/anomaly) and raises, updates and clears one P3 alert per target
// through alert.Engine.ObserveAnomaly. Scoring happens under the target's own lock,
// never under the engine's. The zero value is not usable; build it with
// newAnomalyFeeder. Safe for concurrent use; the results of one target must come in
// time order (the scheduler runs one probe of a target at a time).
type anomalyFeeder struct {
	threshold float64
	raise     func(context.Context, alert.Anomaly) error
	logger    *slog.Logger
	// auto tells the targets whose warn is auto (the slow threshold is learned).
	auto func(id string) bool

	mu      sync.RWMutex
	targets map[string]*anomTarget
}

// anomTarget is what the feeder keeps of one target.
type anomTarget struct {
	mu  sync.Mutex
	id  string
	sig [nSignals]*anomSeries
	// The current window: its index (unix nanoseconds / anomalyWindow), the results and
	// failures in it, the latencies (ms) of its usable results, and the capacity
	// readings' sum and count and name.
	win         int64
	winN, winFl int32
	lat         []float64
	capSum      float64
	capN        int32
	capWhat     string
	capLimit    float64
	// fc forecasts when the capacity used reaches its limit (forecast.go); dc compares
	// the latency of this week with last week's (decay.go).
	fc *forecast
	dc *decay
	// sent is the set of signals (a bit each) the engine's alert names; 0 when no
	// alert is raised; sentUnknown for an alert found open at start.
	sent uint8
}

// anomSeries is one signal of one target.
type anomSeries struct {
	det *anomaly.Detector
	// name is the name in reasons (the capacity's What).
	name string
	// last is the time of the latest point, unix nanoseconds; dirty says the state
	// changed since it was last saved.
	last  int64
	dirty bool
	// ratio is the usual ratio of the slowest to the median latency of a window (EW
	// over calm windows; ratioN counts them): a result is slow under `warn: auto` when it
	// is slower than the slowest result of a usual window, Upper × ratio.
	ratio  float64
	ratioN int
	band   anomaly.Result // the latest point's verdict, for its band
	// hot is set while the signal is anomalous: from a point at the threshold until
	// the score has stayed under half of it for anomalyClear.
	hot   bool
	hotAt int64 // the latest point at or over half the threshold, while hot
	quiet int64 // until when the detector halves scores (its last alert + anomalyQuiet)
	since int64 // when the episode began
	peak  float64
	why   anomaly.Result // the latest anomalous point, for the reason
}

func newAnomalyFeeder(threshold float64, raise func(context.Context, alert.Anomaly) error, auto func(string) bool, logger *slog.Logger) *anomalyFeeder {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if auto == nil {
		auto = func(string) bool { return false }
	}
	return &anomalyFeeder{threshold: threshold, raise: raise, auto: auto, logger: logger, targets: map[string]*anomTarget{}}
}

func (f *anomalyFeeder) target(id string) *anomTarget {
	f.mu.RLock()
	t := f.targets[id]
	f.mu.RUnlock()
	if t != nil {
		return t
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if t = f.targets[id]; t == nil {
		t = &anomTarget{id: id}
		f.targets[id] = t
	}
	return t
}

// newSeries returns a fresh series of signal k.
func (f *anomalyFeeder) newSeries(k int, name string) *anomSeries {
	return &anomSeries{name: name, det: anomaly.New(anomaly.Config{Name: name, Direction: signals[k].dir, Threshold: f.threshold, Bucket: signals[k].bucket})}
}

// feed learns the signals of one result of job's target and raises, updates or clears
// the target's anomaly alert. With `warn: auto` it turns an ok result whose latency is
// over the learned band into slow, in place, so that history, metrics and the slow rule
// see it as they see a fixed threshold. A nil feeder does nothing.
func (f *anomalyFeeder) feed(ctx context.Context, job *schedule.Job, r *patrol.Result) {
	if f == nil || r.Target == "" {
		return
	}
	t := f.target(r.Target)
	t.mu.Lock()
	defer t.mu.Unlock()
	ns := r.Start.UnixNano()
	if w := ns / int64(anomalyWindow); w != t.win {
		if t.winN > 0 {
			p95 := t.closeWindow(f)
			end := (t.win + 1) * int64(anomalyWindow)
			t.decide(ctx, f, job, end)
			if p95 > 0 {
				t.decayWindow(ctx, f, job, time.Unix(0, end), p95)
			}
		}
		t.win, t.winN, t.winFl, t.lat, t.capSum, t.capN = w, 0, 0, t.lat[:0], 0, 0
	}
	t.winN++
	if !r.Up() {
		t.winFl++
	} else if len(t.lat) < maxWindowSamples {
		ms := float64(r.Duration) / 1e6
		t.lat = append(t.lat, ms)
		if s := t.sig[sigLatency]; r.Class == patrol.ClassOK && s != nil && s.ratioN >= 12 && f.warm(s, ns) && f.auto(r.Target) {
			if lim := s.band.Upper * s.ratio; lim > 0 && ms > lim {
				r.Class = patrol.ClassSlow
				r.Error = fmt.Sprintf("took %s, over the %s learned for %s (usual median %.4g ms, band %.4g..%.4g)",
					r.Duration.Round(100*time.Microsecond), time.Duration(lim*1e6).Round(100*time.Microsecond),
					when(s.band), s.band.Expected, s.band.Lower, s.band.Upper)
			}
		}
	}
	if c := r.Capacity; c != nil {
		t.capSum += float64(c.Used)
		t.capN++
		t.capWhat = c.What
		t.capLimit = float64(c.Limit)
	}
}

// closeWindow feeds the points of the window that ended: the median latency, the
// failure ratio, the mean capacity used. It returns the window's p95 latency in ms (0
// without usable results).
func (t *anomTarget) closeWindow(f *anomalyFeeder) (p95 float64) {
	end := time.Unix(0, (t.win+1)*int64(anomalyWindow))
	if len(t.lat) > 0 {
		slices.Sort(t.lat)
		med := t.lat[len(t.lat)/2]
		if len(t.lat)%2 == 0 {
			med = (med + t.lat[len(t.lat)/2-1]) / 2
		}
		p95 = t.lat[(len(t.lat)*95+99)/100-1]
		res, ok := t.observe(f, sigLatency, signals[sigLatency].name, end, med)
		if s := t.sig[sigLatency]; ok {
			s.band = res
			// With one result a window the median is the result and the ratio 1.
			if res.Kind == anomaly.None && med > 0 {
				q := t.lat[len(t.lat)-1] / med
				if s.ratioN == 0 {
					s.ratio = q
				}
				s.ratio += 0.05 * (q - s.ratio)
				s.ratioN++
			}
		}
	}
	t.observe(f, sigFailures, signals[sigFailures].name, end, float64(t.winFl)/float64(t.winN))
	if t.capN > 0 {
		name := t.capWhat
		if name == "" {
			name = signals[sigCapacity].name
		}
		t.observe(f, sigCapacity, name, end, t.capSum/float64(t.capN))
		t.forecastPoint(name, end, t.capSum/float64(t.capN), t.capLimit)
	}
	return p95
}

// observe feeds one point of signal k and updates its hot state. It reports false when
// the point was refused (out of order, not finite).
func (t *anomTarget) observe(f *anomalyFeeder, k int, name string, at time.Time, v float64) (anomaly.Result, bool) {
	s := t.sig[k]
	if s == nil || (k == sigCapacity && s.name != name) {
		s = f.newSeries(k, name)
		t.sig[k] = s
	}
	res, err := s.det.Observe(at, v)
	if err != nil {
		return res, false
	}
	// Every signal is a count, a share or a duration: the band ends at zero.
	res.Lower = max(res.Lower, 0)
	ns := at.UnixNano()
	s.last, s.dirty = ns, true
	// During the quiet period after an alert the detector halves the score; doubled
	// again, it says whether the point would have alerted.
	score := res.Score
	if !res.Alert && ns < s.quiet {
		score = min(1, 2*score)
	}
	// The spread surprise has no direction: wider swings count when the point itself
	// is beyond the band, on the side that matters (a latency that dropped, or a
	// series that moves to a level it has not seen at this hour yet, as on the first
	// weekend, swings "wider" with every point inside its band).
	if res.Kind == anomaly.Variance && harmless(signals[k].dir, res) {
		score = 0
	}
	if res.Alert {
		s.quiet = ns + int64(anomalyQuiet)
	}
	switch {
	case score >= f.threshold && f.warm(s, ns):
		if !s.hot {
			s.hot, s.since, s.peak = true, ns, 0
		}
		s.hotAt, s.peak, s.why = ns, max(s.peak, score), res
	case s.hot && score >= f.threshold/2:
		s.hotAt = ns
	}
	return res, true
}

// harmless reports whether r stays within its band on the side that matters for a
// series of direction dir.
func harmless(dir anomaly.Direction, r anomaly.Result) bool {
	up, down := r.Value <= r.Upper, r.Value >= r.Lower
	switch dir {
	case anomaly.Up:
		return up
	case anomaly.Down:
		return down
	}
	return up && down
}

// warm reports whether series s has learned long enough to raise an alert at ns.
func (f *anomalyFeeder) warm(s *anomSeries, ns int64) bool {
	first := s.det.First()
	return !first.IsZero() && ns-first.UnixNano() >= int64(anomalyLearn)
}

// decide cools the signals that have been calm for anomalyClear and tells the engine
// when the set of anomalous signals changed. The caller holds t.mu; the engine is
// called with it held, so that the changes of one target reach it in order.
func (t *anomTarget) decide(ctx context.Context, f *anomalyFeeder, job *schedule.Job, ns int64) {
	var hot uint8
	for k, s := range t.sig {
		if s == nil || !s.hot {
			continue
		}
		if ns-s.hotAt > int64(anomalyClear) {
			s.hot = false
			continue
		}
		hot |= 1 << k
	}
	t.decideForecast(ctx, f, job, ns)
	if hot == t.sent {
		return
	}
	a := alert.Anomaly{Target: t.id, Metric: anomalyMetric, Active: hot != 0, At: time.Unix(0, ns)}
	a.Labels = anomalyLabels(job)
	if hot != 0 {
		a.Score, a.Summary, a.Why = t.explain(hot)
	} else {
		a.Why = "every signal is back within its learned band"
	}
	err := f.raise(ctx, a)
	if errors.Is(err, errNotLeading) {
		return // another replica raises the alerts: try again at the next point
	}
	if err != nil && ctx.Err() == nil {
		f.logger.Warn("anomaly alert", "target", t.id, "err", err)
	}
	t.sent = hot
}

// anomalyLabels are the alert's labels: the target's, and its host, so that a host's
// alert inhibits it as it does the target's other alerts.
func anomalyLabels(job *schedule.Job) map[string]string {
	if job == nil {
		return nil
	}
	l := maps.Clone(job.Labels)
	if job.Host != "" {
		if l == nil {
			l = map[string]string{}
		}
		if _, ok := l["host"]; !ok {
			l["host"] = job.Host
		}
	}
	return l
}

// explain returns the score, summary and description of the signals in hot: what each
// signal does against its learned band and since when.
func (t *anomTarget) explain(hot uint8) (float64, string, string) {
	var names []string
	var b strings.Builder
	score := 0.0
	for k, s := range t.sig {
		if hot&(1<<k) == 0 {
			continue
		}
		names = append(names, s.name)
		score = max(score, s.peak)
		fmt.Fprintf(&b, "%s (score %.4f, anomalous since %s).\n", s.why.Reason(), s.peak,
			time.Unix(0, s.since).UTC().Format("2006-01-02 15:04:05Z"))
	}
	what := strings.Join(names, ", ")
	if len(names) > 1 {
		fmt.Fprintf(&b, "%d signals of %s depart from their learned baselines at once.\n", len(names), t.id)
	}
	b.WriteString("Baselines are learned per target by time of day and of the week (docs/anomaly.md).")
	return score, fmt.Sprintf("%s anomalous against its learned baseline: %s", t.id, what), b.String()
}

// when names the season of a band for a reason: "Monday 09:00", "09:00" or "the last day".
func when(r anomaly.Result) string {
	switch r.Season {
	case anomaly.Weekly:
		return r.Time.Format("Monday 15:04")
	case anomaly.Daily:
		return r.Time.Format("15:04")
	case anomaly.Local:
		return "the last minutes"
	}
	return "the last day"
}

// anomalyStateKey is the store key of a series: "<signal> <target>", with the capacity's
// What after its signal ("capacity:clients redis://…").
func anomalyStateKey(k int, name, target string) string {
	if k == sigCapacity {
		return signals[k].key + ":" + name + " " + target
	}
	return signals[k].key + " " + target
}

// parseAnomalyStateKey is the inverse of anomalyStateKey.
func parseAnomalyStateKey(key string) (k int, name, target string, ok bool) {
	sig, target, ok := strings.Cut(key, " ")
	if !ok || target == "" {
		return 0, "", "", false
	}
	sig, name, _ = strings.Cut(sig, ":")
	for k := range signals {
		if signals[k].key == sig {
			if k != sigCapacity {
				name = signals[k].name
			} else if name == "" {
				return 0, "", "", false
			}
			return k, name, target, true
		}
	}
	return 0, "", "", false
}

// restore loads the learned states from st. A state it cannot use is logged and
// skipped: that series learns again from scratch.
func (f *anomalyFeeder) restore(ctx context.Context, st store.AnomalyStateStore) (int, error) {
	rows, err := st.LoadAnomalyStates(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, row := range rows {
		if strings.HasPrefix(row.Key, forecastPrefix) {
			if f.restoreTrend(row) {
				n++
			}
			continue
		}
		if strings.HasPrefix(row.Key, decayPrefix) {
			if f.restoreDecay(row) {
				n++
			}
			continue
		}
		k, name, target, ok := parseAnomalyStateKey(row.Key)
		if !ok {
			f.logger.Warn("anomaly state with an unknown key skipped", "key", row.Key)
			continue
		}
		s := f.newSeries(k, name)
		state := row.State
		if n := len(state) - len(ratioTrailer) - 12; n > 0 && string(state[n:n+len(ratioTrailer)]) == ratioTrailer {
			r := math.Float64frombits(binary.LittleEndian.Uint64(state[n+len(ratioTrailer):]))
			if c := binary.LittleEndian.Uint32(state[n+len(ratioTrailer)+8:]); r >= 1 && r < 1e6 {
				s.ratio, s.ratioN = r, int(min(c, 1<<20))
			}
			state = state[:n]
		}
		if err := s.det.UnmarshalBinary(state); err != nil {
			f.logger.Warn("anomaly state skipped: the series learns again", "key", row.Key, "err", err)
			continue
		}
		s.last = row.Last.UnixNano()
		t := f.target(target)
		t.mu.Lock()
		t.sig[k] = s
		t.mu.Unlock()
		n++
	}
	return n, nil
}

// save writes the states that changed since the last save and deletes the series
// that had no point for anomalyForget before now.
func (f *anomalyFeeder) save(ctx context.Context, st store.AnomalyStateStore, now time.Time) error {
	f.mu.RLock()
	ts := make([]*anomTarget, 0, len(f.targets))
	for _, t := range f.targets {
		ts = append(ts, t)
	}
	f.mu.RUnlock()
	var (
		batch []store.AnomalyState
		gone  []string
		errs  []error
	)
	flush := func() {
		if len(batch) > 0 {
			errs = append(errs, st.PutAnomalyStates(ctx, batch))
			batch = batch[:0]
		}
	}
	for _, t := range ts {
		t.mu.Lock()
		for k, s := range t.sig {
			if s == nil {
				continue
			}
			key := anomalyStateKey(k, s.name, t.id)
			if now.UnixNano()-s.last > int64(anomalyForget) {
				gone = append(gone, key)
				t.sig[k] = nil
				continue
			}
			if !s.dirty {
				continue
			}
			b, err := s.det.MarshalBinary()
			if err != nil {
				errs = append(errs, fmt.Errorf("anomaly state %s: %w", key, err))
				continue
			}
			if s.ratioN > 0 {
				b = append(b, ratioTrailer...)
				b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.ratio))
				b = binary.LittleEndian.AppendUint32(b, uint32(min(s.ratioN, 1<<20)))
			}
			s.dirty = false
			batch = append(batch, store.AnomalyState{Key: key, State: b, Last: time.Unix(0, s.last)})
		}
		if fc := t.fc; fc != nil {
			key := forecastPrefix + fc.what + " " + t.id
			switch {
			case now.UnixNano()-fc.at > int64(anomalyForget):
				gone = append(gone, key)
				t.fc = nil
			case fc.dirty:
				if b, err := fc.trend.MarshalBinary(); err != nil {
					errs = append(errs, fmt.Errorf("anomaly state %s: %w", key, err))
				} else {
					fc.dirty = false
					batch = append(batch, store.AnomalyState{Key: key, State: b, Last: time.Unix(0, fc.at)})
				}
			}
		}
		if dc := t.dc; dc != nil {
			key := decayPrefix + t.id
			last := time.Unix(int64(dc.day)*86400, 0)
			if now.Sub(last) > anomalyForget+24*time.Hour {
				gone = append(gone, key)
				t.dc = nil
			} else if !dc.dirty {
				// saved already
			} else if b, err := dc.MarshalBinary(); err != nil {
				errs = append(errs, fmt.Errorf("anomaly state %s: %w", key, err))
			} else {
				dc.dirty = false
				batch = append(batch, store.AnomalyState{Key: key, State: b, Last: last})
			}
		}
		t.mu.Unlock()
		if len(batch) >= 256 {
			flush()
		}
	}
	flush()
	if len(gone) > 0 {
		errs = append(errs, st.DeleteAnomalyStates(ctx, gone))
	}
	return errors.Join(errs...)
}

// Len returns the number of series the feeder learns.
func (f *anomalyFeeder) Len() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := 0
	for _, t := range f.targets {
		t.mu.Lock()
		for _, s := range t.sig {
			if s != nil {
				n++
			}
		}
		t.mu.Unlock()
	}
	return n
}

// autoWarn returns, for a configuration, whether a target's warn is auto; the set is
// worked out once per configuration.
type autoWarn struct {
	cur atomic.Pointer[autoWarnSet]
	cfg func() *config.Config
}

type autoWarnSet struct {
	cfg *config.Config
	ids map[string]bool
}

func (a *autoWarn) is(id string) bool {
	cfg := a.cfg()
	s := a.cur.Load()
	if s == nil || s.cfg != cfg {
		s = &autoWarnSet{cfg: cfg, ids: map[string]bool{}}
		for _, c := range cfg.Checks {
			if c.AutoWarn {
				s.ids[c.Target.ID] = true
			}
		}
		a.cur.Store(s)
	}
	return s.ids[id]
}

// startAnomalies builds the feeder of the anomaly section and restores its state from
// the store; nil when the detector is off.
func (d *Daemon) startAnomalies(ctx context.Context, cfg *config.Config) *anomalyFeeder {
	if !cfg.Anomaly.On() {
		return nil
	}
	aw := &autoWarn{cfg: d.cfg}
	f := newAnomalyFeeder(cfg.Anomaly.ThresholdOrDefault(), d.raiseAnomaly, aw.is, d.logger.With("component", "anomaly"))
	n, err := f.restore(ctx, d.db)
	if err != nil {
		d.logger.Warn("anomaly baselines not restored: every series learns again", "err", err)
	} else if n > 0 {
		d.logger.Info("anomaly baselines restored", "series", n)
	}
	// The anomaly alerts still open from before the restart are the feeder's to update
	// or clear at the next window of their target.
	for _, a := range d.engine().List(alert.Filter{}) {
		switch a.Rule {
		case "anomaly:" + anomalyMetric:
			t := f.target(a.Target)
			t.mu.Lock()
			t.sent = sentUnknown
			t.mu.Unlock()
		case "anomaly:" + forecastMetric:
			f.forecastOpen(a.Target, a.Severity.String())
		case "anomaly:" + decayMetric:
			f.decayOpen(a.Target)
		}
	}
	return f
}

// raiseAnomaly hands an anomaly to the alert engine, if this replica leads.
func (d *Daemon) raiseAnomaly(ctx context.Context, a alert.Anomaly) error {
	if !d.leading.Load() {
		return errNotLeading
	}
	return d.withEngine(func(e *alert.Engine) error { return e.ObserveAnomaly(ctx, a) })
}

// saveAnomalies writes the learned baselines to the store (Run every anomalySaveEvery,
// and Close). Only the alerting leader writes: replicas that share a store would
// otherwise overwrite each other's rows.
func (d *Daemon) saveAnomalies(ctx context.Context, now time.Time) error {
	if d.anomalies == nil || !d.leading.Load() {
		return nil
	}
	if err := d.anomalies.save(ctx, d.db, now); err != nil {
		return fmt.Errorf("save anomaly baselines: %w", err)
	}
	return nil
}
