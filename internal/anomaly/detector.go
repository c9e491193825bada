// Package anomaly is a streaming anomaly detector for one time series: latency of a
// target, connections of a listener, bytes of a host. It learns from the stream alone —
// every decision is made as the point arrives, with O(1) work and a fixed amount of memory
// per series — and gives each point a score in [0,1], an alert decision and a reason.
//
// The model, per series:
//
//   - four predictors of the next value: the level (a robust exponentially weighted mean,
//     two days' memory), a daily and a weekly profile (a robust mean per bucket of the day
//     and of the week, usable after two days and after a week), and a fast local level
//     (half an hour) for series that wander; each keeps the mean absolute error of its
//     predictions, and the most specific profile that does not predict clearly worse is
//     used;
//   - the scale: the chosen predictor's mean absolute error, with residuals clipped so
//     that a burst cannot inflate it, and points far out kept out of the level and the
//     profiles;
//   - three surprises: the point's robust z-score (spike, drop), an hour's drift of the
//     z-scores (shift, ramp) and an hour's spread against the usual spread (variance);
//   - decayed histograms of past surprises (15 days' memory) that turn the largest
//     weighted surprise, and the spike alone, into a score: one minus the share of history
//     that was at least as surprising, damped below 3 to 6 scales;
//   - a rule for flat-lines: a run of equal values more than twice as long as any before.
//
// A shift that persists for Config.Adopt is adopted as the new level (the profiles move
// with it), so it pages once and then becomes normal. After an alert, the score is halved
// for Config.Quiet so that one episode pages once.
package anomaly

import (
	"fmt"
	"math"
	"time"
)

// Direction says which deviations matter for a series.
type Direction uint8

const (
	// Both: a rise and a fall are both anomalous (the zero value).
	Both Direction = iota
	// Up: only a rise is anomalous (latency, failure ratio, queue length).
	Up
	// Down: only a fall is anomalous (connections, throughput, request rate).
	Down
)

// String returns "both", "up" or "down".
func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "both"
}

// ParseDirection parses "both", "up" or "down".
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "both", "":
		return Both, nil
	case "up":
		return Up, nil
	case "down":
		return Down, nil
	}
	return Both, fmt.Errorf("direction %q: want both, up or down", s)
}

// DefaultThreshold is the score at or above which a point pages.
const DefaultThreshold = 0.995

// Config sets a Detector's parameters. The zero value means the defaults, which are the
// parameters the NAB figures in docs/anomaly.md were measured with.
type Config struct {
	// Name names the series in reasons ("connections"); default "value".
	Name string
	// Direction says which deviations are anomalous; default Both.
	Direction Direction
	// Threshold is the score at or above which a point alerts; default DefaultThreshold.
	Threshold float64
	// Bucket is the width of a seasonal bucket; default 5 minutes (one that does not
	// divide a day is replaced by the default). Each bucket of the day and of the week takes
	// 5 bytes: about 12 KiB at 5 minutes.
	Bucket time.Duration
	// Level is the memory of the level; default 2 days.
	Level time.Duration
	// Adopt is how long a shift must persist before it becomes the new level; default 6h.
	Adopt time.Duration
	// Quiet is how long the score is halved after an alert; default 12h.
	Quiet time.Duration
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = "value"
	}
	if c.Threshold <= 0 || c.Threshold > 1 {
		c.Threshold = DefaultThreshold
	}
	if c.Bucket <= 0 || (24*time.Hour)%c.Bucket != 0 {
		c.Bucket = 5 * time.Minute
	}
	if c.Level <= 0 {
		c.Level = 48 * time.Hour
	}
	if c.Adopt <= 0 {
		c.Adopt = 6 * time.Hour
	}
	if c.Quiet <= 0 {
		c.Quiet = 12 * time.Hour
	}
	return c
}

// Kind is what made a point anomalous.
type Kind uint8

// The kinds of anomaly.
const (
	None     Kind = iota
	Spike         // one point far from the expected value
	Shift         // values keep drifting away from the expected value (level shift, ramp)
	Variance      // the spread of the values grew
	Flat          // the value stopped changing for longer than ever before
)

func (k Kind) String() string {
	return [...]string{"none", "spike", "shift", "variance", "flat-line"}[k]
}

// Season is which profile produced the expected value.
type Season uint8

// The seasonal profiles.
const (
	NoSeason Season = iota // level alone (history is short, or the series is not seasonal)
	Daily
	Weekly
	Local // the fast local level: the series wanders
)

