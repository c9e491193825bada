package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// PutLearned inserts or replaces a learned value, stamping it with the clock.
func (db *DB) PutLearned(ctx context.Context, l store.Learned) error {
	if err := store.ValidateLearned(&l); err != nil {
		return err
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO learned (namespace, key, value, updated_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns`,
		l.Namespace, l.Key, string(l.Value), db.now().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: put learned %s/%s: %w", l.Namespace, l.Key, err)
	}
	return nil
}

// PutLearnedBatch inserts or replaces learned values in one transaction: all of them
// or none.
func (db *DB) PutLearnedBatch(ctx context.Context, ls []store.Learned) error {
	for i := range ls {
		if err := store.ValidateLearned(&ls[i]); err != nil {
			return err
		}
	}
	if len(ls) == 0 {
		return nil
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: put %d learned values: %w", len(ls), err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO learned (namespace, key, value, updated_ns) VALUES (?, ?, ?, ?)
		ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns`)
	if err != nil {
		return fmt.Errorf("sqlite: put %d learned values: %w", len(ls), err)
	}
	defer stmt.Close()
	now := db.now().UnixNano()
	for _, l := range ls {
		if _, err := stmt.ExecContext(ctx, l.Namespace, l.Key, string(l.Value), now); err != nil {
			return fmt.Errorf("sqlite: put learned %s/%s: %w", l.Namespace, l.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: put %d learned values: commit: %w", len(ls), err)
	}
	return nil
}

// GetLearned returns one learned value, or store.ErrNotFound.
func (db *DB) GetLearned(ctx context.Context, namespace, key string) (store.Learned, error) {
	l := store.Learned{Namespace: namespace, Key: key}
	var value string
	var updated int64
	err := db.read.QueryRowContext(ctx, `SELECT value, updated_ns FROM learned WHERE namespace = ? AND key = ?`,
		namespace, key).Scan(&value, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("sqlite: learned %s/%s: %w", namespace, key, store.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("sqlite: learned %s/%s: %w", namespace, key, err)
	}
	l.Value, l.UpdatedAt = []byte(value), time.Unix(0, updated)
	return l, nil
}

// ListLearned returns every value of a namespace, ordered by key.
func (db *DB) ListLearned(ctx context.Context, namespace string) ([]store.Learned, error) {
	out, err := queryAll(ctx, db.read, sqlstore.ScanLearned(namespace), `SELECT key, value, updated_ns FROM learned WHERE namespace = ? ORDER BY key`, namespace)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list learned %s: %w", namespace, err)
	}
	return out, nil
}
