package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// PutStates inserts or replaces the states in one transaction, sent as one batch. A
// zero UpdatedAt is stamped with the clock.
func (db *DB) PutStates(ctx context.Context, states []patrol.TargetState) error {
	if len(states) == 0 {
		return nil
	}
	now := db.now()
	var b pgx.Batch
	for i := range states {
		args, err := sqlstore.StateArgs(&states[i], now)
		if err != nil {
			return fmt.Errorf("postgres: put states: %w", err)
		}
		b.Queue(`INSERT INTO states (`+sqlstore.StateColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (target) DO UPDATE SET status = excluded.status, flapping = excluded.flapping,
			since_ns = excluded.since_ns, last_ns = excluded.last_ns, last_class = excluded.last_class,
			last_duration_ns = excluded.last_duration_ns, last_error = excluded.last_error,
			labels = excluded.labels, updated_ns = excluded.updated_ns`, args...)
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
	if err != nil {
		return fmt.Errorf("postgres: put states: %w", err)
	}
	return nil
}

// DeleteStates forgets the states of the targets.
func (db *DB) DeleteStates(ctx context.Context, targets []string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM states WHERE target = ANY($1)`, targets); err != nil {
		return fmt.Errorf("postgres: delete states: %w", err)
	}
	return nil
}

// States returns the latest state of every target, ordered by target.
func (db *DB) States(ctx context.Context) ([]patrol.TargetState, error) {
	out, err := queryAll(ctx, db.pool, sqlstore.ScanState, `SELECT `+sqlstore.StateColumns+` FROM states ORDER BY target`)
	if err != nil {
		return nil, fmt.Errorf("postgres: states: %w", err)
	}
	return out, nil
}

// State returns the latest state of one target, or store.ErrNotFound.
func (db *DB) State(ctx context.Context, target string) (patrol.TargetState, error) {
	s, err := sqlstore.ScanState(db.pool.QueryRow(ctx, `SELECT `+sqlstore.StateColumns+` FROM states WHERE target = $1`, target))
	if errors.Is(err, pgx.ErrNoRows) {
		return patrol.TargetState{}, fmt.Errorf("postgres: state of %s: %w", target, store.ErrNotFound)
	}
	if err != nil {
		return patrol.TargetState{}, fmt.Errorf("postgres: state of %s: %w", target, err)
	}
	return s, nil
}
