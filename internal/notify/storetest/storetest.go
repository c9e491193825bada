// Package storetest is the test suite every notify.Store must pass. A store's tests
// call Run with a function that makes a fresh, empty store.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Run runs the suite; newStore makes a fresh store for each subtest and cleans it up
// with t.Cleanup.
func Run(t *testing.T, newStore func(t *testing.T) notify.Store) {
	tests := []struct {
		name string
		f    func(t *testing.T, s notify.Store)
	}{
		{"PutAssignsSeqAndKeepsFields", testPut},
		{"PutDeduplicatesReceiverAndKey", testDedup},
		{"DueHeadOfLine", testDueHeadOfLine},
		{"DueLimitPerReceiver", testDueLimit},
		{"UpdateFinalStates", testUpdate},
		{"UpdateUnknown", testUpdateUnknown},
		{"ListFilters", testList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, newStore(t)) })
	}
}

var t0 = notifytest.T0

func delivery(receiver, key string, at time.Time) notify.Delivery {
	n := notifytest.Notification(patrol.NotifyFiring)
	n.Receiver, n.Key = receiver, key
	return notify.Delivery{
		Receiver: receiver, Key: key, Notification: n, Provider: "webhook",
		EnqueuedAt: at, State: notify.StatePending, NextAttempt: at,
	}
}

func put(t *testing.T, s notify.Store, d notify.Delivery) {
	t.Helper()
	ok, err := s.Put(context.Background(), d)
	if err != nil || !ok {
		t.Fatalf("put %s/%s: got %v, %v; want true, nil", d.Receiver, d.Key, ok, err)
	}
}

func keys(ds []notify.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Receiver + "/" + d.Key
	}
	return out
}

// byReceiver orders deliveries by receiver, keeping each receiver's order: Due may
// return receivers in any order.
func byReceiver(ds []notify.Delivery) []notify.Delivery {
	out := slices.Clone(ds)
	slices.SortStableFunc(out, func(a, b notify.Delivery) int {
		switch {
		case a.Receiver < b.Receiver:
			return -1
		case a.Receiver > b.Receiver:
			return 1
		}
		return 0
	})
	return out
}

