package sqlite

import (
	"context"
	"fmt"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.StatusNoteStore = (*DB)(nil)

// AddStatusNote stores a status page note; a taken ID is store.ErrExists.
func (db *DB) AddStatusNote(ctx context.Context, n patrol.StatusNote) error {
	r := store.NewNoteRow(n)
	if _, err := db.write.ExecContext(ctx, `INSERT INTO status_notes (id, service, state, text, author, created_ns) VALUES (?, ?, ?, ?, ?, ?)`,
		r.ID, r.Service, r.State, r.Text, r.Author, r.CreatedNs); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("sqlite: add status note %s: %w", n.ID, store.ErrExists)
		}
		return fmt.Errorf("sqlite: add status note %s: %w", n.ID, err)
	}
	return nil
}

// ListStatusNotes returns every status page note, newest first.
func (db *DB) ListStatusNotes(ctx context.Context) ([]patrol.StatusNote, error) {
	out, err := queryAll(ctx, db.read, scanNote, `SELECT id, service, state, text, author, created_ns FROM status_notes ORDER BY created_ns DESC, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list status notes: %w", err)
	}
	return out, nil
}

// DeleteStatusNote removes a status page note, or returns store.ErrNotFound.
func (db *DB) DeleteStatusNote(ctx context.Context, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM status_notes WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("sqlite: delete status note %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("sqlite: status note %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func scanNote(sc sqlstore.Scanner) (patrol.StatusNote, error) {
	var r store.NoteRow
	err := sc.Scan(&r.ID, &r.Service, &r.State, &r.Text, &r.Author, &r.CreatedNs)
	return r.Note(), err
}
