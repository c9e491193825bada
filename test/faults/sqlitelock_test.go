package faults_test

import (
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestSQLiteLockedByAnotherProcess: another process (the sqlite3 shell, as a backup
// or repair tool would) holds a write transaction on the daemon's database. Probing
// goes on, results are held, store_write says so, and all is written once the other
// process lets go.
func TestSQLiteLockedByAnotherProcess(t *testing.T) {
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		unavailable(t, "no sqlite3 shell to hold the lock (apt-get install sqlite3)")
	}
	dir := t.TempDir()
	flip := testsvc.NewFlip(t)
	_, base := startDaemon(t, `host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms}
self_check: {interval: 1s}
targets:
  - url: tcp://`+flip.Addr+`
`, dir)
	written := func() float64 { return metric(t, base, `portpatrol_history_results_total{outcome="written"}`) }
	poll(t, 30*time.Second, "first results written", func() bool { return written() > 0 })

	cmd := exec.Command(bin, filepath.Join(dir, "portpatrol.db"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	io.WriteString(stdin, "BEGIN IMMEDIATE;\n")
	locked := time.Now()
	okProbes := func() float64 { return metric(t, base, `portpatrol_probes_total{class="ok",scheme="tcp"}`) }
	before := okProbes()
	poll(t, 60*time.Second, "store_write fails", func() bool { return failing(selfStatus(t, base), "store_write") })
	probes := okProbes()
	poll(t, 60*time.Second, "probing goes on", func() bool { return okProbes() > probes })
	held := metric(t, base, "portpatrol_history_results_held")
	lockedFor := time.Since(locked)
	during := okProbes() - before
	io.WriteString(stdin, "COMMIT;\n.quit\n")
	stdin.Close()
	free := time.Now()
	poll(t, 60*time.Second, "held results written", func() bool {
		return metric(t, base, "portpatrol_history_results_held") == 0 && !failing(selfStatus(t, base), "store_write")
	})
	lost := metric(t, base, `portpatrol_history_results_total{outcome="failed"}`)
	dropped := metric(t, base, `portpatrol_history_results_total{outcome="dropped"}`)
	t.Logf("sqlite locked %s by another process: %v probes ran meanwhile (%.0f at the 200ms interval without the lock), %v results held at the last read; caught up %s after it let go; lost %v, dropped %v",
		lockedFor.Round(time.Millisecond), during, lockedFor.Seconds()/0.2, held, time.Since(free).Round(time.Millisecond), lost, dropped)
	if lost != 0 || dropped != 0 {
		t.Fatalf("results lost %v, dropped %v", lost, dropped)
	}
}