// Result is the detector's verdict on one point.
type Result struct {
	Time     time.Time
	Value    float64
	Score    float64 // in [0,1]; higher is more anomalous
	Alert    bool    // Score >= threshold: the daemon pages
	Kind     Kind    // the strongest surprise (None below half the threshold)
	Expected float64 // the predicted value
	Lower    float64 // the band of usual values
	Upper    float64
	Season   Season
	Name     string
}

// Reason says in words why the point scored as it did, e.g. "connections 3.4× the usual
// for Monday 09:00: usual 120, now 410".
func (r Result) Reason() string {
	if r.Kind == None {
		return fmt.Sprintf("%s %s within the usual %s..%s", r.Name, num(r.Value), num(r.Lower), num(r.Upper))
	}
	when := "for the last day"
	switch r.Season {
	case Daily:
		when = "for " + r.Time.Format("15:04")
	case Weekly:
		when = "for " + r.Time.Format("Monday 15:04")
	case Local:
		when = "for the last minutes"
	}
	switch r.Kind {
	case Flat:
		return fmt.Sprintf("%s flat at %s for longer than ever before", r.Name, num(r.Value))
	case Variance:
		return fmt.Sprintf("%s swings wider than usual %s: usual band %s..%s, now %s", r.Name, when, num(r.Lower), num(r.Upper), num(r.Value))
	}
	rel := "above"
	if r.Value < r.Expected {
		rel = "below"
	}
	what := "far " + rel
	if r.Kind == Shift {
		what = "keeps " + rel
	}
	ratio := ""
	if r.Expected != 0 && r.Value/r.Expected > 0 {
		ratio = fmt.Sprintf(" (%.2g×)", r.Value/r.Expected)
	}
	return fmt.Sprintf("%s %s the usual %s%s: usual %s (band %s..%s), now %s", r.Name, what, when, ratio,
		num(r.Expected), num(r.Lower), num(r.Upper), num(r.Value))
}

// num formats a value with four significant digits, without an exponent for the sizes
// that counters and byte rates reach.
func num(v float64) string {
	if a := math.Abs(v); a >= 1e4 && a < 1e15 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.4g", v)
}

// The model's constants, chosen on the NAB corpus as one set for every series (see
// docs/anomaly.md for what each run gave).
const (
	gateLo, gateHi = 3.0, 6.0 // the winning surprise, unweighted: below gateLo it scores 0, damped up to gateHi
	localWin       = 0.5      // the local level predicts when its error is below this share of the others'
	spikeW         = 2.0      // weights of the spike, drift and spread surprises
	driftW         = 0.5
	spreadW        = 4.0
	extrapPow      = 2.0  // how fast the tail falls beyond every past surprise
	outlierZ       = 4.0  // points beyond this many scales stay out of the level and profiles
	histDays       = 15.0 // memory of the surprise histogram
	spreadHours    = 1.0  // memory of the short-term spread
	driftHours     = 0.5  // memory of the short-term drift
	tailPrior      = 0.01 // weight of the prior point in the tail share
	spikeTailW     = 15.0 // a spike judged alone must be fifteen times rarer than the combined surprise
)

const (
	bins   = 128 // surprise histogram bins, 8 per doubling of 1+s
	minPts = 12  // points before any score
	bandZ  = 4.0 // the band drawn around the expected value, in scales
	clipZ  = 3.0 // residuals enter the level clipped to this many scales
	nPred  = 4   // predictors: level, daily, weekly, local
	day    = 24 * time.Hour
)

// Detector scores one series. Create it with New. The zero value is not usable. A Detector
// is not safe for concurrent use; the daemon owns one per series key and feeds it in order.
type Detector struct {
	cfg   Config
	first int64 // unix nanoseconds of the first and last point
	last  int64
	n     uint32
	lastV float64
	ival  float64 // typical interval between points, seconds

	level  float64
	fast   float64
	err    [nPred]float64 // EW mean absolute error of each predictor
	drift  float64        // EW of clipped z-scores
	spread float64        // short EW mean absolute residual
	absV   float64        // EW mean |value|, floors the scale
	run    uint32         // current flat run, points
	maxRun uint32         // longest flat run seen
	adopt  int32          // consecutive far points of the same sign (signed count)
	quiet  int64          // unix nanoseconds until which the score is halved

	surp   tailHist // past surprises of every kind, weighted
	spikes tailHist // past spike surprises alone
	histN  float64  // decayed number of points counted
	inc    float64  // weight of the next count (grows instead of decaying all counts)

	dVal []float32 // daily profile: robust mean value per bucket of the day
	dN   []uint8
	wVal []float32 // weekly profile: per bucket of the week
	wN   []uint8
}

