package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ notify.Store = (*DB)(nil)

const deliveryColumns = `seq, receiver, key, notification, provider, enqueued_ns,
	state, attempts, next_ns, last_ns, last_error, done_ns`

// Put adds d as a pending delivery unless one with its (Receiver, Key) exists, in
// any state. The write is fsynced before it returns. Seqs come from AUTOINCREMENT
// under SQLite's single write lock, so they increase in commit order and are never
// reused, even after Compact prunes the newest.
func (db *DB) Put(ctx context.Context, d notify.Delivery) (bool, error) {
	n, err := json.Marshal(d.Notification)
	if err != nil {
		return false, fmt.Errorf("sqlite: put delivery %s/%s: %w", d.Receiver, d.Key, err)
	}
	var inserted bool
	err = db.syncTx(ctx, func(tx *sql.Tx) error {
		var seq int64
		err := tx.QueryRowContext(ctx, `INSERT INTO outbox (receiver, key, notification, provider, enqueued_ns,
			state, attempts, next_ns, last_ns, last_error, done_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (receiver, key) DO NOTHING RETURNING seq`,
			d.Receiver, d.Key, string(n), d.Provider, store.TimeNS(d.EnqueuedAt), notify.StatePending, d.Attempts,
			store.TimeNS(d.NextAttempt), store.TimeNS(d.LastAttempt), d.LastError, store.TimeNS(d.DoneAt)).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		inserted = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: put delivery %s/%s: %w", d.Receiver, d.Key, err)
	}
	return inserted, nil
}

// dueSQL numbers each due receiver's pending deliveries in Seq order; a receiver is
// due when its oldest pending delivery (the head) is.
const dueSQL = `SELECT ` + deliveryColumns + ` FROM (
	SELECT o.*, ROW_NUMBER() OVER (PARTITION BY o.receiver ORDER BY o.seq) AS rn
	FROM (SELECT receiver, MIN(seq) AS head FROM outbox WHERE state = 'pending' GROUP BY receiver) h
	JOIN outbox hd ON hd.seq = h.head
	JOIN outbox o ON o.receiver = h.receiver AND o.state = 'pending'
	WHERE hd.next_ns <= ?
) WHERE rn <= ? ORDER BY receiver, seq`

// Due returns, for each receiver whose head delivery is due at now, the head and the
// pending deliveries after it, at most limit of them (limit ≤ 0: all).
func (db *DB) Due(ctx context.Context, now time.Time, limit int) ([]notify.Delivery, error) {
	n := int64(limit)
	if limit <= 0 {
		n = math.MaxInt64
	}
	ds, err := queryAll(ctx, db.read, sqlstore.ScanDelivery, dueSQL, now.UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("sqlite: due deliveries: %w", err)
	}
	return ds, nil
}

// Update writes the mutable fields of the delivery d.Seq, fsynced before it returns,
// or returns notify.ErrNotFound.
func (db *DB) Update(ctx context.Context, d notify.Delivery) error {
	var n int64
	err := db.syncTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = ?, next_ns = ?, last_ns = ?,
			last_error = ?, done_ns = ? WHERE seq = ?`,
			d.State, d.Attempts, store.TimeNS(d.NextAttempt), store.TimeNS(d.LastAttempt), d.LastError,
			store.TimeNS(d.DoneAt), d.Seq)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: update delivery %d: %w", d.Seq, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: update delivery %d: %w", d.Seq, notify.ErrNotFound)
	}
	return nil
}

// List returns the deliveries f selects, in Seq order.
func (db *DB) List(ctx context.Context, f notify.Filter) ([]notify.Delivery, error) {
	where := []string{"seq > ?"}
	args := []any{f.AfterSeq}
	if f.Receiver != "" {
		where = append(where, "receiver = ?")
		args = append(args, f.Receiver)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "enqueued_ns >= ?")
		args = append(args, f.Since.UnixNano())
	}
	limit := int64(-1) // SQLite's "no limit"
	if f.Limit > 0 {
		limit = int64(f.Limit)
	}
	args = append(args, limit)
	ds, err := queryAll(ctx, db.read, sqlstore.ScanDelivery, `SELECT `+deliveryColumns+` FROM outbox WHERE `+strings.Join(where, " AND ")+
		` ORDER BY seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list deliveries: %w", err)
	}
	return ds, nil
}

// pruneOutbox deletes deliveries in a final state that were enqueued and finished more
// than twice the outbox's max age before now, as notify.Store allows; until then they
// keep their key from being put again. Without a max age it keeps them.
func (db *DB) pruneOutbox(ctx context.Context, now time.Time) error {
	if db.outboxMaxAge <= 0 {
		return nil
	}
	_, err := db.deleteBefore(ctx, `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
		WHERE state <> 'pending' AND done_ns < ?1 AND enqueued_ns < ?1 LIMIT ?2)`, now.Add(-2*db.outboxMaxAge))
	return err
}
