package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

const stateColumns = `target, status, flapping, since_ns, last_ns, last_class, last_duration_ns, last_error, labels, updated_ns`

// PutStates inserts or replaces the states in one transaction, sent as one batch. A
// zero UpdatedAt is stamped with the clock.
func (db *DB) PutStates(ctx context.Context, states []store.State) error {
	if len(states) == 0 {
		return nil
	}
	now := db.now()
	var b pgx.Batch
	for i := range states {
		s := &states[i]
		if err := store.ValidateState(s); err != nil {
			return err
		}
		labels, err := store.EncodeLabels(s.Labels)
		if err != nil {
			return fmt.Errorf("postgres: state of %s: %w", s.Target, err)
		}
		updated := s.UpdatedAt
		if updated.IsZero() {
			updated = now
		}
		b.Queue(`INSERT INTO states (`+stateColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (target) DO UPDATE SET status = excluded.status, flapping = excluded.flapping,
			since_ns = excluded.since_ns, last_ns = excluded.last_ns, last_class = excluded.last_class,
			last_duration_ns = excluded.last_duration_ns, last_error = excluded.last_error,
			labels = excluded.labels, updated_ns = excluded.updated_ns`,
			s.Target, string(s.Status), s.Flapping, store.TimeNS(s.Since), store.TimeNS(s.Last.Time),
			string(s.Last.Class), int64(s.Last.Duration), s.Last.Error, labels, store.TimeNS(updated))
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
func (db *DB) States(ctx context.Context) ([]store.State, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+stateColumns+` FROM states ORDER BY target`)
	if err != nil {
		return nil, fmt.Errorf("postgres: states: %w", err)
	}
	defer rows.Close()
	var out []store.State
	for rows.Next() {
		s, err := scanState(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: states: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: states: %w", err)
	}
	return out, nil
}

// State returns the latest state of one target, or store.ErrNotFound.
func (db *DB) State(ctx context.Context, target string) (store.State, error) {
	s, err := scanState(db.pool.QueryRow(ctx, `SELECT `+stateColumns+` FROM states WHERE target = $1`, target))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.State{}, fmt.Errorf("postgres: state of %s: %w", target, store.ErrNotFound)
	}
	if err != nil {
		return store.State{}, fmt.Errorf("postgres: state of %s: %w", target, err)
	}
	return s, nil
}

func scanState(sc pgx.Row) (store.State, error) {
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
