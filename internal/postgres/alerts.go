package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// Alert records and silences are kept as JSON, whole, under their ID. Compact leaves
// them alone: the engine deletes resolved alerts and ended silences itself once its
// retention has passed, and the contract has LoadAlerts return everything not deleted.

var (
	_ alert.Store           = (*DB)(nil)
	_ alert.AlertBatchStore = (*DB)(nil)
)

const upsertAlert = `INSERT INTO alerts (id, record, updated_ns) VALUES ($1, $2::json, $3)
	ON CONFLICT (id) DO UPDATE SET record = excluded.record, updated_ns = excluded.updated_ns`

// SaveAlert inserts or replaces the record with ID r.Alert.ID.
func (db *DB) SaveAlert(ctx context.Context, r alert.Record) error {
	if r.Alert.ID == "" {
		return errors.New("postgres: save alert: empty ID")
	}
	if err := db.saveJSON(ctx, upsertAlert, r.Alert.ID, r); err != nil {
		return fmt.Errorf("postgres: save alert %s: %w", r.Alert.ID, err)
	}
	return nil
}

// SaveAlerts saves the records of save and deletes the IDs of del in one transaction,
// sent as one batch of statements.
func (db *DB) SaveAlerts(ctx context.Context, save []alert.Record, del []string) error {
	var b pgx.Batch
	now := db.now().UnixNano()
	for i := range save {
		if save[i].Alert.ID == "" {
			return errors.New("postgres: save alerts: empty ID")
		}
		doc, err := json.Marshal(save[i])
		if err != nil {
			return fmt.Errorf("postgres: save alert %s: %w", save[i].Alert.ID, err)
		}
		b.Queue(upsertAlert, save[i].Alert.ID, string(doc), now)
	}
	for _, id := range del {
		b.Queue(`DELETE FROM alerts WHERE id = $1`, id)
	}
	if b.Len() == 0 {
		return ctx.Err()
	}
	if err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &b).Close()
	}); err != nil {
		return fmt.Errorf("postgres: save %d and delete %d alerts: %w", len(save), len(del), err)
	}
	return nil
}

// DeleteAlert removes the record with this ID; a missing ID is not an error.
func (db *DB) DeleteAlert(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM alerts WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete alert %s: %w", id, err)
	}
	return nil
}

// LoadAlerts returns every saved record, ordered by ID.
func (db *DB) LoadAlerts(ctx context.Context) ([]alert.Record, error) {
	out, err := loadJSON[alert.Record](ctx, db.pool, `SELECT id, record::text FROM alerts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: load alerts: %w", err)
	}
	return out, nil
}

// SaveSilence inserts or replaces the silence with ID s.ID.
func (db *DB) SaveSilence(ctx context.Context, s patrol.Silence) error {
	if s.ID == "" {
		return errors.New("postgres: save silence: empty ID")
	}
	if err := db.saveJSON(ctx, `INSERT INTO silences (id, silence, updated_ns) VALUES ($1, $2::json, $3)
		ON CONFLICT (id) DO UPDATE SET silence = excluded.silence, updated_ns = excluded.updated_ns`, s.ID, s); err != nil {
		return fmt.Errorf("postgres: save silence %s: %w", s.ID, err)
	}
	return nil
}

// DeleteSilence removes the silence with this ID; a missing ID is not an error.
func (db *DB) DeleteSilence(ctx context.Context, id string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM silences WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: delete silence %s: %w", id, err)
	}
	return nil
}

// LoadSilences returns every saved silence, ordered by ID.
func (db *DB) LoadSilences(ctx context.Context) ([]patrol.Silence, error) {
	out, err := loadJSON[patrol.Silence](ctx, db.pool, `SELECT id, silence::text FROM silences ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: load silences: %w", err)
	}
	return out, nil
}

// saveJSON runs upsert with the parameters id, v as JSON and the clock's time.
func (db *DB) saveJSON(ctx context.Context, upsert, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = db.pool.Exec(ctx, upsert, id, string(b), db.now().UnixNano())
	return err
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// loadJSON decodes the second column of every row of query, naming the first in errors.
func loadJSON[T any](ctx context.Context, q querier, query string) ([]T, error) {
	rows, err := q.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.CollectJSON[T](rows)
}