// New returns a Detector for one series.
func New(cfg Config) *Detector {
	cfg = cfg.withDefaults()
	nd := int(day / cfg.Bucket)
	return &Detector{
		cfg: cfg, inc: 1,
		dVal: make([]float32, nd), dN: make([]uint8, nd),
		wVal: make([]float32, 7*nd), wN: make([]uint8, 7*nd),
	}
}

// Config returns the detector's parameters with the defaults filled in.
func (d *Detector) Config() Config { return d.cfg }

// Points returns how many points the detector has seen.
func (d *Detector) Points() int { return int(d.n) }

// First returns the time of the first point the detector saw (restored with its state),
// the zero time before any: how long it has been learning.
func (d *Detector) First() time.Time {
	if d.n == 0 {
		return time.Time{}
	}
	return time.Unix(0, d.first)
}

func alpha(dt, tau float64) float64 { return 1 - math.Exp(-dt/tau) }

func clip(v, lim float64) float64 { return math.Max(-lim, math.Min(lim, v)) }

// ErrOutOfOrder is returned by Observe for a point that is not after the previous one.
var ErrOutOfOrder = fmt.Errorf("point is not after the previous one")

// Observe feeds the next point of the series and returns the verdict on it. Points must
// come in time order; a point at or before the previous one returns ErrOutOfOrder and
// leaves the state unchanged, as does a NaN or infinite value. A gap (more than four
// typical intervals) is no data: the profiles are keyed by time of day and week and are
// unaffected, the short-term statistics move as if four intervals had passed, and the
// flat-line run restarts.
func (d *Detector) Observe(t time.Time, v float64) (Result, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return Result{}, fmt.Errorf("value %v is not a finite number", v)
	}
	ns := t.UnixNano()
	if d.n > 0 && ns <= d.last {
		return Result{}, ErrOutOfOrder
	}
	r := Result{Time: t, Value: v, Name: d.cfg.Name}
	if d.n == 0 {
		d.first, d.last, d.lastV = ns, ns, v
		d.level, d.fast, d.absV = v, v, math.Abs(v)
		d.n = 1
		r.Expected, r.Lower, r.Upper = v, v, v
		return r, nil
	}
	dt := float64(ns-d.last) / 1e9
	if d.n == 1 {
		d.ival = dt
	}
	gap := dt > 4*d.ival
	dte := math.Min(dt, 4*d.ival)
	d.ival += 0.05 * (dte - d.ival)
	warm := 1 / float64(d.n+1)

	// Predictors.
	bd := int(((ns % int64(day)) + int64(day)) % int64(day) / int64(d.cfg.Bucket))
	nd := len(d.dVal)
	wd := (int(t.Weekday())*nd + bd) % len(d.wVal)
	hist := time.Duration(ns - d.first)
	var pred [nPred]float64
	var ok [nPred]bool
	pred[0], ok[0] = d.level, true
	if hist >= 2*day && d.dN[bd] > 0 {
		pred[1], ok[1] = float64(d.dVal[bd]), true
	}
	if hist >= 8*day && d.wN[wd] > 0 {
		pred[2], ok[2] = float64(d.wVal[wd]), true
	}
	if d.n > minPts {
		pred[3], ok[3] = d.fast, true
	}
	// The more specific profile wins unless it predicts clearly worse; the local level
	// only when it is clearly better (a wandering series).
	best := 0
	if ok[1] && d.err[1] < d.err[0] {
		best = 1
	}
	if ok[2] && d.err[2] < 1.1*d.err[best] {
		best = 2
	}
	if ok[3] && d.err[3] < localWin*d.err[best] {
		best = 3
	}
	r.Season = Season(best)
	scale := 1.25*d.err[best] + 1e-3*d.absV + 1e-9
	res := v - pred[best]
	z := res / scale
	r.Expected = pred[best]
	r.Lower, r.Upper = pred[best]-bandZ*scale, pred[best]+bandZ*scale

	// Surprises, signed by direction.
	aDrift := alpha(dte, math.Max(driftHours*3600, 4*d.ival))
	aSpread := alpha(dte, math.Max(spreadHours*3600, 12*d.ival))
	if gap {
		d.drift, d.run = 0, 0
	}
	d.drift += aDrift * (clip(z, 6) - d.drift)
	d.spread += aSpread * (math.Min(math.Abs(res), 6*scale) - d.spread)
	zDrift := d.drift / math.Sqrt(aDrift/(2-aDrift))
	nEff := 2/aSpread - 1
	zVar := (d.spread/(scale/1.25) - 1) / (0.755 / math.Sqrt(nEff))
	if v == d.lastV || math.Abs(v-d.lastV) <= 1e-12*math.Abs(v) {
		d.run++
	} else {
		if d.run > d.maxRun {
			d.maxRun = d.run
		}
		d.run = 0
	}
	// A flat-line is judged by a rule, not by the histogram: a run of equal values more
	// than twice as long as any before, in a series that has varied, scores from 0.99 up
	// and crosses 0.995 three points later. Once it alerts, its length becomes the longest
	// seen, so a flat-line that lasts pages again only when it has doubled.
	flat := 0.0
	if d.run >= 6 && d.run > 2*d.maxRun+2 && d.n-d.run > 3*minPts {
		flat = 1 - 0.01*math.Exp2(-float64(d.run-2*d.maxRun-2)/3)
	}
	// The surprise: the largest of the weighted kinds.
	s, kind, raw := d.dir(z)*spikeW, Spike, d.dir(z)
	if sd := d.dir(zDrift) * driftW; sd > s {
		s, kind, raw = sd, Shift, d.dir(zDrift)
	}
	if sv := zVar * spreadW; sv > s {
		s, kind, raw = sv, Variance, zVar
	}

	// Score: the share of past surprises below this one, gated by its size.
	if d.n > minPts {
		p := d.surp.tail(s, d.inc, d.histN)
		g := math.Min(1, math.Max(0, (raw-gateLo)/(gateHi-gateLo)))
		r.Score = (1 - p) * g
		// A spike is also judged against past spikes alone, so that a series whose
		// spread often moves still pages on a point far out.
		if zs := d.dir(z); zs > gateLo {
			ps := spikeTailW * d.spikes.tail(zs, d.inc, d.histN)
			gs := math.Min(1, (zs-gateLo)/(gateHi-gateLo))
			if sc := (1 - ps) * gs; sc > r.Score {
				r.Score, kind = sc, Spike
			}
		}
		if flat > r.Score {
			r.Score, kind = flat, Flat
		}
		if ns < d.quiet {
			r.Score /= 2
		}
		r.Alert = r.Score >= d.cfg.Threshold
		if r.Alert {
			d.quiet = ns + int64(d.cfg.Quiet)
			if kind == Flat {
				d.maxRun = d.run
			}
		}
		if r.Score >= d.cfg.Threshold/2 {
			r.Kind = kind
		}
	}
	d.count(s, d.dir(z), dte)

	// Learn: errors of every predictor, then the level and profiles from the clipped
	// residual, unless the point is far out.
	aErr := math.Max(alpha(dte, float64(d.cfg.Level/time.Second)), warm)
	for k := range nPred {
		e := v - pred[k]
		if !ok[k] {
			e = v - pred[0]
		}
		lim := 5 * (1.25*d.err[k] + 1e-3*d.absV + 1e-9)
		if d.n < minPts {
			lim = math.Inf(1)
		}
		d.err[k] += aErr * (math.Min(math.Abs(e), lim) - d.err[k])
	}
	far := math.Abs(z) > outlierZ && d.n > minPts
	switch {
	case !far || (z > 0) != (d.adopt > 0):
		if far {
			d.adopt = int32(math.Copysign(1, z))
		} else {
			d.adopt = 0
		}
	default:
		d.adopt += int32(math.Copysign(1, z))
	}
	aLvl := math.Max(alpha(dte, float64(d.cfg.Level/time.Second)), warm)
	aFast := alpha(dte, math.Max(1800, 3*d.ival))
	d.fast += aFast * (v - d.fast)
	if adoptN := int32(float64(d.cfg.Adopt/time.Second) / math.Max(d.ival, 1)); d.adopt >= max(adoptN, minPts) || -d.adopt >= max(adoptN, minPts) {
		// The shift is the new normal: move the level and both profiles by it.
		delta := d.fast - pred[best]
		d.level += delta
		for k := range d.dVal {
			d.dVal[k] += float32(delta)
		}
		for k := range d.wVal {
			d.wVal[k] += float32(delta)
		}
		d.adopt = 0
		for k := range d.err {
			d.err[k] = math.Max(d.err[k], d.spread)
		}
	} else if !far {
		lim := clipZ * scale
		if d.n < minPts {
			lim = math.Inf(1)
		}
		d.level += aLvl * clip(v-d.level, lim)
	}
	if !far {
		aB := 0.15 * math.Min(1, d.ival/float64(d.cfg.Bucket/time.Second))
		upd := func(dv []float32, dn []uint8, i int) {
			a := math.Max(1/(float64(dn[i])+1), aB)
			dv[i] += float32(a * (v - float64(dv[i])))
			if dn[i] < 255 {
				dn[i]++
			}
		}
		upd(d.dVal, d.dN, bd)
		upd(d.wVal, d.wN, wd)
	}
	d.absV += aErr * (math.Abs(v) - d.absV)
	d.last, d.lastV = ns, v
	d.n++
	return r, nil
}

