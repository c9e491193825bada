package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// insertRows is how many results one INSERT statement carries: 8 columns each, well
// under SQLite's limit on bound parameters.
const insertRows = 128

const resultColumns = 8

// WriteResults stores results in one transaction, as multi-row INSERTs of up to
// insertRows results (the full-size one prepared once). It does not retain the slice.
func (db *DB) WriteResults(ctx context.Context, results []patrol.Result) error {
	if len(results) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: write results: %w", err)
	}
	defer tx.Rollback()
	added := make(map[string]int64)
	args := make([]any, 0, insertRows*resultColumns)
	for len(results) > 0 {
		n := min(len(results), insertRows)
		args = args[:0]
		for i := range results[:n] {
			r := &results[i]
			id, err := db.targetID(ctx, tx, r.Target, added)
			if err != nil {
				return fmt.Errorf("sqlite: write results: %w", err)
			}
			extra, err := store.EncodeExtra(r)
			if err != nil {
				return fmt.Errorf("sqlite: write results: %w", err)
			}
			args = append(args, id, r.Start.UnixNano(), int64(r.Duration), string(r.Class),
				r.Up(), nullString(r.Error), nullString(r.RemoteAddr), nullBytes(extra))
		}
		if n == insertRows {
			_, err = tx.StmtContext(ctx, db.insertFull).ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertSQL(n), args...)
		}
		if err != nil {
			return fmt.Errorf("sqlite: write results: %w", err)
		}
		results = results[n:]
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: write results: commit: %w", err)
	}
	if len(added) > 0 {
		db.mu.Lock()
		for k, v := range added {
			db.targets[k] = v
		}
		db.mu.Unlock()
	}
	return nil
}

// insertSQL returns the INSERT of n results.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO results (target_id, start, duration_ns, class, up, error, remote_addr, extra) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?,?)")
	}
	return b.String()
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// RecentResults returns the latest n results of target, newest first.
func (db *DB) RecentResults(ctx context.Context, target string, n int) ([]patrol.Result, error) {
	id, ok, err := db.lookupTarget(ctx, target)
	if err != nil || !ok || n <= 0 {
		return nil, err
	}
	rows, err := db.read.QueryContext(ctx, `SELECT start, duration_ns, class, error, remote_addr, extra
		FROM results WHERE target_id = ? ORDER BY start DESC LIMIT ?`, id, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recent results of %s: %w", target, err)
	}
	defer rows.Close()
	var out []patrol.Result
	for rows.Next() {
		r := patrol.Result{Target: target}
		var start, dur int64
		var class string
		var errText, addr, extra sql.NullString
		if err := rows.Scan(&start, &dur, &class, &errText, &addr, &extra); err != nil {
			return nil, fmt.Errorf("sqlite: recent results of %s: %w", target, err)
		}
		r.Start, r.Duration, r.Class = time.Unix(0, start), time.Duration(dur), patrol.Class(class)
		r.Error, r.RemoteAddr = errText.String, addr.String
		if err := store.DecodeExtra([]byte(extra.String), &r); err != nil {
			return nil, fmt.Errorf("sqlite: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: recent results of %s: %w", target, err)
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
	s := store.Series{Target: q.Target, From: q.From, To: q.To, Resolution: q.Resolution, Step: q.Step}
	id, ok, err := db.lookupTarget(ctx, q.Target)
	if err != nil || !ok {
		s.Quantiles = quantiles(q.Resolution)
		return s, err
	}
	rawFrom := q.From
	if q.Resolution != store.ResolutionRaw {
		table, kind := "rollup_minute", "minute"
		if q.Resolution == store.ResolutionHour {
			table, kind = "rollup_hour", "hour"
		}
		until, err := db.progress(ctx, db.read, kind)
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
	s.Quantiles = quantiles(q.Resolution)
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
	rows, err := db.read.QueryContext(ctx, `SELECT start, duration_ns, up FROM results
		WHERE target_id = ? AND start >= ? AND start < ? ORDER BY start`, id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	defer rows.Close()
	var out []store.Sample
	for rows.Next() {
		var start, dur int64
		var up bool
		if err := rows.Scan(&start, &dur, &up); err != nil {
			return nil, fmt.Errorf("sqlite: history: %w", err)
		}
		out = append(out, store.Sample{Start: time.Unix(0, start), Duration: time.Duration(dur), Up: up})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	return out, nil
}

func (db *DB) rollups(ctx context.Context, table string, id int64, from, to time.Time) ([]store.Point, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT bucket, count, failures, ok_sum_ns, min_ns, max_ns, p95_ns
		FROM `+table+` WHERE target_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`, id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	defer rows.Close()
	var out []store.Point
	for rows.Next() {
		var bucket, count, failures, sum, mn, mx, p95 int64
		if err := rows.Scan(&bucket, &count, &failures, &sum, &mn, &mx, &p95); err != nil {
			return nil, fmt.Errorf("sqlite: history: %w", err)
		}
		out = append(out, store.RollupPoint(time.Unix(0, bucket), count, failures,
			time.Duration(sum), time.Duration(mn), time.Duration(mx), time.Duration(p95)))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	return out, nil
}
