package anomaly

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"time"
)

// Trend forecasts when a "used of limit" series (connections of max_connections, open
// files of their limit, bytes of a disk) reaches its limit, from the rise of its recent
// points. It keeps two horizons: the last TrendShort points as they come (at the
// daemon's 5-minute windows, two hours: a leak that fills a pool this afternoon, once
// the series has a day of history and has risen above the last day's range), and
// hourly means of the last TrendLong hours (30 days: growth that fills it this month).
// Each is fitted with the Theil–Sen estimator, the median of the slopes between every
// pair of points, so that a spike or a restart's dip does not tilt the line as it tilts
// a least-squares fit; and a horizon forecasts only when most pairs agree that the
// series rises (the share of rising pairs, Kendall's concordance), so noise around a
// flat level forecasts nothing.
//
// The zero value is ready to use. The short fit costs its 276 pairs per point (about
// 20 µs; the daemon adds a point per used/limit series every 5 minutes); the long one is
// fitted once an hour, when an hour's mean joins it. Memory is fixed: about 9 KB once
// both horizons are full (30 days); only used/limit series have one. Not safe for
// concurrent use.
type Trend struct {
	short, long ring
	// peaks holds the highest point of each of the last 24 hours.
	peaks ring
	// The hour being averaged into long: its index (unix seconds / 3600), sum, count
	// and highest point.
	hour    int64
	hourSum float64
	hourN   int32
	hourMax float64
	limit   float64
	last    int64 // unix seconds of the latest point
	// The long horizon's fit, made when its last mean was added: the line's value at
	// that mean's time (lfAt), its rate, whether it rises enough to forecast.
	lf   fitted
	lfAt int64
	lfOK bool
}

// Sizes of the two horizons.
const (
	TrendShort = 24  // points (2 h at 5-minute windows)
	TrendLong  = 720 // hourly means (30 days)
	// trendMinShort and trendMinLong are how many points a horizon needs to forecast:
	// half an hour at 5-minute windows; two days of hourly means, so that the long
	// line runs through whole daily cycles, not the rising half of one.
	trendMinShort = 6
	trendMinLong  = 48
	// trendReach is how many times its span the short line is extrapolated.
	trendReach = 2
	// trendAgree is the share of rising pairs a forecast needs.
	trendAgree = 0.7
	// trendMinRise is how much of the limit the fitted line must rise across its
	// points for a forecast: a drift of under 1 % of a pool is not a trend.
	trendMinRise = 0.01
)

// ring is a fixed ring of (time, value) points, times in unix seconds, allocated at
// its first point.
type ring struct {
	t    []int64
	v    []float32
	head int // next write
	n    int
}

func (r *ring) add(size int, t int64, v float64) {
	if r.t == nil {
		r.t, r.v = make([]int64, size), make([]float32, size)
	}
	r.t[r.head], r.v[r.head] = t, float32(v)
	r.head = (r.head + 1) % size
	r.n = min(r.n+1, size)
}

// points appends the ring's points, oldest first.
func (r *ring) points(ts []int64, vs []float64) ([]int64, []float64) {
	size := len(r.t)
	for i := range r.n {
		j := (r.head - r.n + i + size) % size
		ts, vs = append(ts, r.t[j]), append(vs, float64(r.v[j]))
	}
	return ts, vs
}

// Forecast is what a Trend says of its series after a point.
type Forecast struct {
	Used  float64 // the latest point
	Limit float64 // the latest limit
	// Level is the fitted line's value at the latest point and Rate its slope per
	// second: of the horizon that forecast the earliest, or of the short one when
	// neither forecast.
	Level float64
	Rate  float64
	// Span is how far back the fitted points reach.
	Span time.Duration
	// Horizon names the fit: "short" (recent points) or "long" (hourly means).
	Horizon string
	// ETA is the time from the latest point until the line reaches Limit; zero with OK
	// set means it is there already. OK is false when no horizon forecasts a rise.
	ETA time.Duration
	OK  bool
}