func (d *Detector) dir(z float64) float64 {
	switch d.cfg.Direction {
	case Up:
		return math.Max(z, 0)
	case Down:
		return math.Max(-z, 0)
	}
	return math.Abs(z)
}

func bin(s float64) (int, float64) {
	x := 8 * math.Log2(1+math.Max(s, 0))
	i := int(x)
	if i >= bins-1 {
		return bins - 1, 0
	}
	return i, x - float64(i)
}

// tail returns the decayed share of past surprises at least s, with a prior of one point;
// beyond every past surprise it keeps falling with the square of the excess.
// tailHist is a decayed histogram of surprises, 8 bins per doubling of 1+s.
type tailHist struct {
	hist [bins]float32
	maxS float64
}

// tail returns the decayed share of past surprises at least s, with a small prior; beyond
// every past surprise it keeps falling with a power of the excess.
func (h *tailHist) tail(s, inc, n float64) float64 {
	i, frac := bin(s)
	above := float64(h.hist[i]) * (1 - frac)
	for _, c := range h.hist[i+1:] {
		above += float64(c)
	}
	prior := inc * tailPrior
	p := (above + prior) / (n + prior)
	if s > h.maxS && s > 0 {
		p *= math.Pow(h.maxS/s, extrapPow)
	}
	return math.Max(0, math.Min(1, p))
}

