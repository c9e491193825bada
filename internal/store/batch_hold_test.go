package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TestBatchWriterHoldsWhileTheStoreIsDown: a store that refuses every write for a
// while loses none of the results within Hold, Write never blocks, and the oldest
// beyond Hold are the ones counted as failed.
func TestBatchWriterHoldsWhileTheStoreIsDown(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	got := map[string]bool{}
	w := NewBatchWriter(writerFunc(func(ctx context.Context, rs []patrol.Result) error {
		if down.Load() {
			return errors.New("database or disk is full")
		}
		mu.Lock()
		for _, r := range rs {
			got[r.Target] = true
		}
		mu.Unlock()
		return nil
	}), BatchConfig{Size: 10, Interval: 5 * time.Millisecond, Buffer: 8, Attempts: 1, Hold: 100, HoldRetry: 5 * time.Millisecond})
	for i := range 150 {
		if err := w.Write(t.Context(), patrol.Result{Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for w.Stats().Held != 100 || w.Stats().Failed != 50 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want 100 held and 50 failed", w.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	down.Store(false)
	for w.Stats().Written != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want the 100 held written", w.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := w.Close(t.Context()); err == nil || w.Stats().Held != 0 {
		t.Fatalf("close: %v, stats %+v; want the 50 failed reported", err, w.Stats())
	}
	for i := range 150 {
		if want := i >= 50; got[fmt.Sprint(i)] != want {
			t.Fatalf("result %d written %v, want %v (the oldest beyond Hold go)", i, got[fmt.Sprint(i)], want)
		}
	}
	if w.Stats().WriteErrors == 0 {
		t.Fatal("no write error counted")
	}
}
