package store

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Spans up to which ChooseResolution picks the finer resolutions.
const (
	MaxRawSpan    = 6 * time.Hour
	MaxMinuteSpan = 3 * 24 * time.Hour
)

// MaxRawPoints is the most points a raw-resolution series has when Step is chosen.
const MaxRawPoints = 360

// ChooseResolution returns raw for spans up to MaxRawSpan, minute up to
// MaxMinuteSpan, hour beyond; a finer resolution is skipped when From is older than
// what it keeps.
func ChooseResolution(from, to, now time.Time, keep Retention) patrol.Resolution {
	keep = keep.WithDefaults()
	span := to.Sub(from)
	switch {
	case span <= MaxRawSpan && !from.Before(now.Add(-keep.Raw)):
		return patrol.ResolutionRaw
	case span <= MaxMinuteSpan && !from.Before(now.Add(-keep.Minute)):
		return patrol.ResolutionMinute
	default:
		return patrol.ResolutionHour
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

// ResolveHistory fills in the resolution and step of q, validating it.
func ResolveHistory(q patrol.HistoryQuery, now time.Time, keep Retention) (patrol.HistoryQuery, error) {
	if q.Target == "" {
		return q, fmt.Errorf("history: empty target")
	}
	if !q.To.After(q.From) {
		return q, fmt.Errorf("history: empty span %s to %s", q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Resolution == patrol.ResolutionAuto {
		q.Resolution = ChooseResolution(q.From, q.To, now, keep)
	}
	switch q.Resolution {
	case patrol.ResolutionRaw:
		if q.Step <= 0 {
			q.Step = RawStep(q.To.Sub(q.From))
		}
	case patrol.ResolutionMinute:
		q.Step = time.Minute
	case patrol.ResolutionHour:
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
func BucketSamples(samples []Sample, step time.Duration) []patrol.Point {
	var points []patrol.Point
	var ok []time.Duration
	for i := 0; i < len(samples); {
		b := samples[i].Start.Truncate(step)
		end := b.Add(step)
		p := patrol.Point{Time: b}
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
func RollupPoint(bucket time.Time, count, failures int64, okSum, min, max, p95 time.Duration) patrol.Point {
	p := patrol.Point{Time: bucket, Count: count, Failures: failures, Min: min, Max: max, P95: p95}
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
	RolledUntil(ctx context.Context, res patrol.Resolution) (time.Time, error)
	// Rollups returns the rollup points at res whose buckets start in [from, to),
	// oldest first.
	Rollups(ctx context.Context, res patrol.Resolution, from, to time.Time) ([]patrol.Point, error)
	// Samples returns the raw samples that start in [from, to), oldest first.
	Samples(ctx context.Context, from, to time.Time) ([]Sample, error)
}

// AssembleHistory answers q at now under keep: it resolves q, opens the target's
// source (ok false: the target has no history, and the series is empty) and reads raw
// series from samples; minute and hour series from rollups up to what the rollups
// cover, ending with points bucketed from the samples not rolled up yet.
func AssembleHistory(ctx context.Context, q patrol.HistoryQuery, now time.Time, keep Retention,
	open func(ctx context.Context, target string) (src HistorySource, ok bool, err error)) (patrol.Series, error) {
	q, err := ResolveHistory(q, now, keep)
	if err != nil {
		return patrol.Series{}, err
	}
	s := patrol.Series{Target: q.Target, From: q.From, To: q.To, Resolution: q.Resolution, Step: q.Step,
		Quantiles: quantileSource(q.Resolution)}
	src, ok, err := open(ctx, q.Target)
	if err != nil || !ok {
		return s, err
	}
	rawFrom := q.From
	if q.Resolution != patrol.ResolutionRaw {
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
func quantileSource(r patrol.Resolution) patrol.QuantileSource {
	switch r {
	case patrol.ResolutionMinute:
		return patrol.QuantilesP95
	case patrol.ResolutionHour:
		return patrol.QuantilesP95UpperBound
	default:
		return patrol.QuantilesExact
	}
}