func (h *tailHist) add(s, inc float64) {
	i, _ := bin(s)
	h.hist[i] += float32(inc)
	h.maxS = math.Max(h.maxS, s)
}

func (h *tailHist) rescale(f float64) {
	for k := range h.hist {
		h.hist[k] /= float32(f)
	}
}

func (d *Detector) count(s, spike, dt float64) {
	// Counts decay with a histDays memory: instead of shrinking every count, later counts
	// weigh more, and all are rescaled now and then.
	d.inc *= math.Exp(dt / (histDays * 86400))
	d.surp.add(s, d.inc)
	d.spikes.add(spike, d.inc)
	d.histN += d.inc
	if d.inc > 1e20 {
		d.surp.rescale(d.inc)
		d.spikes.rescale(d.inc)
		d.histN /= d.inc
		d.inc = 1
	}
}

// Band returns the usual band the detector has learned for time t, by the profile of
// t's time of day and week as it stands now (not as it stood at t): what the dashboard
// draws around a series. Only the seasonal and overall predictors are used; the local
// level of the last minutes says nothing of another time. ok is false until the
// detector has scored points (minPts).
func (d *Detector) Band(t time.Time) (r Result, ok bool) {
	if d.n <= minPts {
		return Result{}, false
	}
	ns := t.UnixNano()
	bd := int(((ns % int64(day)) + int64(day)) % int64(day) / int64(d.cfg.Bucket))
	wd := (int(t.Weekday())*len(d.dVal) + bd) % len(d.wVal)
	hist := time.Duration(d.last - d.first)
	best, pred := 0, d.level
	if hist >= 2*day && d.dN[bd] > 0 && d.err[1] < d.err[0] {
		best, pred = 1, float64(d.dVal[bd])
	}
	if hist >= 8*day && d.wN[wd] > 0 && d.err[2] < 1.1*d.err[best] {
		best, pred = 2, float64(d.wVal[wd])
	}
	scale := 1.25*d.err[best] + 1e-3*d.absV + 1e-9
	return Result{Time: t, Name: d.cfg.Name, Season: Season(best), Expected: pred,
		Lower: pred - bandZ*scale, Upper: pred + bandZ*scale}, true
}