// ErrTrendOrder is Observe's error for a point not after the one before it, or a value
// or limit that is not a finite number.
var ErrTrendOrder = errors.New("trend: point out of order or not a finite number")

// Observe adds a point (the used amount and the limit at time at, at least a second
// after the point before) and returns the forecast. A limit of zero or less means the
// series has no known limit: the rate is still fitted, and nothing is forecast. A new
// limit (max_connections raised) keeps the points: the usage did not change, only the
// room left.
func (tr *Trend) Observe(at time.Time, used, limit float64) (Forecast, error) {
	sec := at.Unix()
	if math.IsNaN(used) || math.IsInf(used, 0) || math.IsNaN(limit) || math.IsInf(limit, 0) || (tr.short.n > 0 && sec <= tr.last) {
		return Forecast{}, ErrTrendOrder
	}
	tr.limit, tr.last = limit, sec
	tr.short.add(TrendShort, sec, used)
	if h := sec / 3600; h != tr.hour {
		if tr.hourN > 0 {
			t := tr.hour*3600 + 1800
			tr.long.add(TrendLong, t, tr.hourSum/float64(tr.hourN))
			tr.peaks.add(24, t, tr.hourMax)
			tr.refitLong()
		}
		tr.hour, tr.hourSum, tr.hourN, tr.hourMax = h, 0, 0, used
	}
	tr.hourSum += used
	tr.hourN++
	tr.hourMax = max(tr.hourMax, used)
	return tr.forecast(used), nil
}

// Current returns the forecast of the points seen so far without adding one.
func (tr *Trend) Current() Forecast {
	if tr.short.n == 0 {
		return Forecast{}
	}
	last := (tr.short.head - 1 + TrendShort) % TrendShort
	return tr.forecast(float64(tr.short.v[last]))
}

func (tr *Trend) forecast(used float64) Forecast {
	var tsBuf [TrendShort]int64
	var vsBuf [TrendShort]float64
	ts, vs := tr.short.points(tsBuf[:0], vsBuf[:0])
	var slopes [TrendShort * (TrendShort - 1) / 2]float64
	short, sok := fit(ts, vs, trendMinShort, slopes[:0])
	f := Forecast{Used: used, Limit: tr.limit, Horizon: "short", Level: short.level, Rate: short.rate, Span: short.span}
	if tr.limit <= 0 {
		return f
	}
	best := time.Duration(-1)
	if sok && short.rate*short.span.Seconds() >= trendMinRise*tr.limit {
		// A line through two hours is not extrapolated past twice its span, and only
		// once it has left the range of the last day: the morning rise of a daily
		// curve would otherwise forecast the limit by evening, every morning.
		if e := eta(short.level, short.rate, tr.limit); e <= trendReach*short.span && tr.aboveLastDay(min(short.level, used)) {
			best = e
		}
	}
	if tr.lfOK {
		// The long line, carried from its last hourly mean to the latest point.
		level := tr.lf.level + tr.lf.peak + tr.lf.rate*float64(tr.last-tr.lfAt)
		rise := tr.lf.rate * tr.lf.span.Seconds()
		if e := eta(level, tr.lf.rate, tr.limit); rise >= trendMinRise*tr.limit && (best < 0 || e < best) {
			best = e
			f.Level, f.Rate, f.Span, f.Horizon = level, tr.lf.rate, tr.lf.span+time.Duration(tr.last-tr.lfAt)*time.Second, "long"
		}
	}
	if best >= 0 {
		f.ETA, f.OK = best, true
	}
	return f
}

// aboveLastDay reports whether level is above every point of the last 24 hours before
// the current one; false before a day of history is kept.
func (tr *Trend) aboveLastDay(level float64) bool {
	if tr.peaks.n < 24 {
		return false
	}
	for i := range tr.peaks.n {
		if float64(tr.peaks.v[i]) >= level {
			return false
		}
	}
	return true
}

// eta is the time a line at level rising at rate per second takes to reach limit.
func eta(level, rate, limit float64) time.Duration {
	if level >= limit {
		return 0
	}
	secs := (limit - level) / rate
	if secs >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(secs * float64(time.Second))
}

