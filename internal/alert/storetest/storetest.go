// Package storetest is the shared test suite for implementations of alert.Store: the
// in-memory store runs it, and so must every database-backed one.
package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Run runs the suite; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) alert.Store) {
	t0 := time.Date(2025, 1, 6, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))
	rec := alert.Record{
		Alert: patrol.Alert{
			ID: "a1", Fingerprint: "unreachable@tcp://db1:5432", Rule: "unreachable", Class: patrol.AlertUnreachable,
			Severity: patrol.P1, State: patrol.AlertSilenced, Target: "tcp://db1:5432",
			Labels: map[string]string{"service": "orders", "host": "db1"}, Summary: "refused", RunbookURL: "https://x/rb",
			StartsAt: t0, FiredAt: t0.Add(time.Second), Deadline: t0.Add(5 * time.Minute), EscalationStep: 1,
			MutedBy: "maintenance db-weekly", Told: []string{"noc", "sre"},
			Evidence: []patrol.Result{{Target: "tcp://db1:5432", Start: t0, Duration: 1500 * time.Millisecond, Class: patrol.ClassRefused, Error: "connection refused"}},
		},
		Chain: "db-pager", Notified: true, Flapping: true, FlapNotified: true, NextReminder: t0.Add(time.Hour), Reminders: 2,
		Owed:  []alert.Owed{{Kind: patrol.NotifyEscalation, Seq: 2, Receivers: []string{"lead"}, Sent: true}},
		Notes: []patrol.Note{{At: t0.Add(time.Minute), By: "alice", Action: "acknowledged", Text: "on it"}},
	}
	ms, err := patrol.ParseMatchers([]string{"env=~prod|staging", "team!=web"})
	if err != nil {
		t.Fatal(err)
	}
	sil := patrol.Silence{ID: "s1", Matchers: ms, Author: "alice", Comment: "migration", StartsAt: t0, EndsAt: t0.Add(time.Hour), CreatedAt: t0}
	opts := cmp.Options{
		cmpopts.EquateApproxTime(0),
		cmp.Comparer(func(a, b patrol.Matcher) bool { return a.String() == b.String() }),
	}
	ctx := context.Background()

	t.Run("alerts round-trip", func(t *testing.T) {
		s := open(t)
		if err := s.SaveAlert(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]alert.Record{rec}, got, opts); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("save replaces, delete removes", func(t *testing.T) {
		s := open(t)
		r2 := rec
		r2.Alert.ID = "a2"
		for _, r := range []alert.Record{rec, r2} {
			if err := s.SaveAlert(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		r1 := rec
		r1.Alert.State = patrol.AlertResolved
		r1.Owed = nil
		if err := s.SaveAlert(ctx, r1); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAlert(ctx, "a2"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAlert(ctx, "missing"); err != nil {
			t.Errorf("deleting a missing ID: %v", err)
		}
		got, err := s.LoadAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]alert.Record{r1}, got, opts); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("batch saves and deletes together", func(t *testing.T) {
		s := open(t)
		bs, ok := s.(alert.AlertBatchStore)
		if !ok {
			t.Skip("the store saves one record at a time (no alert.AlertBatchStore)")
		}
		if err := s.SaveAlert(ctx, rec); err != nil {
			t.Fatal(err)
		}
		var want []alert.Record
		for i := range 3 {
			r := rec
			r.Alert.ID = fmt.Sprintf("b%d", i)
			r.Reminders = i
			want = append(want, r)
		}
		if err := bs.SaveAlerts(ctx, want, []string{"a1", "missing"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, opts, cmpopts.SortSlices(func(a, b alert.Record) bool { return a.Alert.ID < b.Alert.ID })); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
		// A batch with a bad record saves none of it.
		bad := []alert.Record{rec, {}}
		if err := bs.SaveAlerts(ctx, bad, []string{"b0"}); err == nil {
			t.Error("SaveAlerts with an empty ID: got no error")
		}
		if got, err := s.LoadAlerts(ctx); err != nil || len(got) != len(want) {
			t.Errorf("after a refused batch: got %d records, %v; want the %d before", len(got), err, len(want))
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := bs.SaveAlerts(cctx, want, nil); err == nil {
			t.Error("SaveAlerts with a cancelled context: got no error")
		}
	})
	t.Run("silences round-trip and still match", func(t *testing.T) {
		s := open(t)
		if err := s.SaveSilence(ctx, sil); err != nil {
			t.Fatal(err)
		}
		other := sil
		other.ID = "s2"
		if err := s.SaveSilence(ctx, other); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteSilence(ctx, "s2"); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadSilences(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]patrol.Silence{sil}, got, opts); diff != "" {
			t.Fatalf("(-want +got):\n%s", diff)
		}
		labels := map[string]string{"env": "staging", "team": "db"}
		if !got[0].Matchers.Matches(func(n string) string { return labels[n] }) {
			t.Errorf("loaded matchers %s do not match %v", got[0].Matchers, labels)
		}
	})
	t.Run("empty", func(t *testing.T) {
		s := open(t)
		a, err := s.LoadAlerts(ctx)
		if err != nil || len(a) != 0 {
			t.Errorf("LoadAlerts: got %v, %v; want none", a, err)
		}
		sl, err := s.LoadSilences(ctx)
		if err != nil || len(sl) != 0 {
			t.Errorf("LoadSilences: got %v, %v; want none", sl, err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		s := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.SaveAlert(cctx, rec); err == nil {
			t.Error("SaveAlert with a cancelled context: got no error")
		}
	})
}
