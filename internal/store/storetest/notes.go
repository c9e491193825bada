package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// testStatusNotes: notes round-trip with every field, list newest first, survive a
// reopen, refuse a taken ID, and delete once.
func testStatusNotes(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	notes := []patrol.StatusNote{
		{ID: "n1", Service: "payments", State: "identified", Text: "Card payments fail; the provider is on it.\nNext update at 14:30.", Author: "alice", CreatedAt: base},
		{ID: "n2", State: "monitoring", Text: "Zürich: “fixed” — watching ✓", Author: "bob", CreatedAt: base.Add(90*time.Second + 123456789)},
		{ID: "n0", Service: "web", State: "resolved", Text: "Done.", Author: "alice", CreatedAt: base.Add(-time.Hour)},
	}
	for _, n := range notes {
		if err := b.AddStatusNote(ctx, n); err != nil {
			t.Fatalf("add %s: %v", n.ID, err)
		}
	}
	if err := b.AddStatusNote(ctx, notes[0]); !errors.Is(err, store.ErrExists) {
		t.Errorf("add a taken ID: got %v, want ErrExists", err)
	}
	want := []patrol.StatusNote{notes[1], notes[0], notes[2]}
	got, err := b.ListStatusNotes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("list (-want +got):\n%s", diff)
	}
	b.Close()
	b = open(t, db)
	if err := b.DeleteStatusNote(ctx, "n1"); err != nil {
		t.Fatalf("delete after reopen: %v", err)
	}
	if err := b.DeleteStatusNote(ctx, "n1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete again: got %v, want ErrNotFound", err)
	}
	got, err = b.ListStatusNotes(ctx)
	if err != nil || len(got) != 2 || got[0].ID != "n2" || got[1].ID != "n0" {
		t.Errorf("after delete: got %+v, %v; want n2, n0", got, err)
	}
}
