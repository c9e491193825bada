package hostwatch

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/store"
)

// BenchmarkLearnThousand measures the dump that learns 1,000 listeners at once with a
// real SQLite store: how long the watch loop is held (the goal: no longer than a
// dump's own work, the store written in the background) and how long the background
// writer then takes for its one transaction. The anchor, measured in the same run, is
// what the loop was held before: 1,000 PutLearned calls, one row each. It ignores b.N:
// one run of each is the measurement.
func BenchmarkLearnThousand(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	open := func() *sqlite.DB {
		db, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(b.TempDir(), "s.db")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		return db
	}

	// The anchor: the loop wrote each learned listener itself, one row at a time.
	db := open()
	v, _ := json.Marshal(learnedValue{Proto: "tcp", Bind: "127.0.0.1:1", LearnedAt: time.Now()})
	start := time.Now()
	for i := range n {
		if err := db.PutLearned(ctx, store.Learned{Namespace: Namespace, Key: fmt.Sprintf("tcp://127.0.0.1:%d", 20000+i), Value: v}); err != nil {
			b.Fatal(err)
		}
	}
	anchor := time.Since(start)

	// Now: the tick that learns them, then the background write.
	db = open()
	src := &fakeSource{owners: map[uint64]inventory.Owner{}, res: map[int]inventory.Resources{}}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	w := New(Config{Source: src, Store: db, Procs: &fakeProcs{}, LearnAfter: time.Second, DetailInterval: -1, Now: func() time.Time { return now }})
	src.set(manySocks(n)...)
	if err := w.tick(ctx); err != nil {
		b.Fatal(err)
	}
	now = now.Add(2 * time.Second)
	start = time.Now()
	if err := w.tick(ctx); err != nil {
		b.Fatal(err)
	}
	held := time.Since(start)
	if err := w.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	written := time.Since(start)
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	if ls, _ := db.ListLearned(ctx, Namespace); len(ls) != n {
		b.Fatalf("stored %d listeners, want %d", len(ls), n)
	}
	b.ReportMetric(float64(held.Microseconds())/1e3, "loop-held-ms")
	b.ReportMetric(float64(written.Microseconds())/1e3, "stored-ms")
	b.ReportMetric(float64(anchor.Microseconds())/1e3, "anchor-per-row-ms")
	b.Logf("1,000 listeners learned in one dump: the loop held %s (goal: the dump's own work, no store write); stored in one transaction %s after; anchor (same run): 1,000 one-row writes in the loop took %s",
		held.Round(time.Microsecond), written.Round(time.Microsecond), anchor.Round(time.Microsecond))
}
