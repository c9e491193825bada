package faults_test

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestShutdownFinishesDeliveries stops the daemon (as SIGTERM does, by ending Run's
// context) while a notification is in flight to a receiver that takes a second to
// answer: the send finishes within the grace and is recorded as delivered, so the next
// start does not send it again.
func TestShutdownFinishesDeliveries(t *testing.T) {
	started := make(chan struct{}, 4)
	var finished atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		time.Sleep(time.Second)
		finished.Add(1)
	}))
	t.Cleanup(rcv.Close)
	flip := testsvc.NewFlip(t)
	dir := t.TempDir()
	cfg, err := config.Parse([]byte(`host_watch: {disabled: true}
defaults: {interval: 200ms, timeout: 100ms, failure_threshold: 1}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  receivers: [{name: default, type: webhook, url: `+rcv.URL+`}]
targets:
  - url: tcp://`+flip.Addr+`
`), filepath.Join(t.TempDir(), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Config{Config: cfg, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, ln) }()
	flip.Close()
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("no notification sent")
	}
	stop := time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	took := time.Since(stop)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if finished.Load() == 0 {
		t.Fatal("the send in flight was cut off by the stop")
	}
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "portpatrol.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err := db.List(t.Context(), notify.Filter{})
	if err != nil || len(ds) == 0 {
		t.Fatalf("deliveries: %v %v", ds, err)
	}
	if ds[0].State != notify.StateDelivered {
		t.Fatalf("the delivery in flight at the stop is %s, want delivered", ds[0].State)
	}
	t.Logf("shutdown: stopped %s after the stop began, the send in flight (1 s) finished and was recorded delivered (grace %s)", took.Round(time.Millisecond), notify.ShutdownGrace)
}

// TestNewerSchemaRefused: a data directory whose store was written by a newer
// portpatrol is refused at start with a message that says to upgrade, and is left as
// it was.
func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portpatrol.db")
	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	var have int
	if err := raw.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&have); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO schema_version (version, name, applied_ns) VALUES (?, 'from the future', 0)`, have+1); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	cfg, err := config.Parse([]byte("host_watch: {disabled: true}\n"), filepath.Join(t.TempDir(), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = daemon.New(daemon.Config{Config: cfg, DataDir: dir})
	var tooNew *store.SchemaTooNewError
	if !errors.As(err, &tooNew) || !strings.Contains(err.Error(), "upgrade portpatrol") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a refusal naming the file and saying to upgrade", err)
	}
	refusal := err.Error()
	raw, err = sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var now int
	if err := raw.QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&now); err != nil || now != have+1 {
		t.Fatalf("schema version after the refusal: %d, %v; want %d untouched", now, err, have+1)
	}
	t.Logf("newer schema refused: %s", refusal)
}
