package postgres

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	notifystoretest "github.com/portpatrol/portpatrol/internal/notify/storetest"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestOutboxStore(t *testing.T) {
	notifystoretest.Run(t, func(t *testing.T) notify.Store { return openSchema(t, Config{}) })
}

func testDelivery(receiver, key string, at time.Time) notify.Delivery {
	n := notifytest.Notification(patrol.NotifyFiring)
	n.Receiver, n.Key = receiver, key
	return notify.Delivery{Receiver: receiver, Key: key, Notification: n, Provider: "webhook",
		EnqueuedAt: at, NextAttempt: at}
}

// TestOutboxRestartAndPrune puts deliveries, reconnects without a max age (Compact
// keeps everything), then with one: Compact deletes only the deliveries that are final
// and older than twice it, and their keys may be put again.
func TestOutboxRestartAndPrune(t *testing.T) {
	ctx := t.Context()
	dsn, _ := newSchema(t)
	now := notifytest.T0.Add(10 * 24 * time.Hour)
	clock := func() time.Time { return now }
	old := now.Add(-5 * time.Hour)

	db, err := Open(ctx, Config{DSN: dsn, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	final := map[string]time.Time{ // key → DoneAt
		"recent-done": now.Add(-time.Hour),
		"old-done":    now.Add(-4 * time.Hour),
	}
	for _, k := range []string{"old-pending", "recent-done", "old-done"} {
		if ok, err := db.Put(ctx, testDelivery("a", k, old)); err != nil || !ok {
			t.Fatalf("put %s: got %v, %v; want true, nil", k, ok, err)
		}
	}
	// An error may hold any bytes a provider replied with; text would refuse these.
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
	db.Close()

	db, err = Open(ctx, Config{DSN: dsn, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
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
	db.Close()

	db = openSchema(t, Config{DSN: dsn, Now: clock, OutboxMaxAge: time.Hour})
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
	if ok, err := db.Put(ctx, testDelivery("a", "old-done", now)); err != nil || !ok {
		t.Fatalf("put a pruned key again: got %v, %v; want true, nil", ok, err)
	}
	if ok, err := db.Put(ctx, testDelivery("a", "recent-done", now)); err != nil || ok {
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

// TestConcurrentPut races Puts of the same keys from two instances: each key is
// inserted once, and the Seqs of one receiver are distinct.
func TestConcurrentPut(t *testing.T) {
	dsn, _ := newSchema(t)
	dbs := []*DB{openSchema(t, Config{DSN: dsn}), openSchema(t, Config{DSN: dsn})}
	const keys = 20
	var wg sync.WaitGroup
	inserted := make([][]bool, len(dbs))
	errs := make(chan error, len(dbs)*keys)
	for i, db := range dbs {
		inserted[i] = make([]bool, keys)
		wg.Go(func() {
			for k := range keys {
				ok, err := db.Put(t.Context(), testDelivery("a", fmt.Sprint(k), notifytest.T0))
				if err != nil {
					errs <- err
				}
				inserted[i][k] = ok
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for k := range keys {
		if inserted[0][k] == inserted[1][k] {
			t.Errorf("key %d: inserted by instance 0 %v, by 1 %v; want exactly one", k, inserted[0][k], inserted[1][k])
		}
	}
	got, err := dbs[0].List(t.Context(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != keys {
		t.Errorf("got %d deliveries, want %d", len(got), keys)
	}
}

func deliveryKeys(ds []notify.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Key
	}
	return out
}
