package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.AnomalyStateStore = (*DB)(nil)

// PutAnomalyStates inserts or replaces the states in one transaction, sent as one batch.
func (db *DB) PutAnomalyStates(ctx context.Context, states []store.AnomalyState) error {
	if err := store.ValidateAnomalyStates(states); err != nil {
		return fmt.Errorf("postgres: put anomaly states: %w", err)
	}
	if len(states) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, s := range states {
		b.Queue(`INSERT INTO anomaly_states (key, state, last_ns) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET state = excluded.state, last_ns = excluded.last_ns`, s.Key, s.State, s.Last.UnixNano())
	}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
	if err != nil {
		return fmt.Errorf("postgres: put anomaly states: %w", err)
	}
	return nil
}

// LoadAnomalyStates returns every state, ordered by key.
func (db *DB) LoadAnomalyStates(ctx context.Context) ([]store.AnomalyState, error) {
	out, err := queryAll(ctx, db.pool, scanAnomalyState, `SELECT key, state, last_ns FROM anomaly_states ORDER BY key`)
	if err != nil {
		return nil, fmt.Errorf("postgres: load anomaly states: %w", err)
	}
	return out, nil
}

// DeleteAnomalyStates removes the states of the keys.
func (db *DB) DeleteAnomalyStates(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if _, err := db.pool.Exec(ctx, `DELETE FROM anomaly_states WHERE key = ANY($1)`, keys); err != nil {
		return fmt.Errorf("postgres: delete anomaly states: %w", err)
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
