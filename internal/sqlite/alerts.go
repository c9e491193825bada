package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

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

const upsertAlert = `INSERT INTO alerts (id, record, updated_ns) VALUES (?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET record = excluded.record, updated_ns = excluded.updated_ns`

// SaveAlert inserts or replaces the record with ID r.Alert.ID; the write is fsynced
// before it returns.
func (db *DB) SaveAlert(ctx context.Context, r alert.Record) error {
	if r.Alert.ID == "" {
		return errors.New("sqlite: save alert: empty ID")
	}
	if err := db.saveJSON(ctx, upsertAlert, r.Alert.ID, r); err != nil {
		return fmt.Errorf("sqlite: save alert %s: %w", r.Alert.ID, err)
	}
	return nil
}

// SaveAlerts saves the records of save and deletes the IDs of del in one transaction,
// fsynced before it returns.
func (db *DB) SaveAlerts(ctx context.Context, save []alert.Record, del []string) error {
	docs := make([]string, len(save))
	for i := range save {
		if save[i].Alert.ID == "" {
			return errors.New("sqlite: save alerts: empty ID")
		}
		b, err := json.Marshal(save[i])
		if err != nil {
			return fmt.Errorf("sqlite: save alert %s: %w", save[i].Alert.ID, err)
		}
		docs[i] = string(b)
	}
	now := db.now().UnixNano()
	if err := db.syncTx(ctx, func(tx *sql.Tx) error {
		if len(save) > 0 {
			up, err := tx.PrepareContext(ctx, upsertAlert)
			if err != nil {
				return err
			}
			defer up.Close()
			for i := range save {
				if _, err := up.ExecContext(ctx, save[i].Alert.ID, docs[i], now); err != nil {
					return fmt.Errorf("alert %s: %w", save[i].Alert.ID, err)
				}
			}
		}
		if len(del) > 0 {
			rm, err := tx.PrepareContext(ctx, `DELETE FROM alerts WHERE id = ?`)
			if err != nil {
				return err
			}
			defer rm.Close()
			for _, id := range del {
				if _, err := rm.ExecContext(ctx, id); err != nil {
					return fmt.Errorf("delete alert %s: %w", id, err)
				}
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("sqlite: save %d and delete %d alerts: %w", len(save), len(del), err)
	}
	return nil
}

// DeleteAlert removes the record with this ID; a missing ID is not an error.
func (db *DB) DeleteAlert(ctx context.Context, id string) error {
	if err := db.syncTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM alerts WHERE id = ?`, id)
		return err
	}); err != nil {
		return fmt.Errorf("sqlite: delete alert %s: %w", id, err)
	}
	return nil
}

// LoadAlerts returns every saved record, ordered by ID.
func (db *DB) LoadAlerts(ctx context.Context) ([]alert.Record, error) {
	out, err := loadJSON[alert.Record](ctx, db.read, `SELECT id, record FROM alerts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load alerts: %w", err)
	}
	return out, nil
}

// SaveSilence inserts or replaces the silence with ID s.ID; the write is fsynced
// before it returns.
func (db *DB) SaveSilence(ctx context.Context, s patrol.Silence) error {
	if s.ID == "" {
		return errors.New("sqlite: save silence: empty ID")
	}
	if err := db.saveJSON(ctx, `INSERT INTO silences (id, silence, updated_ns) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET silence = excluded.silence, updated_ns = excluded.updated_ns`, s.ID, s); err != nil {
		return fmt.Errorf("sqlite: save silence %s: %w", s.ID, err)
	}
	return nil
}

// DeleteSilence removes the silence with this ID; a missing ID is not an error.
func (db *DB) DeleteSilence(ctx context.Context, id string) error {
	if err := db.syncTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM silences WHERE id = ?`, id)
		return err
	}); err != nil {
		return fmt.Errorf("sqlite: delete silence %s: %w", id, err)
	}
	return nil
}

// LoadSilences returns every saved silence, ordered by ID.
func (db *DB) LoadSilences(ctx context.Context) ([]patrol.Silence, error) {
	out, err := loadJSON[patrol.Silence](ctx, db.read, `SELECT id, silence FROM silences ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: load silences: %w", err)
	}
	return out, nil
}

// saveJSON runs upsert with the parameters id, v as JSON and the clock's time.
func (db *DB) saveJSON(ctx context.Context, upsert, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return db.syncTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, upsert, id, string(b), db.now().UnixNano())
		return err
	})
}

// loadJSON decodes the second column of every row of query, naming the first in errors.
func loadJSON[T any](ctx context.Context, q *sql.DB, query string) ([]T, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.CollectJSON[T](rows)
}
