package store

import (
	"context"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// StatusNoteStore keeps the notes operators post on the public status page, so that
// they survive restarts and are shared by the instances of one store.
type StatusNoteStore interface {
	// AddStatusNote stores n; a note whose ID is taken returns ErrExists.
	AddStatusNote(ctx context.Context, n patrol.StatusNote) error
	// ListStatusNotes returns every note, newest first.
	ListStatusNotes(ctx context.Context) ([]patrol.StatusNote, error)
	// DeleteStatusNote removes a note, or returns ErrNotFound.
	DeleteStatusNote(ctx context.Context, id string) error
}

// NoteRow is a status note as both SQL backends store it: the time as Unix
// nanoseconds. It is the row mapping the backends share.
type NoteRow struct {
	ID, Service, State, Text, Author string
	CreatedNs                        int64
}

// NewNoteRow returns the row of n.
func NewNoteRow(n patrol.StatusNote) NoteRow {
	return NoteRow{ID: n.ID, Service: n.Service, State: n.State, Text: n.Text, Author: n.Author, CreatedNs: n.CreatedAt.UnixNano()}
}

// Note returns the note of the row, its time in UTC.
func (r NoteRow) Note() patrol.StatusNote {
	return patrol.StatusNote{ID: r.ID, Service: r.Service, State: r.State, Text: r.Text, Author: r.Author,
		CreatedAt: time.Unix(0, r.CreatedNs).UTC()}
}
