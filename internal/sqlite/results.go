package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// insertRows is how many results one INSERT statement carries: 8 columns each, well
// under SQLite's limit on bound parameters.
const insertRows = 128

// insertSizes are the row counts of the INSERTs prepared once, largest first. A batch
// is written with the largest that fits, then smaller ones: at low rates every batch
// is a few results, and preparing an INSERT of exactly that many each time was a third
// of the writer's CPU.
var insertSizes = [...]int{insertRows, 16, 1}

const resultColumns = 8

// WriteResults stores results in one transaction, as multi-row INSERTs prepared once
// (see insertSizes). It does not retain the slice.
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
		k := 0
		for insertSizes[k] > len(results) {
			k++
		}
		n := insertSizes[k]
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
		if _, err = tx.StmtContext(ctx, db.inserts[k]).ExecContext(ctx, args...); err != nil {
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
	out, err := queryAll(ctx, db.read, sqlstore.ScanResult(target), `SELECT start, duration_ns, class, error, remote_addr, extra
		FROM results WHERE target_id = ? ORDER BY start DESC LIMIT ?`, id, n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: recent results of %s: %w", target, err)
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
	return h.db.progress(ctx, h.db.read, kind)
}

func (h history) Samples(ctx context.Context, from, to time.Time) ([]store.Sample, error) {
	out, err := queryAll(ctx, h.db.read, sqlstore.ScanSample, `SELECT start, duration_ns, up FROM results
		WHERE target_id = ? AND start >= ? AND start < ? ORDER BY start`, h.id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	return out, nil
}

func (h history) Rollups(ctx context.Context, res patrol.Resolution, from, to time.Time) ([]patrol.Point, error) {
	table, _ := sqlstore.Rollup(res)
	out, err := queryAll(ctx, h.db.read, sqlstore.ScanRollup, `SELECT `+sqlstore.RollupColumns+` FROM `+table+`
		WHERE target_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`, h.id, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	return out, nil
}
