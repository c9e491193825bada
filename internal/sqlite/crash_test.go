package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// crashEnv names the database the crash child writes to.
const crashEnv = "PORTPATROL_SQLITE_CRASH_CHILD"

const crashBatch = 100

var crashBase = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

// TestCrashChild is the child of TestCrash: it writes batches in a loop and reports
// each commit on stdout until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestCrash only")
	}
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: path})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	batch := make([]patrol.Result, crashBatch)
	for n := 0; ; n += crashBatch {
		for i := range batch {
			batch[i] = patrol.Result{Target: fmt.Sprintf("tcp://10.0.%d.%d:80", i/250, i%250),
				Start: crashBase.Add(time.Duration(n+i) * time.Millisecond), Duration: time.Millisecond,
				Class: patrol.ClassOK, Details: map[string]string{"seq": strconv.Itoa(n + i)}}
		}
		if err := db.WriteResults(ctx, batch); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Println("committed", n+crashBatch)
	}
}

// TestCrash kills a writer mid-write with SIGKILL and checks that the database opens
// cleanly with every batch committed before the kill.
func TestCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	committed := 0
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "error") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %s", line)
		}
		if n, ok := strings.CutPrefix(line, "committed "); ok {
			committed, _ = strconv.Atoi(n)
		}
		if committed >= 20*crashBatch {
			break
		}
	}
	// The child is inside its write loop: a random pause lands the kill in the middle
	// of a transaction most of the time.
	time.Sleep(time.Duration(rand.IntN(5000)) * time.Microsecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if committed == 0 {
		t.Fatal("child committed nothing before the kill")
	}

	db, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	var check string
	if err := db.read.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity check: got %q, %v; want ok", check, err)
	}
	if v, err := db.SchemaVersion(t.Context()); err != nil || v != KnownSchema {
		t.Errorf("schema version: got %d, %v; want %d", v, err, KnownSchema)
	}
	var rows, minStart, maxStart int64
	if err := db.read.QueryRow(`SELECT COUNT(*), MIN(start), MAX(start) FROM results`).Scan(&rows, &minStart, &maxStart); err != nil {
		t.Fatal(err)
	}
	if rows < int64(committed) {
		t.Errorf("rows after kill: got %d, want at least the %d reported committed", rows, committed)
	}
	// Batches are atomic and sequential: the rows are an unbroken prefix.
	if rows%crashBatch != 0 || minStart != crashBase.UnixNano() ||
		maxStart != crashBase.Add(time.Duration(rows-1)*time.Millisecond).UnixNano() {
		t.Errorf("rows after kill: %d from %d to %d, want whole batches from the first", rows, minStart, maxStart)
	}
	recent, err := db.RecentResults(t.Context(), "tcp://10.0.0.0:80", 1)
	if err != nil || len(recent) != 1 || recent[0].Details["seq"] == "" {
		t.Errorf("recent result after kill: got %v, %v", recent, err)
	}
	t.Logf("killed after %d reported commits; %d rows survived", committed, rows)
}
