package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckExitCodesAndLines(t *testing.T) {
	open, closed := testsvc.Listen(t), testsvc.ClosedPort(t)
	tests := []struct {
		name     string
		args     []string
		code     int
		contains []string
	}{
		{"open", []string{"check", open}, exitOK, []string{"OK   tcp://" + open, "connect "}},
		{"closed", []string{"check", closed}, exitCritical, []string{"CRIT tcp://" + closed, "refused: connect " + closed + ": connection refused"}},
		{"worst wins", []string{"check", open, closed}, exitCritical, []string{"OK ", "CRIT "}},
		{"slow is warning", []string{"check", "--warn", "1ns", open}, exitWarning, []string{"WARN tcp://" + open, "slow: took"}},
		{"count summary", []string{"check", "-n", "3", "-i", "10ms", open}, exitOK, []string{"--- tcp://" + open + ": 3 probes, 0% loss, min/avg/p95/max = "}},
		{"count all lost", []string{"check", "-n", "2", "-i", "10ms", closed}, exitCritical, []string{"2 probes, 100% loss"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("got exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
			for _, c := range tt.contains {
				if !strings.Contains(out, c) {
					t.Errorf("stdout %q does not contain %q", out, c)
				}
			}
		})
	}
}

func TestCheckBadInputIsUnknown(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no target", []string{"check"}, "requires at least 1 arg"},
		{"bad target", []string{"check", "localhost"}, `invalid target "localhost": missing port`},
		{"bad scheme", []string{"check", "gopher://x:70"}, `unknown scheme "gopher"`},
		{"bad option", []string{"check", "tcp://127.0.0.1:1?bogus=1"}, "unknown option bogus"},
		{"bad timeout", []string{"check", "--timeout", "0s", "127.0.0.1:1"}, "--timeout must be positive"},
		{"bad flag", []string{"check", "--nope", "127.0.0.1:1"}, "unknown flag: --nope"},
		{"bad module", []string{"check", "-m", "nope", "127.0.0.1:1"}, `unknown module "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tt.args...)
			if code != exitUnknown {
				t.Errorf("got exit %d, want %d", code, exitUnknown)
			}
			if !strings.Contains(errOut, tt.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
				t.Errorf("stderr %q: want one line containing %q", errOut, tt.want)
			}
			if strings.Contains(errOut, "goroutine") {
				t.Errorf("stack trace on bad input: %s", errOut)
			}
		})
	}
}

func TestCheckJSON(t *testing.T) {
	open, closed := testsvc.Listen(t), testsvc.ClosedPort(t)
	code, out, _ := runCLI(t, "check", "--json", open, closed)
	if code != exitCritical {
		t.Errorf("got exit %d, want %d", code, exitCritical)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2: %q", len(lines), out)
	}
	byTarget := map[string]map[string]any{}
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		for _, k := range []string{"target", "up", "class", "duration_seconds", "error"} {
			if _, ok := m[k]; !ok {
				t.Errorf("line %q lacks %q", l, k)
			}
		}
		byTarget[m["target"].(string)] = m
	}
	if m := byTarget["tcp://"+open]; m["up"] != true || m["class"] != "ok" {
		t.Errorf("open: got %v", m)
	}
	if m := byTarget["tcp://"+closed]; m["up"] != false || m["class"] != "refused" {
		t.Errorf("closed: got %v", m)
	}
}

func TestServeRejectsBadConfigAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, "targets:\n  - url: 127.0.0.1:1\n    bogus: 1\n")
	code, _, errOut := runCLI(t, "serve", "-c", path, "--data-dir", t.TempDir())
	if code != exitUnknown || !strings.Contains(errOut, "pp.yaml:3:5: targets[0].bogus: unknown field \"bogus\"") {
		t.Errorf("got exit %d, stderr %q", code, errOut)
	}
}
