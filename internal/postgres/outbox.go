package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ notify.Store = (*DB)(nil)

const deliveryColumns = `seq, receiver, key, notification::text, provider, enqueued_ns,
	state, attempts, next_ns, last_ns, last_error, done_ns`

// Put adds d as a pending delivery unless one with its (Receiver, Key) exists, in
// any state. Puts from every instance take one advisory lock in turn: an identity
// value is drawn at insert but seen at commit, so two racing Puts could otherwise
// become visible out of Seq order and the dispatcher send a receiver's later
// delivery before its earlier one.
func (db *DB) Put(ctx context.Context, d notify.Delivery) (bool, error) {
	n, err := json.Marshal(d.Notification)
	if err != nil {
		return false, fmt.Errorf("postgres: put delivery %s/%s: %w", d.Receiver, d.Key, err)
	}
	var seq int64
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+lockKey+` + 2)`); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		err := tx.QueryRow(ctx, `INSERT INTO outbox (receiver, key, notification, provider, enqueued_ns,
			state, attempts, next_ns, last_ns, last_error, done_ns) VALUES ($1, $2, $3::json, $4, $5, $6, $7, $8, $9, $10, $11)
			ON CONFLICT (receiver, key) DO NOTHING RETURNING seq`,
			d.Receiver, d.Key, string(n), d.Provider, store.TimeNS(d.EnqueuedAt), string(notify.StatePending), d.Attempts,
			store.TimeNS(d.NextAttempt), store.TimeNS(d.LastAttempt), []byte(d.LastError), store.TimeNS(d.DoneAt)).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: put delivery %s/%s: %w", d.Receiver, d.Key, err)
	}
	return seq != 0, nil
}

// dueSQL takes each receiver's oldest pending delivery (the head) and, when it is due,
// the receiver's first pending deliveries up to the limit ($2, NULL for none).
const dueSQL = `SELECT ` + deliveryColumns + `
FROM (SELECT DISTINCT ON (receiver) receiver AS head_receiver, next_ns AS head_next_ns
	FROM outbox WHERE state = 'pending' ORDER BY receiver, seq) h
CROSS JOIN LATERAL (SELECT * FROM outbox WHERE receiver = h.head_receiver AND state = 'pending' ORDER BY seq LIMIT $2) o
WHERE h.head_next_ns <= $1
ORDER BY receiver, seq`

// Due returns, for each receiver whose head delivery is due at now, the head and the
// pending deliveries after it, at most limit of them (limit ≤ 0: all).
func (db *DB) Due(ctx context.Context, now time.Time, limit int) ([]notify.Delivery, error) {
	var n *int64
	if limit > 0 {
		l := int64(limit)
		n = &l
	}
	ds, err := queryAll(ctx, db.pool, sqlstore.ScanDelivery, dueSQL, now.UnixNano(), n)
	if err != nil {
		return nil, fmt.Errorf("postgres: due deliveries: %w", err)
	}
	return ds, nil
}

// Update writes the mutable fields of the delivery d.Seq, or returns
// notify.ErrNotFound.
func (db *DB) Update(ctx context.Context, d notify.Delivery) error {
	tag, err := db.pool.Exec(ctx, `UPDATE outbox SET state = $1, attempts = $2, next_ns = $3, last_ns = $4,
		last_error = $5, done_ns = $6 WHERE seq = $7`,
		string(d.State), d.Attempts, store.TimeNS(d.NextAttempt), store.TimeNS(d.LastAttempt), []byte(d.LastError),
		store.TimeNS(d.DoneAt), d.Seq)
	if err != nil {
		return fmt.Errorf("postgres: update delivery %d: %w", d.Seq, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: update delivery %d: %w", d.Seq, notify.ErrNotFound)
	}
	return nil
}

// List returns the deliveries f selects, in Seq order.
func (db *DB) List(ctx context.Context, f notify.Filter) ([]notify.Delivery, error) {
	where := []string{"seq > $1"}
	args := []any{f.AfterSeq}
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$", "$"+strconv.Itoa(len(args))))
	}
	if f.Receiver != "" {
		arg("receiver = $", f.Receiver)
	}
	if len(f.States) > 0 {
		states := make([]string, len(f.States))
		for i, s := range f.States {
			states[i] = string(s)
		}
		arg("state = ANY($)", states)
	}
	if !f.Since.IsZero() {
		arg("enqueued_ns >= $", f.Since.UnixNano())
	}
	query := `SELECT ` + deliveryColumns + ` FROM outbox WHERE ` + strings.Join(where, " AND ") + ` ORDER BY seq`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		query += ` LIMIT $` + strconv.Itoa(len(args))
	}
	ds, err := queryAll(ctx, db.pool, sqlstore.ScanDelivery, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list deliveries: %w", err)
	}
	return ds, nil
}

// pruneOutbox deletes deliveries in a final state that were enqueued and finished more
// than twice the outbox's max age before now, as notify.Store allows; until then they
// keep their key from being put again. Without a max age it keeps them.
func (db *DB) pruneOutbox(ctx context.Context, conn *pgxpool.Conn, now time.Time) error {
	if db.outboxMaxAge <= 0 {
		return nil
	}
	_, err := deleteBefore(ctx, conn, `DELETE FROM outbox WHERE seq = ANY(ARRAY(SELECT seq FROM outbox
		WHERE state <> 'pending' AND done_ns < $1 AND enqueued_ns < $1 LIMIT $2))`, now.Add(-2*db.outboxMaxAge))
	return err
}