type fitted struct {
	level, rate float64 // the line's value at the latest point, its slope per second
	span        time.Duration
	// peak is how far the daily peaks stand above the line (fitDaily): the 90th
	// percentile of the points' distances from it.
	peak float64
}

// fit fits the Theil–Sen line through the points (oldest first) and reports whether it
// may forecast: at least minN points, a positive slope, and most pairs rising. slopes
// is room for the pairs' slopes.
func fit(ts []int64, vs []float64, minN int, slopes []float64) (fitted, bool) {
	n := len(ts)
	if n < 2 {
		return fitted{}, false
	}
	rising := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			s := (vs[j] - vs[i]) / float64(ts[j]-ts[i])
			slopes = append(slopes, s)
			if s > 0 {
				rising++
			}
		}
	}
	rate := Median(slopes)
	// The line's value at the latest point is the median of what each point says it is.
	last := ts[n-1]
	at := slopes[:0]
	for i := range n {
		at = append(at, vs[i]+rate*float64(last-ts[i]))
	}
	f := fitted{level: Median(at), rate: rate, span: time.Duration(last-ts[0]) * time.Second}
	return f, n >= minN && rate > 0 && float64(rising) >= trendAgree*float64(n*(n-1)/2)
}

// fitDaily fits hourly means (oldest first, each at the middle of its hour) with the
// seasonal Theil–Sen estimator: only pairs a whole number of days apart give slopes, so
// a daily curve, which would tilt any line through part of it, cancels out (Hirsch's
// seasonal Kendall test uses the same pairs). The forecast line runs through the daily
// peaks: its level is raised by the 90th percentile of the points' distances above it.
// It may forecast with at least minN means, a positive slope and most pairs rising.
func fitDaily(ts []int64, vs []float64, minN int) (fitted, bool) {
	n := len(ts)
	if n < 2 {
		return fitted{}, false
	}
	var slopes []float64
	rising := 0
	for i := range n {
		for j := i + 1; j < n; j++ {
			if d := ts[j] - ts[i]; d%86400 == 0 {
				s := (vs[j] - vs[i]) / float64(d)
				slopes = append(slopes, s)
				if s > 0 {
					rising++
				}
			}
		}
	}
	if len(slopes) == 0 {
		return fitted{}, false
	}
	rate := Median(slopes)
	last := ts[n-1]
	at := make([]float64, n)
	for i := range n {
		at[i] = vs[i] + rate*float64(last-ts[i])
	}
	level := Median(slices.Clone(at))
	for i := range at {
		at[i] -= level // the distance of point i above the line
	}
	slices.Sort(at)
	f := fitted{level: level, rate: rate, span: time.Duration(last-ts[0]) * time.Second, peak: max(0, at[n*9/10])}
	return f, n >= minN && rate > 0 && float64(rising) >= trendAgree*float64(len(slopes))
}

// Median sorts xs in place and returns its median; xs must not be empty.
func Median(xs []float64) float64 {
	slices.Sort(xs)
	m := len(xs) / 2
	if len(xs)%2 == 1 {
		return xs[m]
	}
	return (xs[m-1] + xs[m]) / 2
}

// trendMagic starts a Trend's binary state; the version is its last byte.
const trendMagic = "pptr1"

// MarshalBinary returns the trend's state: both horizons' points, the last day's
// hourly peaks, the hour being averaged and the limit; at most about 9.2 KB with a full
// long horizon.
func (tr *Trend) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, len(trendMagic)+50+12*(tr.short.n+tr.long.n+tr.peaks.n))
	b = append(b, trendMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(tr.last))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(tr.limit))
	b = binary.LittleEndian.AppendUint64(b, uint64(tr.hour))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(tr.hourSum))
	b = binary.LittleEndian.AppendUint32(b, uint32(tr.hourN))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(tr.hourMax))
	for _, r := range []*ring{&tr.short, &tr.long, &tr.peaks} {
		var tsBuf [TrendLong]int64
		var vsBuf [TrendLong]float64
		ts, vs := r.points(tsBuf[:0], vsBuf[:0])
		b = binary.LittleEndian.AppendUint16(b, uint16(len(ts)))
		for i := range ts {
			b = binary.LittleEndian.AppendUint64(b, uint64(ts[i]))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(vs[i])))
		}
	}
	return b, nil
}

