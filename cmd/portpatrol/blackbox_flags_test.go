package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestServeTakesBlackboxFlagNames runs serve with blackbox_exporter's flag names: each
// must reach the flag it stands for, which the error of a deliberately bad value shows.
func TestServeTakesBlackboxFlagNames(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "blackbox.yml")
	testsvc.WriteFile(t, bad, "modules:\n  x:\n    prober: tcp\n    timeout: soon\n")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config.file", []string{"--config.file", bad}, bad + `:4:14: modules.x.timeout: "soon" is not a duration`},
		{"config.file with =", []string{"--config.file=" + bad}, bad + ":4:14: modules.x.timeout"},
		{"log.level", []string{"--log.level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{"log.format", []string{"--log.format", "xml"}, `--log-format "xml": want text or json`},
		{"web.listen-address", []string{"--web.listen-address", busy.Addr().String(), "--log.format", "logfmt", "--log.level", "error",
			"--data-dir", t.TempDir()}, "listen on " + busy.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, append([]string{"serve"}, tc.args...)...)
			if code != exitUnknown {
				t.Errorf("got exit %d, want %d", code, exitUnknown)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("got stderr %q, want it to contain %q", errOut, tc.want)
			}
		})
	}
	// The aliases are accepted, not advertised.
	_, out, _ := runCLI(t, "serve", "--help")
	if strings.Contains(out, "--config.file ") || !strings.Contains(out, "--config string") {
		t.Errorf("serve --help lists the aliases as flags:\n%s", out)
	}
}

// TestVersionFlag checks that --version prints what the version command prints.
func TestVersionFlag(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "v9.8.7", "{{.Name}}"
	code, want, _ := runCLI(t, "version")
	if code != exitOK || !strings.HasPrefix(want, "portpatrol v9.8.7\n") {
		t.Fatalf("version: exit %d, %q", code, want)
	}
	code, got, errOut := runCLI(t, "--version")
	if code != exitOK {
		t.Fatalf("--version: exit %d: %s", code, errOut)
	}
	if got != want {
		t.Errorf("--version printed %q, want %q as version does", got, want)
	}
}

// TestConfigCheckPrintsWarnings checks that config check accepts a blackbox.yml with
// fields portpatrol does not act on, and names each with its position.
func TestConfigCheckPrintsWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "blackbox.yml")
	testsvc.WriteFile(t, path, "modules:\n  http_3xx:\n    prober: http\n    http:\n      enable_http3: true\n      enable_http2: false\n      valid_http_versions: [\"HTTP/3.0\"]\n  ping:\n    prober: icmp\n    icmp: {ttl: 5}\n")
	code, out, errOut := runCLI(t, "config", "check", path)
	if code != exitOK {
		t.Fatalf("got exit %d (%s), want %d", code, errOut, exitOK)
	}
	wantErr := path + ":5:21: warning: modules.http_3xx.http.enable_http3: HTTP/3 is not supported"
	if !strings.Contains(errOut, wantErr) {
		t.Errorf("got stderr %q, want it to contain %q", errOut, wantErr)
	}
	if want := path + ": OK (0 targets, "; !strings.HasPrefix(out, want) || !strings.Contains(out, ", 1 warnings)") {
		t.Errorf("got stdout %q, want %q… with 1 warning", out, want)
	}
}
