// Package faults_test runs portpatrol through the faults of a real host — a full disk,
// a database that goes away, a locked SQLite file, a slow receiver — and checks that
// it keeps probing and alerting, says what is wrong, and loses nothing it took. Each
// test prints its figures with t.Logf (go test -v ./test/faults).
package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// unavailable skips the test with why, or fails it under CI=true, where this machine
// supports every scenario.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: this scenario must run)", msg)
	}
	t.Skip(msg)
}

// startDaemon builds a daemon from body (a YAML configuration) with dataDir, runs it on
// a loopback port until the test ends and returns it with its base URL.
func startDaemon(t *testing.T, body, dataDir string) (*daemon.Daemon, string) {
	t.Helper()
	cfg, err := config.Parse([]byte(body), filepath.Join(t.TempDir(), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.New(daemon.Config{Config: cfg, DataDir: dataDir})
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
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the daemon did not stop within 30s")
		}
		if err := d.Close(); err != nil {
			t.Logf("close: %v", err)
		}
	})
	return d, "http://" + ln.Addr().String()
}

// poll calls ok every 50ms until it reports true, or fails the test after within.
func poll(t *testing.T, within time.Duration, what string, ok func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !ok() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// selfStatus reads /-/self.
func selfStatus(t *testing.T, base string) daemon.SelfStatus {
	t.Helper()
	_, body := testsvc.Get(t, base+"/-/self")
	var st daemon.SelfStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("/-/self: %v: %s", err, body)
	}
	return st
}

// failing reports whether check fails in st.
func failing(st daemon.SelfStatus, check string) bool {
	for _, c := range st.Failing(nil) {
		if c.Name == check {
			return true
		}
	}
	return false
}

// metric returns the value of the series line that starts with prefix in /metrics, or
// -1.
func metric(t *testing.T, base, prefix string) float64 {
	t.Helper()
	_, body := testsvc.Get(t, base+"/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(l, prefix+" "), &v)
			return v
		}
	}
	return -1
}
