package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

var resultColumns = []string{"target_id", "start_ns", "duration_ns", "class", "up", "error", "remote_addr", "extra"}

// WriteResults stores results in one transaction with COPY. It does not retain the
// slice.
func (db *DB) WriteResults(ctx context.Context, results []patrol.Result) error {
	if len(results) == 0 {
		return nil
	}
	names := make([]string, len(results))
	for i := range results {
		names[i] = results[i].Target
	}
	rows := make([][]any, len(results))
	var added map[string]int64
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		ids, a, err := db.targetIDs(ctx, tx, names)
		if err != nil {
			return err
		}
		added = a
		for i := range results {
			r := &results[i]
			extra, err := store.EncodeExtra(r)
			if err != nil {
				return err
			}
			var ex any
			if extra != nil {
				ex = string(extra)
			}
			rows[i] = []any{ids[r.Target], r.Start.UnixNano(), int64(r.Duration), string(r.Class), r.Up(),
				nullString(r.Error), nullString(r.RemoteAddr), ex}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"results"}, resultColumns, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: write results: %w", err)
	}
	db.cacheTargets(added)
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// RecentResults returns the latest n results of target, newest first.
func (db *DB) RecentResults(ctx context.Context, target string, n int) ([]patrol.Result, error) {
	id, ok, err := db.lookupTarget(ctx, target)
	if err != nil || !ok || n <= 0 {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT start_ns, duration_ns, class, error, remote_addr, extra::text
		FROM results WHERE target_id = $1 ORDER BY start_ns DESC LIMIT $2`, id, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: recent results of %s: %w", target, err)
	}
	defer rows.Close()
	var out []patrol.Result
	for rows.Next() {
		r := patrol.Result{Target: target}
		var start, dur int64
		var class string
		var errText, addr, extra *string
		if err := rows.Scan(&start, &dur, &class, &errText, &addr, &extra); err != nil {
			return nil, fmt.Errorf("postgres: recent results of %s: %w", target, err)
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
				return nil, fmt.Errorf("postgres: %w", err)
			}
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: recent results of %s: %w", target, err)
	}
	return out, nil
}

// History returns the series of q.Target. Minute and hour series end with points
// bucketed from raw results for the span not rolled up yet.
func (db *DB) History(ctx context.Context, q store.HistoryQuery) (store.Series, error) {
	q, err := q.Resolve(db.now(), db.keep)
	if err != nil {
		return store.Series{}, err
	}
	s := store.Series{Target: q.Target, From: q.From, To: q.To, Resolution: q.Resolution, Step: q.Step,
		Quantiles: quantiles(q.Resolution)}
	id, ok, err := db.lookupTarget(ctx, q.Target)
	if err != nil || !ok {
		return s, err
	}
	rawFrom := q.From
	if q.Resolution != store.ResolutionRaw {
		table, kind := "rollup_minute", "minute"
		if q.Resolution == store.ResolutionHour {
			table, kind = "rollup_hour", "hour"
		}
		until, err := db.progress(ctx, kind)
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
			if s.Points, err = db.rollups(ctx, table, id, from, to); err != nil {
				return s, err
			}
		}
		if to.After(rawFrom) {
			rawFrom = to
		}
	}
	if rawFrom.Before(q.To) {
		samples, err := db.samples(ctx, id, rawFrom, q.To)
		if err != nil {
			return s, err
		}
		s.Points = append(s.Points, store.BucketSamples(samples, q.Step)...)
	}
	return s, nil
}

func quantiles(r store.Resolution) store.QuantileSource {
	switch r {
	case store.ResolutionMinute:
		return store.QuantilesP95
	case store.ResolutionHour:
		return store.QuantilesP95UpperBound
	default:
		return store.QuantilesExact
	}
}

func (db *DB) samples(ctx context.Context, id int64, from, to time.Time) ([]store.Sample, error) {
	rows, err := db.pool.Query(ctx, `SELECT start_ns, duration_ns, up FROM results
		WHERE target_id = $1 AND start_ns >= $2 AND start_ns < $3 ORDER BY start_ns`, id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	defer rows.Close()
	var out []store.Sample
	for rows.Next() {
		var start, dur int64
		var up bool
		if err := rows.Scan(&start, &dur, &up); err != nil {
			return nil, fmt.Errorf("postgres: history: %w", err)
		}
		out = append(out, store.Sample{Start: time.Unix(0, start), Duration: time.Duration(dur), Up: up})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	return out, nil
}

func (db *DB) rollups(ctx context.Context, table string, id int64, from, to time.Time) ([]store.Point, error) {
	rows, err := db.pool.Query(ctx, `SELECT bucket, count, failures, ok_sum_ns, min_ns, max_ns, p95_ns
		FROM `+table+` WHERE target_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket`, id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	defer rows.Close()
	var out []store.Point
	for rows.Next() {
		var bucket, count, failures, sum, mn, mx, p95 int64
		if err := rows.Scan(&bucket, &count, &failures, &sum, &mn, &mx, &p95); err != nil {
			return nil, fmt.Errorf("postgres: history: %w", err)
		}
		out = append(out, store.RollupPoint(time.Unix(0, bucket), count, failures,
			time.Duration(sum), time.Duration(mn), time.Duration(mx), time.Duration(p95)))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	return out, nil
}

// progress returns the end of what kind's rollup covers, zero when it has not run.
func (db *DB) progress(ctx context.Context, kind string) (time.Time, error) {
	var ns int64
	err := db.pool.QueryRow(ctx, `SELECT until_ns FROM rollup_progress WHERE kind = $1`, kind).Scan(&ns)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: %s rollup progress: %w", kind, err)
	}
	return time.Unix(0, ns), nil
}
