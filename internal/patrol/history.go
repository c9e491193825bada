package patrol

import "time"

// Resolution is the granularity a history series is read at.
type Resolution string

// The resolutions. ResolutionAuto (the zero value) lets the store choose from the span.
const (
	ResolutionAuto   Resolution = ""
	ResolutionRaw    Resolution = "raw"    // buckets computed from raw results
	ResolutionMinute Resolution = "minute" // one point per minute rollup
	ResolutionHour   Resolution = "hour"   // one point per hour rollup
)

// HistoryQuery asks for the history of one target between From (inclusive) and To
// (exclusive). The zero Resolution lets the store choose one; Step applies to raw
// resolution only, and zero lets the store choose it too.
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
