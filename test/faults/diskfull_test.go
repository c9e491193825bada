package faults_test

import (
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// tmpfs mounts a tmpfs of size at a new directory and unmounts it when the test ends.
func tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		unavailable(t, "mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return
		}
	}
}

// TestDiskFull runs the daemon with its SQLite store on a 2 MB tmpfs and fills it:
// probing and alerting go on, a target that goes down is still notified, the operator
// is told once (the store_write self alert), results are held and written when space
// returns, and the database passes PRAGMA integrity_check.
func TestDiskFull(t *testing.T) {
	dir := tmpfs(t, "2m")
	flip := testsvc.NewFlip(t)
	rcv := testsvc.NewWebhook(t)
	d, base := startDaemon(t, `host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms, failure_threshold: 1}
self_check: {interval: 1s}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 200ms, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: `+rcv.URL+`}]
targets:
  - url: tcp://`+flip.Addr+`
`, dir)
	_ = d
	poll(t, 30*time.Second, "first results written", func() bool { return metric(t, base, `portpatrol_history_results_total{outcome="written"}`) > 0 })

	fill(t, filepath.Join(dir, "fill"))
	full := time.Now()
	probesAtFull := metric(t, base, `portpatrol_probes_total{class="ok",scheme="tcp"}`)
	poll(t, 30*time.Second, "store_write self-check fails", func() bool { return failing(selfStatus(t, base), "store_write") })
	told := time.Since(full)
	// The target goes down while the disk is full: its alert still goes out.
	flip.Close()
	rcv.WaitAbout(t, "tcp://"+flip.Addr, 1, 30*time.Second)
	poll(t, 30*time.Second, "probing goes on", func() bool {
		return metric(t, base, `portpatrol_probes_total{class="refused",scheme="tcp"}`) > 0 &&
			metric(t, base, `portpatrol_probes_total{class="ok",scheme="tcp"}`) >= probesAtFull
	})
	// The reserve's space fills too: results are held in memory.
	fill(t, filepath.Join(dir, "fill2"))
	var held float64
	poll(t, 30*time.Second, "results held", func() bool { held = metric(t, base, "portpatrol_history_results_held"); return held > 0 })
	if !failing(selfStatus(t, base), "store_write") {
		t.Fatal("store_write cleared while the disk is still full")
	}

	// Space returns.
	for _, f := range []string{"fill", "fill2"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	back := time.Now()
	poll(t, 60*time.Second, "held results written", func() bool {
		return metric(t, base, "portpatrol_history_results_held") == 0 && !failing(selfStatus(t, base), "store_write")
	})
	resumed := time.Since(back)
	flip.Open(t)
	poll(t, 30*time.Second, "the target's recovery notified", func() bool {
		for _, m := range testsvc.About(rcv.Messages(), "tcp://"+flip.Addr) {
			if m.Status == "resolved" {
				return true
			}
		}
		return false
	})
	lost := metric(t, base, `portpatrol_history_results_total{outcome="failed"}`)
	dropped := metric(t, base, `portpatrol_history_results_total{outcome="dropped"}`)
	storeAlerts := 0
	for _, m := range rcv.Messages() {
		for _, a := range m.Alerts {
			if a.Labels["check"] == "store_write" && m.Status == "firing" {
				storeAlerts++
			}
		}
	}
	t.Logf("disk full: told after %s; %v results held in memory; writes resumed %s after space returned; lost %v, dropped %v; store_write firing messages %d",
		told.Round(time.Millisecond), held, resumed.Round(time.Millisecond), lost, dropped, storeAlerts)
	if lost != 0 || dropped != 0 {
		t.Fatalf("results lost %v, dropped %v; want none within the hold bound", lost, dropped)
	}
	if storeAlerts > 1 {
		t.Fatalf("the operator was told %d times of store_write, want once", storeAlerts)
	}

	// Integrity of the database, read by a connection of its own.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "portpatrol.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %q, %v", res, err)
	}
}
