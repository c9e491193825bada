package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portpatrol/portpatrol/internal/store"
)

// deleteChunk is how many rows one retention DELETE removes, keeping transactions
// and their WAL bursts small.
const deleteChunk = 50000

// minuteRollupSQL aggregates raw results into minutes. Latency figures are over
// successful results; percentile_disc is the nearest rank, like store.NearestRank.
const minuteRollupSQL = `
INSERT INTO rollup_minute (target_id, bucket, count, failures, ok_sum_ns, min_ns, max_ns, p95_ns)
SELECT target_id, start_ns - start_ns % 60000000000, count(*), count(*) FILTER (WHERE NOT up),
	COALESCE(sum(duration_ns) FILTER (WHERE up), 0), COALESCE(min(duration_ns) FILTER (WHERE up), 0),
	COALESCE(max(duration_ns) FILTER (WHERE up), 0),
	COALESCE(percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ns) FILTER (WHERE up), 0)
FROM results WHERE start_ns >= $1 AND start_ns < $2
GROUP BY 1, 2
ON CONFLICT (target_id, bucket) DO UPDATE SET count = excluded.count, failures = excluded.failures,
	ok_sum_ns = excluded.ok_sum_ns, min_ns = excluded.min_ns, max_ns = excluded.max_ns, p95_ns = excluded.p95_ns`

// hourRollupSQL aggregates minute rollups into hours; the hour's p95 is the highest
// minute p95, an upper bound of the true one.
const hourRollupSQL = `
INSERT INTO rollup_hour (target_id, bucket, count, failures, ok_sum_ns, min_ns, max_ns, p95_ns)
SELECT target_id, bucket - bucket % 3600000000000, sum(count), sum(failures), sum(ok_sum_ns),
	COALESCE(min(min_ns) FILTER (WHERE count > failures), 0), max(max_ns), max(p95_ns)
FROM rollup_minute WHERE bucket >= $1 AND bucket < $2
GROUP BY 1, 2
ON CONFLICT (target_id, bucket) DO UPDATE SET count = excluded.count, failures = excluded.failures,
	ok_sum_ns = excluded.ok_sum_ns, min_ns = excluded.min_ns, max_ns = excluded.max_ns, p95_ns = excluded.p95_ns`

// Compact rolls up every minute that ended RollupDelay before now and every hour whose
// minutes are all rolled up, and deletes rows past their retention and finished outbox
// deliveries past twice Config.OutboxMaxAge; autovacuum gives the space back. Among
// instances sharing the database one compacts at a time: when another holds the
// compaction lock, Compact returns zero stats at once.
func (db *DB) Compact(ctx context.Context, now time.Time) (store.CompactStats, error) {
	var st store.CompactStats
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return st, fmt.Errorf("postgres: compact: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(`+lockKey+` + 1)`).Scan(&locked); err != nil {
		return st, fmt.Errorf("postgres: compact: lock: %w", err)
	}
	if !locked {
		return st, nil
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockKey+` + 1)`)

	minuteUntil, err := db.rollUp(ctx, conn, "minute", time.Minute, store.MinuteCutoff(now, db.keep.RollupDelay),
		`SELECT MIN(start_ns) FROM results WHERE start_ns >= $1`, minuteRollupSQL, &st.MinuteRollups)
	if err != nil {
		return st, err
	}
	st.RolledUntil = minuteUntil
	if !minuteUntil.IsZero() {
		if _, err := db.rollUp(ctx, conn, "hour", time.Hour, minuteUntil.Truncate(time.Hour),
			`SELECT MIN(bucket) FROM rollup_minute WHERE bucket >= $1`, hourRollupSQL, &st.HourRollups); err != nil {
			return st, err
		}
	}
	if st.RawDeleted, err = deleteBefore(ctx, conn, `DELETE FROM results WHERE ctid = ANY(ARRAY(
		SELECT ctid FROM results WHERE start_ns < $1 LIMIT $2))`, now.Add(-db.keep.Raw)); err != nil {
		return st, err
	}
	if st.MinuteDeleted, err = deleteBefore(ctx, conn, `DELETE FROM rollup_minute WHERE (target_id, bucket) IN (
		SELECT target_id, bucket FROM rollup_minute WHERE bucket < $1 LIMIT $2)`, now.Add(-db.keep.Minute)); err != nil {
		return st, err
	}
	if st.HourDeleted, err = deleteBefore(ctx, conn, `DELETE FROM rollup_hour WHERE (target_id, bucket) IN (
		SELECT target_id, bucket FROM rollup_hour WHERE bucket < $1 LIMIT $2)`, now.Add(-db.keep.Hour)); err != nil {
		return st, err
	}
	return st, db.pruneOutbox(ctx, conn, now)
}

// rollUp runs aggSQL over [progress, cutoff) chunk by chunk, advancing the progress of
// kind in the same transaction. nextSQL finds the first source row at or after a
// time, to skip empty spans. Before the first source row exists there is no progress.
// It returns the new progress.
func (db *DB) rollUp(ctx context.Context, conn *pgxpool.Conn, kind string, unit time.Duration, cutoff time.Time,
	nextSQL, aggSQL string, written *int64) (time.Time, error) {
	from, err := db.progress(ctx, kind)
	if err != nil {
		return time.Time{}, err
	}
	started := !from.IsZero()
	chunk := store.RollupChunk
	if unit == time.Hour {
		chunk = 24 * time.Hour
	}
	setProgress := func(tx pgx.Tx, to time.Time) error {
		_, err := tx.Exec(ctx, `INSERT INTO rollup_progress (kind, until_ns) VALUES ($1, $2)
			ON CONFLICT (kind) DO UPDATE SET until_ns = excluded.until_ns`, kind, to.UnixNano())
		return err
	}
	for from.Before(cutoff) {
		var next *int64
		if err := conn.QueryRow(ctx, nextSQL, store.TimeNS(from)).Scan(&next); err != nil {
			return from, fmt.Errorf("postgres: %s rollup: %w", kind, err)
		}
		if next == nil || !time.Unix(0, *next).Before(cutoff) {
			if !started {
				return from, nil
			}
			if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return setProgress(tx, cutoff) }); err != nil {
				return from, fmt.Errorf("postgres: %s rollup: %w", kind, err)
			}
			return cutoff, nil
		}
		if n := time.Unix(0, *next).Truncate(unit); n.After(from) {
			from = n
		}
		started = true
		to := from.Add(chunk)
		if to.After(cutoff) {
			to = cutoff
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, aggSQL, from.UnixNano(), to.UnixNano())
			if err != nil {
				return err
			}
			*written += tag.RowsAffected()
			return setProgress(tx, to)
		})
		if err != nil {
			return from, fmt.Errorf("postgres: %s rollup: %w", kind, err)
		}
		from = to
	}
	return from, nil
}

// deleteBefore runs a chunked DELETE (parameters: cutoff, chunk) until it deletes
// less than a chunk.
func deleteBefore(ctx context.Context, conn *pgxpool.Conn, query string, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := conn.Exec(ctx, query, cutoff.UnixNano(), deleteChunk)
		if err != nil {
			return total, fmt.Errorf("postgres: retention: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < deleteChunk {
			return total, nil
		}
	}
}
