package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

const stateColumns = `target, status, flapping, since_ns, last_ns, last_class, last_duration_ns, last_error, labels, updated_ns`

// PutStates inserts or replaces the states in one transaction. A zero UpdatedAt is
// stamped with the clock.
func (db *DB) PutStates(ctx context.Context, states []store.State) error {
	if len(states) == 0 {
		return nil
	}
	now := db.now()
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO states (`+stateColumns+`)
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
			s := &states[i]
			if err := store.ValidateState(s); err != nil {
				return err
			}
			labels, err := store.EncodeLabels(s.Labels)
			if err != nil {
				return fmt.Errorf("state of %s: %w", s.Target, err)
			}
			updated := s.UpdatedAt
			if updated.IsZero() {
				updated = now
			}
			if _, err := stmt.ExecContext(ctx, s.Target, string(s.Status), s.Flapping, store.TimeNS(s.Since),
				store.TimeNS(s.Last.Time), string(s.Last.Class), int64(s.Last.Duration), s.Last.Error,
				labels, store.TimeNS(updated)); err != nil {
				return fmt.Errorf("state of %s: %w", s.Target, err)
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
func (db *DB) States(ctx context.Context) ([]store.State, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+stateColumns+` FROM states ORDER BY target`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: states: %w", err)
	}
	defer rows.Close()
	var out []store.State
	for rows.Next() {
		s, err := scanState(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: states: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: states: %w", err)
	}
	return out, nil
}

// State returns the latest state of one target, or store.ErrNotFound.
func (db *DB) State(ctx context.Context, target string) (store.State, error) {
	s, err := scanState(db.read.QueryRowContext(ctx, `SELECT `+stateColumns+` FROM states WHERE target = ?`, target))
	if errors.Is(err, sql.ErrNoRows) {
		return store.State{}, fmt.Errorf("sqlite: state of %s: %w", target, store.ErrNotFound)
	}
	if err != nil {
		return store.State{}, fmt.Errorf("sqlite: state of %s: %w", target, err)
	}
	return s, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanState(sc scanner) (store.State, error) {
	var s store.State
	var status, class, labels string
	var since, last, dur, updated int64
	if err := sc.Scan(&s.Target, &status, &s.Flapping, &since, &last, &class, &dur, &s.Last.Error, &labels, &updated); err != nil {
		return s, err
	}
	s.Status, s.Last.Class, s.Last.Duration = store.Status(status), patrol.Class(class), time.Duration(dur)
	s.Since, s.Last.Time, s.UpdatedAt = store.NSTime(since), store.NSTime(last), store.NSTime(updated)
	var err error
	s.Labels, err = store.DecodeLabels(labels)
	return s, err
}
