package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestConfigCheckAndServeJudgeAlike: config check and the daemon serve builds load a
// file through one path, so they accept and refuse the same files with the same
// messages, and a file's problems all come out in one run.
func TestConfigCheckAndServeJudgeAlike(t *testing.T) {
	tests := []struct {
		name, body string
		want       []string // the lines of the error; none for a good file
	}{
		{"good", "targets: [{url: 127.0.0.1:1, interval: 1ms, timeout: 1ms}]\nlisten: '[::1]:0'\n", nil},
		{"listen port out of range", "listen: 127.0.0.1:99999\n",
			[]string{`:1:9: listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`}},
		{"listen host", "listen: 300.0.0.1:9115\n",
			[]string{`:1:9: listen: "300.0.0.1:9115": host "300.0.0.1" is not an IP address or a host name`}},
		{"negative interval", "targets:\n  - url: 127.0.0.1:1\n    interval: -1s\n",
			[]string{":3:15: targets[0].interval: must not be negative, got -1s"}},
		{"sub-millisecond interval", "targets:\n  - url: 127.0.0.1:1\n    interval: 500us\n",
			[]string{":3:15: targets[0].interval: must be at least 1ms, got 500µs"}},
		{"sub-millisecond timeout", "targets:\n  - url: 127.0.0.1:1\n    timeout: 0.5ms\n",
			[]string{":3:14: targets[0].timeout: must be at least 1ms, got 500µs"}},
		{"timeout over interval", "targets:\n  - url: 127.0.0.1:1\n    interval: 1s\n    timeout: 2s\n",
			[]string{":4:14: targets[0].timeout: timeout 2s is longer than the interval 1s"}},
		{"negative success threshold", "defaults: {success_threshold: -1}\n",
			[]string{":1:31: defaults.success_threshold: must not be negative, got -1"}},
		{"scheduler", "scheduler: {flap_window: -5m, concurrency: 99999999}\n", []string{
			":1:26: scheduler.flap_window: must not be negative, got -5m0s",
			":1:44: scheduler.concurrency: must be at most 65536, got 99999999",
		}},
		{"audit interval", "audits: [{policy: policy.yaml, interval: 10ms}]\n",
			[]string{":1:42: audits[0].interval: must be at least 1s, got 10ms"}},
		{"alerting", "alerting:\n  rules:\n    slow: {severity: P7}\n",
			[]string{`:3:22: alerting.rules.slow.severity: "P7": want P0, P1, P2 or P3`}},
		{"type error and semantic errors together", "listen: 127.0.0.1:99999\ntargets:\n  - url: 127.0.0.1:1\n    timeout: soon\n  - url: 127.0.0.1:2\n    interval: -1s\n", []string{
			`:1:9: listen: "127.0.0.1:99999": port "99999" is not a number from 0 to 65535`,
			`:4:14: targets[0].timeout: "soon" is not a duration; write e.g. 500ms, 5s, 1m30s`,
			":6:15: targets[1].interval: must not be negative, got -1s",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "pp.yaml")
			testsvc.WriteFile(t, filepath.Join(dir, "policy.yaml"), "hosts:\n  - match: local\n    allow: [22]\n")
			// host_watch is appended, not prepended, so the positions above hold.
			testsvc.WriteFile(t, path, tt.body+"host_watch: {disabled: true}\n")
			code, _, errOut := runCLI(t, "config", "check", path)
			d, err := daemon.New(daemon.Config{Path: path, DataDir: t.TempDir()})
			if err == nil {
				d.Close()
			}
			if tt.want == nil {
				if code != exitOK || err != nil {
					t.Fatalf("config check: exit %d, %s; daemon.New: %v; want both to accept", code, errOut, err)
				}
				return
			}
			if code != exitUnknown {
				t.Errorf("config check: got exit %d, want %d", code, exitUnknown)
			}
			if err == nil {
				t.Fatal("daemon.New accepted the file config check refuses")
			}
			if got, want := strings.TrimSuffix(errOut, "\n"), err.Error(); got != want {
				t.Errorf("config check said\n  %s\ndaemon.New said\n  %s", got, want)
			}
			lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(tt.want), errOut)
			}
			for i, w := range tt.want {
				if want := path + w; !strings.HasPrefix(lines[i], want) {
					t.Errorf("problem %d:\n  got  %s\n  want %s", i, lines[i], want)
				}
			}
		})
	}
}
