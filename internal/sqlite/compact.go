package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

// deleteChunk is how many rows one retention DELETE removes, so that the write lock
// is held for short turns and batch writes interleave.
const deleteChunk = 20000

// minuteRollupSQL aggregates raw results into minutes. Latency figures are over
// successful results; p95 is the nearest rank, ceil(0.95 n), among them.
const minuteRollupSQL = `
SELECT target_id, bucket, SUM(n), SUM(CASE WHEN up = 0 THEN n ELSE 0 END),
	COALESCE(SUM(CASE WHEN up = 1 THEN s END), 0), COALESCE(MIN(CASE WHEN up = 1 THEN mn END), 0),
	COALESCE(MAX(CASE WHEN up = 1 THEN mx END), 0), COALESCE(MAX(CASE WHEN up = 1 THEN p95 END), 0)
FROM (
	SELECT target_id, bucket, up, COUNT(*) AS n, SUM(duration_ns) AS s, MIN(duration_ns) AS mn,
		MAX(duration_ns) AS mx, MAX(CASE WHEN rn = (cnt * 95 + 99) / 100 THEN duration_ns END) AS p95
	FROM (
		SELECT target_id, start - start % 60000000000 AS bucket, up, duration_ns,
			ROW_NUMBER() OVER w AS rn, COUNT(*) OVER w AS cnt
		FROM results WHERE start >= ? AND start < ?
		WINDOW w AS (PARTITION BY target_id, start - start % 60000000000, up ORDER BY duration_ns)
	)
	GROUP BY target_id, bucket, up
)
GROUP BY target_id, bucket`

// hourRollupSQL aggregates minute rollups into hours; the hour's p95 is the highest
// minute p95, an upper bound of the true one.
const hourRollupSQL = `
SELECT target_id, bucket - bucket % 3600000000000, SUM(count), SUM(failures), SUM(ok_sum_ns),
	COALESCE(MIN(CASE WHEN count > failures THEN min_ns END), 0), MAX(max_ns), MAX(p95_ns)
FROM rollup_minute WHERE bucket >= ? AND bucket < ?
GROUP BY 1, 2`

type rollupRow struct{ target, bucket, count, failures, sum, mn, mx, p95 int64 }

// Compact rolls up every minute that ended RollupDelay before now and every hour whose
// minutes are all rolled up, deletes rows past their retention and finished outbox
// deliveries past twice Config.OutboxMaxAge, and gives space back:
// an incremental vacuum when more than a quarter of the file is free pages, and a WAL
// checkpoint that truncates the WAL file.
func (db *DB) Compact(ctx context.Context, now time.Time) (store.CompactStats, error) {
	var st store.CompactStats
	minuteUntil, err := db.rollUp(ctx, "minute", time.Minute, store.MinuteCutoff(now, db.keep.RollupDelay),
		`SELECT MIN(start) FROM results WHERE start >= ?`, minuteRollupSQL, "rollup_minute", &st.MinuteRollups)
	if err != nil {
		return st, err
	}
	st.RolledUntil = minuteUntil
	if !minuteUntil.IsZero() {
		if _, err := db.rollUp(ctx, "hour", time.Hour, minuteUntil.Truncate(time.Hour),
			`SELECT MIN(bucket) FROM rollup_minute WHERE bucket >= ?`, hourRollupSQL, "rollup_hour", &st.HourRollups); err != nil {
			return st, err
		}
	}
	if st.RawDeleted, err = db.deleteBefore(ctx, `DELETE FROM results WHERE rowid IN
		(SELECT rowid FROM results WHERE start < ? LIMIT ?)`, now.Add(-db.keep.Raw)); err != nil {
		return st, err
	}
	if st.MinuteDeleted, err = db.deleteBefore(ctx, `DELETE FROM rollup_minute WHERE (target_id, bucket) IN
		(SELECT target_id, bucket FROM rollup_minute WHERE bucket < ? LIMIT ?)`, now.Add(-db.keep.Minute)); err != nil {
		return st, err
	}
	if st.HourDeleted, err = db.deleteBefore(ctx, `DELETE FROM rollup_hour WHERE (target_id, bucket) IN
		(SELECT target_id, bucket FROM rollup_hour WHERE bucket < ? LIMIT ?)`, now.Add(-db.keep.Hour)); err != nil {
		return st, err
	}
	if err := db.pruneOutbox(ctx, now); err != nil {
		return st, err
	}
	return st, db.reclaim(ctx)
}

