package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.StatusNoteStore = (*DB)(nil)

// AddStatusNote stores a status page note; a taken ID is store.ErrExists.
func (db *DB) AddStatusNote(ctx context.Context, n patrol.StatusNote) error {
	r := store.NewNoteRow(n)
	if _, err := db.pool.Exec(ctx, `INSERT INTO status_notes (id, service, state, text, author, created_ns) VALUES ($1, $2, $3, $4, $5, $6)`,
		r.ID, r.Service, r.State, r.Text, r.Author, r.CreatedNs); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation {
			return fmt.Errorf("postgres: add status note %s: %w", n.ID, store.ErrExists)
		}
		return fmt.Errorf("postgres: add status note %s: %w", n.ID, err)
	}
	return nil
}

// ListStatusNotes returns every status page note, newest first.
func (db *DB) ListStatusNotes(ctx context.Context) ([]patrol.StatusNote, error) {
	out, err := queryAll(ctx, db.pool, scanNote, `SELECT id, service, state, text, author, created_ns FROM status_notes ORDER BY created_ns DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list status notes: %w", err)
	}
	return out, nil
}

// DeleteStatusNote removes a status page note, or returns store.ErrNotFound.
func (db *DB) DeleteStatusNote(ctx context.Context, id string) error {
	tag, err := db.pool.Exec(ctx, `DELETE FROM status_notes WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete status note %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: status note %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func scanNote(sc sqlstore.Scanner) (patrol.StatusNote, error) {
	var r store.NoteRow
	err := sc.Scan(&r.ID, &r.Service, &r.State, &r.Text, &r.Author, &r.CreatedNs)
	return r.Note(), err
}
