package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Resolution is the granularity a history series is read at.
type Resolution string

// The resolutions. ResolutionAuto (the zero value) chooses from the span: see
// ChooseResolution.
const (
	ResolutionAuto   Resolution = ""
	ResolutionRaw    Resolution = "raw"    // buckets computed from raw results
	ResolutionMinute Resolution = "minute" // one point per minute rollup
	ResolutionHour   Resolution = "hour"   // one point per hour rollup
)

// Spans up to which ChooseResolution picks the finer resolutions.
const (
	MaxRawSpan    = 6 * time.Hour
	MaxMinuteSpan = 3 * 24 * time.Hour
)

// MaxRawPoints is the most points a raw-resolution series has when Step is chosen.
const MaxRawPoints = 360

// HistoryQuery asks for the history of one target between From (inclusive) and To
// (exclusive). The zero Resolution chooses one; Step applies to raw resolution only
// and zero chooses one too.
type HistoryQuery struct {
	Target     string
	From, To   time.Time
	Resolution Resolution
	Step       time.Duration
}

// QuantileSource says how the quantiles of a series were computed.
type QuantileSource string

// The quantile sources, one per resolution.
const (
	// QuantilesExact: P50, P95 and P99 are exact (nearest rank) over the raw results of
	// each point.
	QuantilesExact QuantileSource = "exact"
	// QuantilesP95: P95 is exact over the minute; P50 and P99 are not kept and are zero.
	QuantilesP95 QuantileSource = "p95"
	// QuantilesP95UpperBound: P95 is the highest minute P95 within the hour, an upper
	// bound of the hour's true P95; P50 and P99 are zero.
	QuantilesP95UpperBound QuantileSource = "p95-upper-bound"
)

// Point is one bucket of a series. Count and Failures count every result; the latency
// figures (Min, Avg, Max, P50, P95, P99) are over successful results only, and zero
// when there were none. Availability is the share of successful results, 0 to 1.
type Point struct {
	Time          time.Time // start of the bucket
	Count         int64
	Failures      int64
	Availability  float64
	Min, Avg, Max time.Duration
	P50, P95, P99 time.Duration
}

// Series is the history of one target at one resolution.
type Series struct {
	Target     string
	From, To   time.Time
	Resolution Resolution
	Step       time.Duration
	Quantiles  QuantileSource
	// Points holds one point per bucket that has results, oldest first.
	Points []Point
}

// ChooseResolution returns raw for spans up to MaxRawSpan, minute up to
// MaxMinuteSpan, hour beyond; a finer resolution is skipped when From is older than
// what it keeps.
func ChooseResolution(from, to, now time.Time, keep Retention) Resolution {
	keep = keep.WithDefaults()
	span := to.Sub(from)
	switch {
	case span <= MaxRawSpan && !from.Before(now.Add(-keep.Raw)):
		return ResolutionRaw
	case span <= MaxMinuteSpan && !from.Before(now.Add(-keep.Minute)):
		return ResolutionMinute
	default:
		return ResolutionHour
	}
}

var rawSteps = []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
	30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute,
	15 * time.Minute, 30 * time.Minute, time.Hour}

// RawStep returns the smallest round step that cuts the span into at most
// MaxRawPoints buckets.
func RawStep(span time.Duration) time.Duration {
	for _, s := range rawSteps {
		if span <= s*MaxRawPoints {
			return s
		}
	}
	return (span/MaxRawPoints + time.Hour - 1).Truncate(time.Hour)
}

