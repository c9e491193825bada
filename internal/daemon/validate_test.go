package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
)

// badFiles are configurations the daemon used to take further than config check did:
// the scheduler, the listener or Kubernetes discovery refused them, without a position,
// or nothing did.
var badFiles = []struct{ name, body, want string }{
	{"listen port out of range", "listen: 127.0.0.1:99999\n", `:1:9: listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`},
	{"negative interval", "targets:\n  - url: 127.0.0.1:1\n    interval: -1s\n", ":3:15: targets[0].interval: must not be negative, got -1s"},
	{"sub-millisecond interval", "targets:\n  - url: 127.0.0.1:1\n    interval: 500us\n", ":3:15: targets[0].interval: must be at least 1ms, got 500µs"},
	{"sub-millisecond timeout", "targets:\n  - url: 127.0.0.1:1\n    timeout: 0.5ms\n", ":3:14: targets[0].timeout: must be at least 1ms, got 500µs"},
	{"negative threshold", "targets:\n  - url: 127.0.0.1:1\n    failure_threshold: -1\n", ":3:24: targets[0].failure_threshold: must not be negative, got -1"},
	{"negative default interval", "defaults: {interval: -1s}\n", ":1:22: defaults.interval: must not be negative, got -1s"},
	{"bad selector", "kubernetes: {enabled: true, selector: 'a in ('}\n", `:1:39: kubernetes.selector: "a in (": `},
}

// TestNewRefusesWhatConfigCheckRefuses: New reads a file through config.Load and
// nothing else, so it refuses the same files with the same errors, positions included.
func TestNewRefusesWhatConfigCheckRefuses(t *testing.T) {
	for _, tt := range badFiles {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pp.yaml")
			if err := os.WriteFile(path, []byte(tt.body+"host_watch: {disabled: true}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, loadErr := config.Load(path)
			if loadErr == nil {
				t.Fatalf("config.Load accepted it, want %s", tt.want)
			}
			d, err := New(Config{Path: path, DataDir: t.TempDir()})
			if err == nil {
				d.Close()
				t.Fatalf("New accepted it, want %s", loadErr)
			}
			if err.Error() != loadErr.Error() {
				t.Errorf("New: got\n  %v\nwant config.Load's\n  %v", err, loadErr)
			}
			want := path + tt.want
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got\n  %v\nwant one containing\n  %s", err, want)
			}
		})
	}
}

// TestReloadFileRefusesWhatConfigCheckRefuses: a reload judges the file as New does,
// and keeps the running configuration.
func TestReloadFileRefusesWhatConfigCheckRefuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pp.yaml")
	good := "host_watch: {disabled: true}\ntargets: [{url: 127.0.0.1:1}]\n"
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Path: path, DataDir: t.TempDir(), Clock: notifytest.NewClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	running := d.cfg()
	for _, tt := range badFiles {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.body+"host_watch: {disabled: true}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, loadErr := config.Load(path)
			err := d.ReloadFile()
			if err == nil || loadErr == nil || err.Error() != loadErr.Error() {
				t.Errorf("ReloadFile: got %v, want config.Load's %v", err, loadErr)
			}
			if d.cfg() != running {
				t.Error("the failed reload replaced the running configuration")
			}
		})
	}
}
