package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// memNotes keeps status notes in memory for the API tests.
type memNotes struct {
	mu    sync.Mutex
	notes []patrol.StatusNote
}

var _ StatusNotes = (*memNotes)(nil)

// seedNote is the note "n1" that the route tests delete.
var seedNote = patrol.StatusNote{ID: "n1", Service: "orders", State: "identified", Text: "Orders are slow; a fix is rolling out.",
	Author: "alice", CreatedAt: t0.Add(-time.Hour)}

func newMemNotes() *memNotes { return &memNotes{notes: []patrol.StatusNote{seedNote}} }

func (m *memNotes) ListStatusNotes(context.Context) ([]patrol.StatusNote, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.notes)
	slices.SortFunc(out, func(a, b patrol.StatusNote) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

func (m *memNotes) AddStatusNote(_ context.Context, n patrol.StatusNote) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.notes = append(m.notes, n)
	return nil
}

func (m *memNotes) DeleteStatusNote(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.notes, func(n patrol.StatusNote) bool { return n.ID == id })
	if i < 0 {
		return fmt.Errorf("status note %s: %w", id, ErrNotFound)
	}
	m.notes = slices.Delete(m.notes, i, i+1)
	return nil
}

// reseed puts the note n1 back, for a test that deletes it more than once.
func reseed(s *Server) {
	m := s.cfg.StatusNotes.(*memNotes)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.ContainsFunc(m.notes, func(n patrol.StatusNote) bool { return n.ID == "n1" }) {
		m.notes = append(m.notes, seedNote)
	}
}

func TestStatusNotes(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	rec := do(t, s, "POST", "/api/v1/status/notes", operatorSecret, `{"service":"shop","state":"monitoring","text":"  Checkout works again; watching.  "}`)
	if rec.Code != http.StatusCreated {
		t.Fatalf("post: got %d, want 201: %s", rec.Code, rec.Body)
	}
	var n patrol.StatusNote
	if err := json.Unmarshal(rec.Body.Bytes(), &n); err != nil {
		t.Fatal(err)
	}
	if n.ID == "" || n.Author != "alice" || n.Text != "Checkout works again; watching." || !n.CreatedAt.Equal(t0) {
		t.Errorf("created note %+v", n)
	}
	rec = do(t, s, "GET", "/api/v1/status/notes", viewerSecret, "")
	var list noteList
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Notes) != 2 || list.Notes[0].ID != n.ID || list.Notes[1].ID != "n1" {
		t.Errorf("got %+v, want the new note then n1", list.Notes)
	}
	if rec := do(t, s, "DELETE", "/api/v1/status/notes/"+n.ID, operatorSecret, ""); rec.Code != http.StatusNoContent {
		t.Errorf("delete: got %d: %s", rec.Code, rec.Body)
	}
	if rec := do(t, s, "DELETE", "/api/v1/status/notes/"+n.ID, operatorSecret, ""); rec.Code != http.StatusNotFound {
		t.Errorf("second delete: got %d, want 404", rec.Code)
	}
	if rec := do(t, s, "POST", "/api/v1/status/notes", viewerSecret, `{"text":"x"}`); rec.Code != http.StatusForbidden {
		t.Errorf("viewer post: got %d, want 403", rec.Code)
	}

	bad := []struct{ body, field, msg string }{
		{`{"text":""}`, "text", "empty"},
		{`{"text":"ok","state":"fixed"}`, "state", `"fixed": want investigating, identified, monitoring, resolved`},
		{`{"text":"` + strings.Repeat("x", patrol.MaxNoteText+1) + `"}`, "text", "2001 characters, at most 2000"},
		{`{"text":"ok","colour":"red"}`, "colour", "unknown field"},
	}
	for _, b := range bad {
		rec := do(t, s, "POST", "/api/v1/status/notes", operatorSecret, b.body)
		var e errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != http.StatusBadRequest || e.Field != b.field || !strings.Contains(e.Error, b.msg) {
			t.Errorf("%.40s: got %d %+v, want 400 on field %q saying %q", b.body, rec.Code, e, b.field, b.msg)
		}
	}
}