// rollUp aggregates [progress, cutoff) with aggSQL, chunk by chunk, and upserts the
// rows into table, advancing the progress of kind in the same transaction. nextSQL
// finds the first source row at or after a time, to skip empty spans. Before the
// first source row exists there is no progress. It returns the new progress.
func (db *DB) rollUp(ctx context.Context, kind string, unit time.Duration, cutoff time.Time,
	nextSQL, aggSQL, table string, written *int64) (time.Time, error) {
	from, err := db.progress(ctx, db.read, kind)
	if err != nil {
		return time.Time{}, err
	}
	started := !from.IsZero()
	chunk := store.RollupChunk
	if unit == time.Hour {
		chunk = 24 * time.Hour
	}
	upsert := `INSERT INTO ` + table + ` (target_id, bucket, count, failures, ok_sum_ns, min_ns, max_ns, p95_ns)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target_id, bucket) DO UPDATE SET
		count = excluded.count, failures = excluded.failures, ok_sum_ns = excluded.ok_sum_ns,
		min_ns = excluded.min_ns, max_ns = excluded.max_ns, p95_ns = excluded.p95_ns`
	setProgress := func(tx *sql.Tx, to time.Time) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rollup_progress (kind, until_ns) VALUES (?, ?)
			ON CONFLICT (kind) DO UPDATE SET until_ns = excluded.until_ns`, kind, to.UnixNano())
		return err
	}
	for from.Before(cutoff) {
		// Skip spans without data in one step.
		var next sql.NullInt64
		if err := db.read.QueryRowContext(ctx, nextSQL, store.TimeNS(from)).Scan(&next); err != nil {
			return from, fmt.Errorf("sqlite: %s rollup: %w", kind, err)
		}
		if !next.Valid || !time.Unix(0, next.Int64).Before(cutoff) {
			if !started {
				return from, nil
			}
			if err := db.inTx(ctx, func(tx *sql.Tx) error { return setProgress(tx, cutoff) }); err != nil {
				return from, fmt.Errorf("sqlite: %s rollup: %w", kind, err)
			}
			return cutoff, nil
		}
		if n := time.Unix(0, next.Int64).Truncate(unit); n.After(from) {
			from = n
		}
		started = true
		to := from.Add(chunk)
		if to.After(cutoff) {
			to = cutoff
		}
		// Aggregating reads from a reader: WAL lets batch writes go on meanwhile.
		rows, err := db.aggregate(ctx, aggSQL, from, to)
		if err != nil {
			return from, fmt.Errorf("sqlite: %s rollup: %w", kind, err)
		}
		if err := db.inTx(ctx, func(tx *sql.Tx) error {
			stmt, err := tx.PrepareContext(ctx, upsert)
			if err != nil {
				return err
			}
			defer stmt.Close()
			for _, r := range rows {
				if _, err := stmt.ExecContext(ctx, r.target, r.bucket, r.count, r.failures, r.sum, r.mn, r.mx, r.p95); err != nil {
					return err
				}
			}
			return setProgress(tx, to)
		}); err != nil {
			return from, fmt.Errorf("sqlite: %s rollup: %w", kind, err)
		}
		*written += int64(len(rows))
		from = to
	}
	return from, nil
}

func (db *DB) aggregate(ctx context.Context, aggSQL string, from, to time.Time) ([]rollupRow, error) {
	rows, err := db.read.QueryContext(ctx, aggSQL, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rollupRow
	for rows.Next() {
		var r rollupRow
		if err := rows.Scan(&r.target, &r.bucket, &r.count, &r.failures, &r.sum, &r.mn, &r.mx, &r.p95); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// progress returns the end of what kind's rollup covers, zero when it has not run.
func (db *DB) progress(ctx context.Context, q querier, kind string) (time.Time, error) {
	var ns int64
	err := q.QueryRowContext(ctx, `SELECT until_ns FROM rollup_progress WHERE kind = ?`, kind).Scan(&ns)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: %s rollup progress: %w", kind, err)
	}
	return time.Unix(0, ns), nil
}

// deleteBefore runs a chunked DELETE (parameters: cutoff, chunk) until it deletes
// less than a chunk, one transaction per chunk.
func (db *DB) deleteBefore(ctx context.Context, query string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		res, err := db.write.ExecContext(ctx, query, cutoff.UnixNano(), deleteChunk)
		if err != nil {
			return total, fmt.Errorf("sqlite: retention: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("sqlite: retention: %w", err)
		}
		total += n
		if n < deleteChunk {
			return total, nil
		}
	}
}

// reclaim returns free pages to the file system when they are more than a quarter of
// the file (a smaller free list is reused by the next inserts), then truncates the WAL.
func (db *DB) reclaim(ctx context.Context) error {
	var free, pages int64
	if err := db.write.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
		return fmt.Errorf("sqlite: freelist: %w", err)
	}
	if err := db.write.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return fmt.Errorf("sqlite: page count: %w", err)
	}
	if free*4 > pages {
		if _, err := db.write.ExecContext(ctx, `PRAGMA incremental_vacuum`); err != nil {
			return fmt.Errorf("sqlite: incremental vacuum: %w", err)
		}
	}
	var busy, logPages, checkpointed int64
	if err := db.write.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &checkpointed); err != nil {
		return fmt.Errorf("sqlite: wal checkpoint: %w", err)
	}
	return nil
}

func (db *DB) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}
