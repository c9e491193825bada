package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// envInt reads a benchmark setting from the environment.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fileSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// BenchmarkIngest feeds results at a fixed rate (PORTPATROL_BENCH_RATE, default
// 10000/s) for PORTPATROL_BENCH_SECONDS (default 10) through a BatchWriter into a
// fresh database, over 10,000 targets, and reports the CPU it took. Run it once:
//
//	go test -run '^$' -bench Ingest -benchtime 1x ./internal/sqlite/
func BenchmarkIngest(b *testing.B) {
	rate := envInt(b, "PORTPATROL_BENCH_RATE", 10000)
	seconds := envInt(b, "PORTPATROL_BENCH_SECONDS", 10)
	const targets = 10000
	names := make([]string, targets)
	for i := range names {
		names[i] = fmt.Sprintf("tcp://10.%d.%d.%d:443", i/65536, i/256%256, i%256)
	}
	for range b.N {
		ctx := context.Background()
		path := filepath.Join(b.TempDir(), FileName)
		db, err := Open(ctx, Config{Path: path})
		if err != nil {
			b.Fatal(err)
		}
		// Register the targets first: growth is then what results alone cost.
		first := make([]patrol.Result, targets)
		for i := range first {
			first[i] = patrol.Result{Target: names[i], Start: time.Now(), Class: patrol.ClassOK}
		}
		if err := db.WriteResults(ctx, first); err != nil {
			b.Fatal(err)
		}
		if _, err := db.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		w := store.NewBatchWriter(db, store.BatchConfig{})
		size0 := fileSize(path)
		cpu0, wall0 := cpuTime(), time.Now()
		// 100 ticks a second, each writing its share of results.
		tick := time.NewTicker(10 * time.Millisecond)
		total := rate * seconds
		n := 0
		for sent := 0; n < total; sent++ {
			<-tick.C
			due := min(total, rate*(sent+1)/100)
			for ; n < due; n++ {
				r := patrol.Result{Target: names[n%targets], Start: time.Now(), Class: patrol.ClassOK,
					Duration: time.Duration(200+n%800) * time.Microsecond, RemoteAddr: "10.0.0.1:443"}
				if n%50 == 0 {
					r.Class, r.Error = patrol.ClassTimeout, "no answer within 5s"
				}
				if err := w.Write(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
		}
		tick.Stop()
		if err := w.Close(ctx); err != nil {
			b.Fatal(err)
		}
		wall, cpu := time.Since(wall0), cpuTime()-cpu0
		if _, err := db.write.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			b.Fatal(err)
		}
		growth := fileSize(path) - size0
		st := w.Stats()
		db.Close()
		cores := cpu.Seconds() / wall.Seconds()
		rowsPerSec := float64(st.Written) / wall.Seconds()
		per10k := float64(growth) / float64(st.Written) * 10000
		b.ReportMetric(cores, "cores")
		b.ReportMetric(rowsPerSec, "rows/s")
		b.ReportMetric(per10k, "bytes/10k")
		b.Logf("ingest %d results over %s into SQLite (%d targets, %d batches, %d dropped):", st.Written, wall.Round(time.Millisecond), targets, st.Batches, st.Dropped)
		b.Logf("  CPU cores used  %.3f   (goal: under 1 core at 10,000 results/s)", cores)
		b.Logf("  rows/s          %.0f   (offered %d/s)", rowsPerSec, rate)
		b.Logf("  file growth     %.0f bytes per 10k results (%.1f MB per hour at %d/s)", per10k, per10k*float64(rate)*3600/10000/1e6, rate)
	}
}

// BenchmarkLatestStates reads the latest state of 10,000 targets.
//
//	go test -run '^$' -bench LatestStates ./internal/sqlite/
func BenchmarkLatestStates(b *testing.B) {
	const targets = 10000
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: filepath.Join(b.TempDir(), FileName)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	now := time.Now()
	states := make([]patrol.TargetState, targets)
	for i := range states {
		states[i] = patrol.TargetState{Target: fmt.Sprintf("tcp://10.%d.%d.%d:443", i/65536, i/256%256, i%256),
			Status: patrol.StatusUp, Since: now.Add(-time.Hour),
			Last:   patrol.ResultSummary{Time: now, Class: patrol.ClassOK, Duration: time.Millisecond},
			Labels: map[string]string{"service": "web", "env": "prod", "team": "sre"}}
		if i%20 == 0 {
			states[i].Status, states[i].Last.Class, states[i].Last.Error = patrol.StatusDown, patrol.ClassRefused, "connection refused"
		}
	}
	if err := db.PutStates(ctx, states); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		got, err := db.States(ctx)
		if err != nil || len(got) != targets {
			b.Fatalf("states: got %d, %v", len(got), err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(per.Microseconds())/1000, "ms/query")
	b.Logf("latest states of %d targets: %s per query (goal: under 100ms)", targets, per.Round(10*time.Microsecond))
}
