package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// StatusNotes keeps the notes operators post on the public status page.
type StatusNotes interface {
	// ListStatusNotes returns every note, newest first.
	ListStatusNotes(ctx context.Context) ([]patrol.StatusNote, error)
	// AddStatusNote stores a validated note with its ID, author and time set.
	AddStatusNote(ctx context.Context, n patrol.StatusNote) error
	// DeleteStatusNote removes a note; ErrNotFound for an unknown ID.
	DeleteStatusNote(ctx context.Context, id string) error
}

type noteList struct {
	Notes []patrol.StatusNote `json:"notes"`
}

// noteRequest is the body of POST /api/v1/status/notes.
type noteRequest struct {
	Service string `json:"service"`
	State   string `json:"state"`
	Text    string `json:"text"`
}

// listNotes answers GET /api/v1/status/notes.
func (s *Server) listNotes(w http.ResponseWriter, r *http.Request, _ Identity) {
	if s.cfg.StatusNotes == nil {
		unavailable(w, "status page notes")
		return
	}
	ns, err := s.cfg.StatusNotes.ListStatusNotes(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if ns == nil {
		ns = []patrol.StatusNote{}
	}
	writeJSON(w, http.StatusOK, noteList{Notes: ns})
}

// addNote answers POST /api/v1/status/notes: the note, as stored, with 201.
func (s *Server) addNote(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.StatusNotes == nil {
		unavailable(w, "status page notes")
		return
	}
	var req noteRequest
	if bad := s.decodeBody(w, r, &req, false); bad != nil {
		writeBad(w, bad)
		return
	}
	var id [8]byte
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	n := patrol.StatusNote{ID: "n" + hex.EncodeToString(id[:]), Service: req.Service, State: req.State, Text: req.Text,
		Author: who.Name, CreatedAt: s.cfg.Now().UTC()}
	if err := n.Validate(); err != nil {
		var ne *patrol.NoteError
		if errors.As(err, &ne) {
			writeBad(w, badField(ne.Field, "%s", ne.Reason))
			return
		}
		s.fail(w, r, err)
		return
	}
	if err := s.cfg.StatusNotes.AddStatusNote(r.Context(), n); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("status note posted", "note", n.ID, "service", n.Service, "by", who.Name, "token", who.TokenID)
	writeJSON(w, http.StatusCreated, n)
}

// deleteNote answers DELETE /api/v1/status/notes/{id} with 204.
func (s *Server) deleteNote(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.StatusNotes == nil {
		unavailable(w, "status page notes")
		return
	}
	id := r.PathValue("id")
	if err := s.cfg.StatusNotes.DeleteStatusNote(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	s.cfg.Logger.Info("status note deleted", "note", id, "by", who.Name, "token", who.TokenID)
	w.WriteHeader(http.StatusNoContent)
}
