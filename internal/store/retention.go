package store

import (
	"fmt"
	"time"
)

// Retention says how long each kind of history is kept. The zero value means the
// defaults: raw results 48 hours, minute and hour rollups 90 days, rollups computed two
// minutes after their minute ends.
type Retention struct {
	Raw    time.Duration
	Minute time.Duration
	Hour   time.Duration
	// RollupDelay is how long after a minute ends it is rolled up, so that results still
	// in flight (probe timeout plus batching) are counted. A result that arrives later
	// is kept raw but missing from its minute's rollup.
	RollupDelay time.Duration
}

// Default retention periods.
const (
	DefaultRawRetention    = 48 * time.Hour
	DefaultRollupRetention = 90 * 24 * time.Hour
	DefaultRollupDelay     = 2 * time.Minute
)

// WithDefaults returns r with zero fields set to their defaults.
func (r Retention) WithDefaults() Retention {
	if r.Raw == 0 {
		r.Raw = DefaultRawRetention
	}
	if r.Minute == 0 {
		r.Minute = DefaultRollupRetention
	}
	if r.Hour == 0 {
		r.Hour = DefaultRollupRetention
	}
	if r.RollupDelay == 0 {
		r.RollupDelay = DefaultRollupDelay
	}
	return r
}

// Validate reports settings under which rollups could not be computed: minute rollups
// are made from raw results, and hour rollups from minute rollups, so each source must
// outlive the delay before its rollup is made.
func (r Retention) Validate() error {
	if r.RollupDelay < 0 {
		return fmt.Errorf("retention: negative rollup delay %s", r.RollupDelay)
	}
	if r.Raw < r.RollupDelay+2*time.Minute {
		return fmt.Errorf("retention: raw results kept %s, need at least the rollup delay plus 2m (%s)", r.Raw, r.RollupDelay+2*time.Minute)
	}
	if r.Minute < r.RollupDelay+2*time.Hour {
		return fmt.Errorf("retention: minute rollups kept %s, need at least the rollup delay plus 2h (%s)", r.Minute, r.RollupDelay+2*time.Hour)
	}
	if r.Hour < time.Hour {
		return fmt.Errorf("retention: hour rollups kept %s, need at least 1h", r.Hour)
	}
	return nil
}

// CompactStats counts what one Compact call did.
type CompactStats struct {
	MinuteRollups int64 // minute rollup rows written
	HourRollups   int64 // hour rollup rows written
	RawDeleted    int64
	MinuteDeleted int64
	HourDeleted   int64
	// RolledUntil is the end of the last minute rolled up.
	RolledUntil time.Time
}

// Rollup windows as computed by Compact: it rolls up whole minutes ending at least
// delay before now, and whole hours whose minutes are all rolled up.

// MinuteCutoff returns the end of the last minute that may be rolled up at now.
func MinuteCutoff(now time.Time, delay time.Duration) time.Time {
	return now.Add(-delay).Truncate(time.Minute)
}

// RollupChunk is the longest span of raw results one rollup query reads, bounding
// the memory and lock time of a catch-up after downtime.
const RollupChunk = 10 * time.Minute
