package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// PutLearned inserts or replaces a learned value, stamping it with the clock.
func (db *DB) PutLearned(ctx context.Context, l store.Learned) error {
	if err := store.ValidateLearned(&l); err != nil {
		return err
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO learned (namespace, key, value, updated_ns) VALUES ($1, $2, $3::json, $4)
		ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns`,
		l.Namespace, l.Key, string(l.Value), db.now().UnixNano()); err != nil {
		return fmt.Errorf("postgres: put learned %s/%s: %w", l.Namespace, l.Key, err)
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
	now := db.now().UnixNano()
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		for _, l := range ls {
			b.Queue(`INSERT INTO learned (namespace, key, value, updated_ns) VALUES ($1, $2, $3::json, $4)
		ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, updated_ns = excluded.updated_ns`,
				l.Namespace, l.Key, string(l.Value), now)
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: put %d learned values: %w", len(ls), err)
	}
	return nil
}

// GetLearned returns one learned value, or store.ErrNotFound.
func (db *DB) GetLearned(ctx context.Context, namespace, key string) (store.Learned, error) {
	l := store.Learned{Namespace: namespace, Key: key}
	var value string
	var updated int64
	err := db.pool.QueryRow(ctx, `SELECT value::text, updated_ns FROM learned WHERE namespace = $1 AND key = $2`,
		namespace, key).Scan(&value, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("postgres: learned %s/%s: %w", namespace, key, store.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("postgres: learned %s/%s: %w", namespace, key, err)
	}
	l.Value, l.UpdatedAt = []byte(value), time.Unix(0, updated)
	return l, nil
}

// ListLearned returns every value of a namespace, ordered by key.
func (db *DB) ListLearned(ctx context.Context, namespace string) ([]store.Learned, error) {
	out, err := queryAll(ctx, db.pool, sqlstore.ScanLearned(namespace), `SELECT key, value::text, updated_ns FROM learned WHERE namespace = $1 ORDER BY key`, namespace)
	if err != nil {
		return nil, fmt.Errorf("postgres: list learned %s: %w", namespace, err)
	}
	return out, nil
}
