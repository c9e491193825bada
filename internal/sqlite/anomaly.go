package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.AnomalyStateStore = (*DB)(nil)

// PutAnomalyStates inserts or replaces the states in one transaction.
func (db *DB) PutAnomalyStates(ctx context.Context, states []store.AnomalyState) error {
	if err := store.ValidateAnomalyStates(states); err != nil {
		return fmt.Errorf("sqlite: put anomaly states: %w", err)
	}
	if len(states) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put anomaly states: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO anomaly_states (key, state, last_ns) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET state = excluded.state, last_ns = excluded.last_ns`)
	if err != nil {
		return fmt.Errorf("sqlite: put anomaly states: %w", err)
	}
	defer stmt.Close()
	for _, s := range states {
		if _, err := stmt.ExecContext(ctx, s.Key, s.State, s.Last.UnixNano()); err != nil {
			return fmt.Errorf("sqlite: put anomaly state %q: %w", s.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put anomaly states: commit: %w", err)
	}
	return nil
}

// LoadAnomalyStates returns every state, ordered by key.
func (db *DB) LoadAnomalyStates(ctx context.Context) ([]store.AnomalyState, error) {
	out, err := queryAll(ctx, db.read, scanAnomalyState, `SELECT key, state, last_ns FROM anomaly_states ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load anomaly states: %w", err)
	}
	return out, nil
}

// DeleteAnomalyStates removes the states of the keys.
func (db *DB) DeleteAnomalyStates(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: delete anomaly states: %w", err)
	}
	defer tx.Rollback()
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `DELETE FROM anomaly_states WHERE key = ?`, k); err != nil {
			return fmt.Errorf("sqlite: delete anomaly state %q: %w", k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: delete anomaly states: commit: %w", err)
	}
	return nil
}

func scanAnomalyState(sc sqlstore.Scanner) (store.AnomalyState, error) {
	var s store.AnomalyState
	var last int64
	err := sc.Scan(&s.Key, &s.State, &last)
	s.Last = time.Unix(0, last)
	return s, err
}
