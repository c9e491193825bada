package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
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
	out, err := queryAll(ctx, db.pool, sqlstore.ScanResult(target), `SELECT start_ns, duration_ns, class, error, remote_addr, extra::text
		FROM results WHERE target_id = $1 ORDER BY start_ns DESC LIMIT $2`, id, n)
	if err != nil {
		return nil, fmt.Errorf("postgres: recent results of %s: %w", target, err)
	}
	return out, nil
}

// History returns the series of q.Target. Minute and hour series end with points
// bucketed from raw results for the span not rolled up yet.
func (db *DB) History(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error) {
	return store.AssembleHistory(ctx, q, db.now(), db.keep, func(ctx context.Context, target string) (store.HistorySource, bool, error) {
		id, ok, err := db.lookupTarget(ctx, target)
		return history{db: db, id: id}, ok, err
	})
}

// history reads the rows of one target for store.AssembleHistory.
type history struct {
	db *DB
	id int64
}

var _ store.HistorySource = history{}

func (h history) RolledUntil(ctx context.Context, res patrol.Resolution) (time.Time, error) {
	_, kind := sqlstore.Rollup(res)
	return h.db.progress(ctx, kind)
}

func (h history) Samples(ctx context.Context, from, to time.Time) ([]store.Sample, error) {
	out, err := queryAll(ctx, h.db.pool, sqlstore.ScanSample, `SELECT start_ns, duration_ns, up FROM results
		WHERE target_id = $1 AND start_ns >= $2 AND start_ns < $3 ORDER BY start_ns`, h.id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	return out, nil
}

func (h history) Rollups(ctx context.Context, res patrol.Resolution, from, to time.Time) ([]patrol.Point, error) {
	table, _ := sqlstore.Rollup(res)
	out, err := queryAll(ctx, h.db.pool, sqlstore.ScanRollup, `SELECT `+sqlstore.RollupColumns+` FROM `+table+`
		WHERE target_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket`, h.id, from.UnixNano(), to.UnixNano())
	if err != nil {
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
