package notify_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Two processes share one outbox, as replicas share PostgreSQL: only the one not held
// delivers, so each notification reaches the receiver once; the held one takes over
// when its hold ends.
func TestStandbyDeliversFromTheLeaderOnly(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{}
	rcv := notify.Receiver{Name: "ops", Provider: "webhook", Notifier: f}
	cfg := outbox
	cfg.PollInterval = 10 * time.Millisecond
	leader, err := notify.NewDispatcher(cfg, store, clk, rcv)
	if err != nil {
		t.Fatal(err)
	}
	follower, err := notify.NewDispatcher(cfg, store, clk, rcv)
	if err != nil {
		t.Fatal(err)
	}
	var leading, following atomic.Bool
	leading.Store(true)
	leader.Standby(func() bool { return !leading.Load() })
	follower.Standby(func() bool { return !following.Load() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, d := range []*notify.Dispatcher{leader, follower} {
		go func() { _ = d.Run(ctx); done <- struct{}{} }()
	}
	defer func() { cancel(); <-done; <-done }()
	waitKeys := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for len(f.keys()) < n && time.Now().Before(deadline) {
			clk.Advance(10 * time.Millisecond)
			time.Sleep(5 * time.Millisecond)
		}
		if got := len(f.keys()); got != n {
			t.Fatalf("got %d sends %v, want %d", got, f.keys(), n)
		}
	}
	for i, key := range []string{"k1", "k2", "k3"} {
		if err := follower.Enqueue(ctx, []patrol.Notification{note("ops", key)}); err != nil {
			t.Fatal(err)
		}
		waitKeys(i + 1)
	}
	// Leadership moves: the old leader holds, the new one delivers.
	leading.Store(false)
	following.Store(true)
	if err := leader.Enqueue(ctx, []patrol.Notification{note("ops", "k4")}); err != nil {
		t.Fatal(err)
	}
	waitKeys(4)
	for i := 0; i < 20; i++ {
		clk.Advance(10 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.keys(); len(got) != 4 || got[3] != "k4" {
		t.Fatalf("sends %v, want k1..k4 once each", got)
	}
	// With both held nothing goes out.
	following.Store(false)
	if err := leader.Enqueue(ctx, []patrol.Notification{note("ops", "k5")}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		clk.Advance(10 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	if got := f.keys(); len(got) != 4 {
		t.Fatalf("a held dispatcher sent: %v", got)
	}
}
