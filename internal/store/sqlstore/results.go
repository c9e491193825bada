package sqlstore

import (
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// Rollup returns the table that keeps the rollups at res (minute or hour) and their
// kind in rollup_progress.
func Rollup(res patrol.Resolution) (table, kind string) {
	if res == patrol.ResolutionHour {
		return "rollup_hour", "hour"
	}
	return "rollup_minute", "minute"
}

// ScanResult returns a scan of the result rows (start, duration_ns, class, error,
// remote_addr, extra as text) of target.
func ScanResult(target string) func(Scanner) (patrol.Result, error) {
	return func(sc Scanner) (patrol.Result, error) {
		r := patrol.Result{Target: target}
		var start, dur int64
		var class string
		var errText, addr, extra *string
		if err := sc.Scan(&start, &dur, &class, &errText, &addr, &extra); err != nil {
			return r, err
		}
		r.Start, r.Duration, r.Class = time.Unix(0, start), time.Duration(dur), patrol.Class(class)
		if errText != nil {
			r.Error = *errText
		}
		if addr != nil {
			r.RemoteAddr = *addr
		}
		if extra != nil {
			if err := store.DecodeExtra([]byte(*extra), &r); err != nil {
				return r, err
			}
		}
		return r, nil
	}
}

// ScanSample reads a sample row: start, duration_ns, up.
func ScanSample(sc Scanner) (store.Sample, error) {
	var start, dur int64
	var up bool
	if err := sc.Scan(&start, &dur, &up); err != nil {
		return store.Sample{}, err
	}
	return store.Sample{Start: time.Unix(0, start), Duration: time.Duration(dur), Up: up}, nil
}

// RollupColumns are the columns ScanRollup reads, in its order.
const RollupColumns = `bucket, count, failures, ok_sum_ns, min_ns, max_ns, p95_ns`

// ScanRollup reads a rollup row of RollupColumns.
func ScanRollup(sc Scanner) (patrol.Point, error) {
	var bucket, count, failures, sum, mn, mx, p95 int64
	if err := sc.Scan(&bucket, &count, &failures, &sum, &mn, &mx, &p95); err != nil {
		return patrol.Point{}, err
	}
	return store.RollupPoint(time.Unix(0, bucket), count, failures,
		time.Duration(sum), time.Duration(mn), time.Duration(mx), time.Duration(p95)), nil
}
