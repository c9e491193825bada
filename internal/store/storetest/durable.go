package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// Durable is what the restart tests need of a backend: the incidents and the outbox
// it keeps for the alert engine and the dispatcher, compaction, and closing.
type Durable interface {
	alert.Store
	notify.Store
	Compact(ctx context.Context, now time.Time) (store.CompactStats, error)
	Close() error
}

// Opener opens the same database each time it is called, with the outbox max age and
// the clock given. The restart tests close what they open.
type Opener func(t *testing.T, outboxMaxAge time.Duration, now func() time.Time) Durable

// RunRestart checks that incidents, silences and deliveries survive closing and
// reopening the database, and that compaction prunes only what the contracts allow.
// newOpener makes a new, empty database for each test.
func RunRestart(t *testing.T, newOpener func(t *testing.T) Opener) {
	t.Run("OutboxRestartAndPrune", func(t *testing.T) { testOutboxRestartAndPrune(t, newOpener(t)) })
	t.Run("AlertsSurviveRestart", func(t *testing.T) { testAlertsSurviveRestart(t, newOpener(t)) })
}

func closeDB(t *testing.T, db Durable) {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// Delivery is a pending delivery of a firing notification to receiver under key,
// enqueued and due at at.
func Delivery(receiver, key string, at time.Time) notify.Delivery {
	n := notifytest.Notification(patrol.NotifyFiring)
	n.Receiver, n.Key = receiver, key
	return notify.Delivery{Receiver: receiver, Key: key, Notification: n, Provider: "webhook",
		EnqueuedAt: at, NextAttempt: at}
}

func deliveryKeys(ds []notify.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Key
	}
	return out
}

// testOutboxRestartAndPrune puts deliveries, reopens without a max age (Compact keeps
// everything), then with one: Compact deletes only the deliveries that are final and
// older than twice it, and their keys may be put again under a new Seq.
func testOutboxRestartAndPrune(t *testing.T, open Opener) {
	ctx := t.Context()
	now := notifytest.T0.Add(10 * 24 * time.Hour)
	clock := func() time.Time { return now }
	old := now.Add(-5 * time.Hour)

	db := open(t, 0, clock)
	final := map[string]time.Time{ // key → DoneAt
		"recent-done": now.Add(-time.Hour),
		"old-done":    now.Add(-4 * time.Hour),
	}
	for _, k := range []string{"old-pending", "recent-done", "old-done"} {
		if ok, err := db.Put(ctx, Delivery("a", k, old)); err != nil || !ok {
			t.Fatalf("put %s: got %v, %v; want true, nil", k, ok, err)
		}
	}
	// An error may hold any bytes a provider replied with (PostgreSQL's text type
	// would refuse these).
	const oddError = "502 \x00\xff\xfe bad gateway"
	ds, err := db.List(ctx, notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if at, ok := final[d.Key]; ok {
			d.State, d.DoneAt, d.Attempts, d.LastError = notify.StateFailed, at, 1, oddError
			if err := db.Update(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := db.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	closeDB(t, db)

	db = open(t, 0, clock)
	got, err := db.List(ctx, notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if k := deliveryKeys(got); !slices.Equal(k, []string{"old-pending", "recent-done", "old-done"}) {
		t.Fatalf("after restart without a max age: got %v, want all three", k)
	}
	if got[1].LastError != oddError {
		t.Errorf("last error: got %q, want %q", got[1].LastError, oddError)
	}
	lastSeq := got[2].Seq
	closeDB(t, db)

	db = open(t, time.Hour, clock)
	defer closeDB(t, db)
	if _, err := db.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	got, err = db.List(ctx, notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if k := deliveryKeys(got); !slices.Equal(k, []string{"old-pending", "recent-done"}) {
		t.Fatalf("after Compact: got %v, want old-pending, recent-done", k)
	}
	if ok, err := db.Put(ctx, Delivery("a", "old-done", now)); err != nil || !ok {
		t.Fatalf("put a pruned key again: got %v, %v; want true, nil", ok, err)
	}
	if ok, err := db.Put(ctx, Delivery("a", "recent-done", now)); err != nil || ok {
		t.Fatalf("put a kept key again: got %v, %v; want false, nil", ok, err)
	}
	got, err = db.List(ctx, notify.Filter{AfterSeq: lastSeq})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Key != "old-done" {
		t.Errorf("new delivery after pruning the newest: got %v, want old-done with a Seq above %d", deliveryKeys(got), lastSeq)
	}
}

// testAlertsSurviveRestart saves an alert and a silence, reopens and finds them; a
// resolved alert, however old, stays until the engine deletes it.
func testAlertsSurviveRestart(t *testing.T, open Opener) {
	ctx := t.Context()
	now := notifytest.T0.Add(30 * 24 * time.Hour)
	clock := func() time.Time { return now }
	rec := alert.Record{Alert: notifytest.Alert(), Chain: "default", Notified: true}
	rec.Alert.State, rec.Alert.ResolvedAt = patrol.AlertResolved, notifytest.T0.Add(time.Hour)
	// A NUL a server replied with must survive (PostgreSQL's jsonb would refuse it).
	rec.Alert.Evidence[0].Error = "read: \x00\x00 garbage"
	sil := patrol.Silence{ID: "s1", Author: "alice", StartsAt: notifytest.T0, EndsAt: notifytest.T0.Add(time.Hour)}

	db := open(t, time.Hour, clock)
	if err := db.SaveAlert(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := db.SaveSilence(ctx, sil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Compact(ctx, now); err != nil {
		t.Fatal(err)
	}
	closeDB(t, db)

	db = open(t, time.Hour, clock)
	defer closeDB(t, db)
	alerts, err := db.LoadAlerts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(alerts) != 1 || alerts[0].Alert.ID != rec.Alert.ID || alerts[0].Alert.State != patrol.AlertResolved {
		t.Fatalf("after restart: got alerts %+v, want %s resolved", alerts, rec.Alert.ID)
	}
	if got, want := alerts[0].Alert.Evidence[0].Error, rec.Alert.Evidence[0].Error; got != want {
		t.Errorf("evidence error: got %q, want %q", got, want)
	}
	sils, err := db.LoadSilences(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sils) != 1 || sils[0].ID != "s1" {
		t.Errorf("after restart: got silences %+v, want s1", sils)
	}
}