func testPut(t *testing.T, s notify.Store) {
	ctx := context.Background()
	want := delivery("a", "k1", t0)
	want.Seq = 999
	put(t, s, want)
	put(t, s, delivery("a", "k2", t0))
	got, err := s.List(ctx, notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq <= 0 || got[1].Seq <= got[0].Seq {
		t.Fatalf("got seqs %v, want two increasing positive seqs", []int64{got[0].Seq, got[1].Seq})
	}
	want.Seq = got[0].Seq
	if diff := cmp.Diff(want, got[0], cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("stored delivery differs (-want +got):\n%s", diff)
	}
}

func testDedup(t *testing.T, s notify.Store) {
	ctx := context.Background()
	put(t, s, delivery("a", "k", t0))
	ok, err := s.Put(ctx, delivery("a", "k", t0.Add(time.Minute)))
	if err != nil || ok {
		t.Fatalf("second put: got %v, %v; want false, nil", ok, err)
	}
	// Final states still deduplicate.
	ds, _ := s.List(ctx, notify.Filter{})
	ds[0].State, ds[0].DoneAt = notify.StateDelivered, t0
	if err := s.Update(ctx, ds[0]); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Put(ctx, delivery("a", "k", t0)); err != nil || ok {
		t.Fatalf("put after delivery: got %v, %v; want false, nil", ok, err)
	}
	// The same key for another receiver is another delivery.
	put(t, s, delivery("b", "k", t0))
	if ds, _ := s.List(ctx, notify.Filter{}); len(ds) != 2 {
		t.Errorf("got %d deliveries, want 2", len(ds))
	}
}

func testDueHeadOfLine(t *testing.T, s notify.Store) {
	ctx := context.Background()
	for _, d := range []notify.Delivery{delivery("a", "1", t0), delivery("b", "1", t0), delivery("a", "2", t0), delivery("b", "2", t0)} {
		put(t, s, d)
	}
	due, err := s.Due(ctx, t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(byReceiver(due)), []string{"a/1", "a/2", "b/1", "b/2"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if due, _ := s.Due(ctx, t0.Add(-time.Second), 0); len(due) != 0 {
		t.Errorf("before NextAttempt: got %v, want nothing", keys(due))
	}
	// a's head waits for a retry: a's later delivery waits with it; b is not held.
	head := byReceiver(due)[0]
	head.Attempts, head.NextAttempt, head.LastError = 1, t0.Add(time.Minute), "503"
	if err := s.Update(ctx, head); err != nil {
		t.Fatal(err)
	}
	due, _ = s.Due(ctx, t0.Add(time.Second), 0)
	if got, want := keys(byReceiver(due)), []string{"b/1", "b/2"}; !slices.Equal(got, want) {
		t.Fatalf("while a's head waits: got %v, want %v", got, want)
	}
	due, _ = s.Due(ctx, t0.Add(time.Minute), 0)
	if got, want := keys(byReceiver(due)), []string{"a/1", "a/2", "b/1", "b/2"}; !slices.Equal(got, want) {
		t.Fatalf("after a's retry time: got %v, want %v", got, want)
	}
	if got := byReceiver(due)[0]; got.Attempts != 1 || got.LastError != "503" {
		t.Errorf("update lost: got attempts %d, last error %q; want 1, %q", got.Attempts, got.LastError, "503")
	}
}

func testDueLimit(t *testing.T, s notify.Store) {
	ctx := context.Background()
	for i := range 5 {
		put(t, s, delivery("a", fmt.Sprint(i), t0))
		put(t, s, delivery("b", fmt.Sprint(i), t0))
	}
	due, err := s.Due(ctx, t0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(byReceiver(due)), []string{"a/0", "a/1", "b/0", "b/1"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func testUpdate(t *testing.T, s notify.Store) {
	ctx := context.Background()
	for _, k := range []string{"1", "2", "3"} {
		put(t, s, delivery("a", k, t0))
	}
	due, _ := s.Due(ctx, t0, 0)
	due[0].State, due[0].Attempts, due[0].LastAttempt, due[0].DoneAt = notify.StateDelivered, 1, t0, t0.Add(time.Second)
	due[1].State, due[1].Attempts, due[1].LastError, due[1].DoneAt = notify.StateFailed, 1, "400 bad payload", t0
	for _, d := range due[:2] {
		if err := s.Update(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	after, _ := s.Due(ctx, t0, 0)
	if got, want := keys(after), []string{"a/3"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	all, _ := s.List(ctx, notify.Filter{})
	if diff := cmp.Diff(due[:2], all[:2], cmpopts.EquateApproxTime(time.Millisecond)); diff != "" {
		t.Errorf("updated deliveries differ (-want +got):\n%s", diff)
	}
}

func testUpdateUnknown(t *testing.T, s notify.Store) {
	d := delivery("a", "k", t0)
	d.Seq = 12345
	if err := s.Update(context.Background(), d); !errors.Is(err, notify.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func testList(t *testing.T, s notify.Store) {
	ctx := context.Background()
	put(t, s, delivery("a", "1", t0))
	put(t, s, delivery("b", "1", t0.Add(time.Hour)))
	put(t, s, delivery("a", "2", t0.Add(2*time.Hour)))
	all, _ := s.List(ctx, notify.Filter{})
	all[0].State, all[0].DoneAt = notify.StateExpired, t0
	if err := s.Update(ctx, all[0]); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f    notify.Filter
		want []string
	}{
		{notify.Filter{}, []string{"a/1", "b/1", "a/2"}},
		{notify.Filter{Receiver: "a"}, []string{"a/1", "a/2"}},
		{notify.Filter{States: []notify.State{notify.StatePending}}, []string{"b/1", "a/2"}},
		{notify.Filter{States: []notify.State{notify.StateExpired, notify.StateFailed}}, []string{"a/1"}},
		{notify.Filter{Since: t0.Add(time.Hour)}, []string{"b/1", "a/2"}},
		{notify.Filter{AfterSeq: all[0].Seq}, []string{"b/1", "a/2"}},
		{notify.Filter{Limit: 2}, []string{"a/1", "b/1"}},
		{notify.Filter{Receiver: "c"}, []string{}},
	}
	for _, c := range cases {
		got, err := s.List(ctx, c.f)
		if err != nil {
			t.Fatal(err)
		}
		if k := keys(got); !slices.Equal(k, c.want) {
			t.Errorf("%+v: got %v, want %v", c.f, k, c.want)
		}
	}
}