// Resolve fills in the resolution and step of q, validating it.
func (q HistoryQuery) Resolve(now time.Time, keep Retention) (HistoryQuery, error) {
	if q.Target == "" {
		return q, fmt.Errorf("history: empty target")
	}
	if !q.To.After(q.From) {
		return q, fmt.Errorf("history: empty span %s to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Resolution == ResolutionAuto {
		q.Resolution = ChooseResolution(q.From, q.To, now, keep)
	}
	switch q.Resolution {
	case ResolutionRaw:
		if q.Step <= 0 {
			q.Step = RawStep(q.To.Sub(q.From))
		}
	case ResolutionMinute:
		q.Step = time.Minute
	case ResolutionHour:
		q.Step = time.Hour
	default:
		return q, fmt.Errorf("history: unknown resolution %q", q.Resolution)
	}
	return q, nil
}

// Sample is one raw result reduced to what history needs.
type Sample struct {
	Start    time.Time
	Duration time.Duration
	Up       bool
}

// BucketSamples groups samples, sorted by Start, into points of width step aligned to
// the Unix epoch, with exact quantiles.
func BucketSamples(samples []Sample, step time.Duration) []Point {
	var points []Point
	var ok []time.Duration
	for i := 0; i < len(samples); {
		b := samples[i].Start.Truncate(step)
		end := b.Add(step)
		p := Point{Time: b}
		ok = ok[:0]
		var sum time.Duration
		for ; i < len(samples) && samples[i].Start.Before(end); i++ {
			p.Count++
			if samples[i].Up {
				ok = append(ok, samples[i].Duration)
				sum += samples[i].Duration
			} else {
				p.Failures++
			}
		}
		p.Availability = float64(p.Count-p.Failures) / float64(p.Count)
		if len(ok) > 0 {
			slices.Sort(ok)
			p.Min, p.Max = ok[0], ok[len(ok)-1]
			p.Avg = sum / time.Duration(len(ok))
			p.P50 = NearestRank(ok, 50)
			p.P95 = NearestRank(ok, 95)
			p.P99 = NearestRank(ok, 99)
		}
		points = append(points, p)
	}
	return points
}

// NearestRank returns the pct-th percentile (1..100) of sorted values by the nearest
// rank method: the smallest value with at least pct% of values at or below it. It is
// what PostgreSQL's percentile_disc computes.
func NearestRank(sorted []time.Duration, pct int) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	return sorted[(n*pct+99)/100-1]
}

// RollupPoint builds the point of a stored rollup row.
func RollupPoint(bucket time.Time, count, failures int64, okSum, min, max, p95 time.Duration) Point {
	p := Point{Time: bucket, Count: count, Failures: failures, Min: min, Max: max, P95: p95}
	if count > 0 {
		p.Availability = float64(count-failures) / float64(count)
	}
	if okCount := count - failures; okCount > 0 {
		p.Avg = okSum / time.Duration(okCount)
	}
	return p
}

// HistorySource reads the stored rows of one target that AssembleHistory builds a
// series from. The SQL backends implement it over their own queries.
type HistorySource interface {
	// RolledUntil returns the end of what the rollup at res (minute or hour) covers,
	// zero when it has not run yet.
	RolledUntil(ctx context.Context, res Resolution) (time.Time, error)
	// Rollups returns the rollup points at res whose buckets start in [from, to),
	// oldest first.
	Rollups(ctx context.Context, res Resolution, from, to time.Time) ([]Point, error)
	// Samples returns the raw samples that start in [from, to), oldest first.
	Samples(ctx context.Context, from, to time.Time) ([]Sample, error)
}

// AssembleHistory answers q at now under keep: it resolves q, opens the target's
// source (ok false: the target has no history, and the series is empty) and reads raw
// series from samples; minute and hour series from rollups up to what the rollups
// cover, ending with points bucketed from the samples not rolled up yet.
func AssembleHistory(ctx context.Context, q HistoryQuery, now time.Time, keep Retention,
	open func(ctx context.Context, target string) (src HistorySource, ok bool, err error)) (Series, error) {
	q, err := q.Resolve(now, keep)
	if err != nil {
		return Series{}, err
	}
	s := Series{Target: q.Target, From: q.From, To: q.To, Resolution: q.Resolution, Step: q.Step,
		Quantiles: quantileSource(q.Resolution)}
	src, ok, err := open(ctx, q.Target)
	if err != nil || !ok {
		return s, err
	}
	rawFrom := q.From
	if q.Resolution != ResolutionRaw {
		until, err := src.RolledUntil(ctx, q.Resolution)
		if err != nil {
			return s, err
		}
		// Rollup points are the buckets starting in the span; the first may begin
		// before From. Whatever is not rolled up yet comes from raw results.
		from, to := q.From.Truncate(q.Step), q.To
		if until.Before(to) {
			to = until
		}
		if to.After(from) {
			if s.Points, err = src.Rollups(ctx, q.Resolution, from, to); err != nil {
				return s, err
			}
		}
		if to.After(rawFrom) {
			rawFrom = to
		}
	}
	if rawFrom.Before(q.To) {
		samples, err := src.Samples(ctx, rawFrom, q.To)
		if err != nil {
			return s, err
		}
		s.Points = append(s.Points, BucketSamples(samples, q.Step)...)
	}
	return s, nil
}

// quantileSource says how the quantiles of a series at resolution r are computed.
func quantileSource(r Resolution) QuantileSource {
	switch r {
	case ResolutionMinute:
		return QuantilesP95
	case ResolutionHour:
		return QuantilesP95UpperBound
	default:
		return QuantilesExact
	}
}