// ErrTrendState is UnmarshalBinary's error for a state it cannot use.
var ErrTrendState = errors.New("trend: bad state")

// UnmarshalBinary restores a state written by MarshalBinary into a zero Trend; on an
// error the Trend is unchanged.
func (tr *Trend) UnmarshalBinary(b []byte) error {
	if len(b) < len(trendMagic)+44 || string(b[:len(trendMagic)]) != trendMagic {
		return ErrTrendState
	}
	var nt Trend
	p := b[len(trendMagic):]
	nt.last = int64(binary.LittleEndian.Uint64(p))
	nt.limit = math.Float64frombits(binary.LittleEndian.Uint64(p[8:]))
	nt.hour = int64(binary.LittleEndian.Uint64(p[16:]))
	nt.hourSum = math.Float64frombits(binary.LittleEndian.Uint64(p[24:]))
	nt.hourN = int32(binary.LittleEndian.Uint32(p[32:]))
	nt.hourMax = math.Float64frombits(binary.LittleEndian.Uint64(p[36:]))
	p = p[44:]
	if math.IsNaN(nt.limit) || math.IsInf(nt.limit, 0) || math.IsNaN(nt.hourSum) || math.IsInf(nt.hourSum, 0) || nt.hourN < 0 ||
		math.IsNaN(nt.hourMax) || math.IsInf(nt.hourMax, 0) {
		return ErrTrendState
	}
	for _, h := range []struct {
		r    *ring
		size int
	}{{&nt.short, TrendShort}, {&nt.long, TrendLong}, {&nt.peaks, 24}} {
		if len(p) < 2 {
			return ErrTrendState
		}
		n := int(binary.LittleEndian.Uint16(p))
		p = p[2:]
		if n > h.size || len(p) < 12*n {
			return ErrTrendState
		}
		prev := int64(math.MinInt64)
		for range n {
			t := int64(binary.LittleEndian.Uint64(p))
			v := math.Float32frombits(binary.LittleEndian.Uint32(p[8:]))
			if t <= prev || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return ErrTrendState
			}
			prev = t
			h.r.add(h.size, t, float64(v))
			p = p[12:]
		}
	}
	if len(p) != 0 || (nt.short.n > 0 && nt.last != nt.short.t[(nt.short.head-1+TrendShort)%TrendShort]) {
		return ErrTrendState
	}
	nt.refitLong()
	*tr = nt
	return nil
}

// refitLong fits the long horizon again after its last mean changed.
func (tr *Trend) refitLong() {
	if tr.long.n == 0 {
		tr.lf, tr.lfOK, tr.lfAt = fitted{}, false, 0
		return
	}
	var tsBuf [TrendLong]int64
	var vsBuf [TrendLong]float64
	ts, vs := tr.long.points(tsBuf[:0], vsBuf[:0])
	tr.lf, tr.lfOK = fitDaily(ts, vs, trendMinLong)
	tr.lfAt = ts[len(ts)-1]
}

// Since returns the forecast with the long horizon fitted over only the hourly means of
// the last d before the latest point (the capacity report's --since), the short one as
// always.
func (tr *Trend) Since(d time.Duration) Forecast {
	if tr.short.n == 0 {
		return Forecast{}
	}
	cut := *tr
	var tsBuf [TrendLong]int64
	var vsBuf [TrendLong]float64
	ts, vs := tr.long.points(tsBuf[:0], vsBuf[:0])
	from := tr.last - int64(d/time.Second)
	cut.long = ring{}
	for i := range ts {
		if ts[i] >= from {
			cut.long.add(TrendLong, ts[i], vs[i])
		}
	}
	cut.refitLong()
	return cut.Current()
}
