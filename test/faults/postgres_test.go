package faults_test

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// pgCtl runs pg_ctl of the server's installation, as the postgres user when root.
func pgCtl(t *testing.T, args ...string) {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		unavailable(t, "no pg_ctl under /usr/lib/postgresql/*/bin")
	}
	cmd := exec.Command(bins[len(bins)-1], args...)
	cmd.Dir = "/"
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "no postgres user to run pg_ctl as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl %v: %v\n%s", args, err, out)
	}
}

// TestPostgresDownAndBack runs the daemon on a PostgreSQL server of its own (never
// the shared one on 5432), stops the server for a while and starts it again: probing
// goes on, results are held within the bound and written when it is back, the alert
// raised while it was down is delivered afterwards, and nothing taken is lost.
func TestPostgresDownAndBack(t *testing.T) {
	pg := testsvc.Postgres(t, testsvc.PostgresOptions{})
	data := filepath.Join(pg.Dir, "data")
	flip := testsvc.NewFlip(t)
	rcv := testsvc.NewWebhook(t)
	// Registered before the daemon's: the restarted server stops after the daemon.
	restarted := false
	t.Cleanup(func() {
		if restarted {
			pgCtl(t, "-D", data, "stop", "-m", "immediate", "-w")
		}
	})
	_, base := startDaemon(t, fmt.Sprintf(`host_watch: {disabled: true}
storage: postgres://postgres@%s/test?sslmode=disable&connect_timeout=2
defaults: {interval: 200ms, timeout: 100ms, failure_threshold: 1}
self_check: {interval: 1s}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 100ms, backoff_max: 500ms, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: %s}]
targets:
  - url: tcp://%s
`, pg.Addr, rcv.URL, flip.Addr), t.TempDir())
	written := func() float64 { return metric(t, base, `portpatrol_history_results_total{outcome="written"}`) }
	poll(t, 30*time.Second, "first results written", func() bool { return written() > 0 })

	pgCtl(t, "-D", data, "stop", "-m", "fast", "-w")
	down := time.Now()
	poll(t, 30*time.Second, "store_write self-check fails", func() bool { return failing(selfStatus(t, base), "store_write") })
	told := time.Since(down)
	flip.Close() // the target goes down while the store is away
	var held float64
	poll(t, 30*time.Second, "results held", func() bool {
		held = metric(t, base, "portpatrol_history_results_held")
		return held > 20 && metric(t, base, `portpatrol_probes_total{class="refused",scheme="tcp"}`) > 0
	})
	outage := time.Since(down)

	// Back on the same address, from the same data directory.
	logFile := filepath.Join(pg.Dir, "restart.log")
	pgCtl(t, "-D", data, "-l", logFile, "-w", "start", "-o",
		fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off", pg.Port, pg.Dir))
	restarted = true
	back := time.Now()
	poll(t, 60*time.Second, "held results written", func() bool {
		return metric(t, base, "portpatrol_history_results_held") == 0 && !failing(selfStatus(t, base), "store_write")
	})
	resumed := time.Since(back)
	rcv.WaitAbout(t, "tcp://"+flip.Addr, 1, 60*time.Second)
	delivered := time.Since(back)
	lost := metric(t, base, `portpatrol_history_results_total{outcome="failed"}`)
	dropped := metric(t, base, `portpatrol_history_results_total{outcome="dropped"}`)
	t.Logf("postgres down %s: told after %s; %v results held (bound 50000); writes resumed %s after it was back; the alert raised meanwhile delivered %s after; lost %v, dropped %v",
		outage.Round(time.Millisecond), told.Round(time.Millisecond), held, resumed.Round(time.Millisecond), delivered.Round(time.Millisecond), lost, dropped)
	if lost != 0 || dropped != 0 {
		t.Fatalf("results lost %v, dropped %v; want none within the hold bound", lost, dropped)
	}
}
