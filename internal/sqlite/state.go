package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// PutStates inserts or replaces the states in one transaction. A zero UpdatedAt is
// stamped with the clock.
func (db *DB) PutStates(ctx context.Context, states []patrol.TargetState) error {
	if len(states) == 0 {
		return nil
	}
	now := db.now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO states (`+sqlstore.StateColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET
			status = excluded.status, flapping = excluded.flapping, since_ns = excluded.since_ns,
			last_ns = excluded.last_ns, last_class = excluded.last_class,
			last_duration_ns = excluded.last_duration_ns, last_error = excluded.last_error,
			labels = excluded.labels, updated_ns = excluded.updated_ns`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for i := range states {
			args, err := sqlstore.StateArgs(&states[i], now)
			if err != nil {
				return err
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("state of %s: %w", states[i].Target, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: put states: %w", err)
	}
	return nil
}

// DeleteStates forgets the states of the targets.
func (db *DB) DeleteStates(ctx context.Context, targets []string) error {
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, t := range targets {
			if _, err := tx.ExecContext(ctx, `DELETE FROM states WHERE target = ?`, t); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete states: %w", err)
	}
	return nil
}

// States returns the latest state of every target, ordered by target.
func (db *DB) States(ctx context.Context) ([]patrol.TargetState, error) {
	out, err := queryAll(ctx, db.read, sqlstore.ScanState, `SELECT `+sqlstore.StateColumns+` FROM states ORDER BY target`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: states: %w", err)
	}
	return out, nil
}

// State returns the latest state of one target, or store.ErrNotFound.
func (db *DB) State(ctx context.Context, target string) (patrol.TargetState, error) {
	s, err := sqlstore.ScanState(db.read.QueryRowContext(ctx, `SELECT `+sqlstore.StateColumns+` FROM states WHERE target = ?`, target))
	if errors.Is(err, sql.ErrNoRows) {
		return patrol.TargetState{}, fmt.Errorf("sqlite: state of %s: %w", target, store.ErrNotFound)
	}
	if err != nil {
		return patrol.TargetState{}, fmt.Errorf("sqlite: state of %s: %w", target, err)
	}
	return s, nil
}
