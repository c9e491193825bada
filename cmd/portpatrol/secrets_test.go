package main

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/exporter"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// lockedBuffer is a log sink the daemon's goroutines may write to while a test reads.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPasswordsNeverShown: a target URL whose password breaks it ('#', '/') or that is
// wrong elsewhere is reported without the password by ParseTarget, `config check`,
// the /probe endpoint, the API and the daemon's log. The password's halves are
// searched for, since a '#' once left ":zq" in 'invalid port ":zq" after host'.
func TestPasswordsNeverShown(t *testing.T) {
	inputs := []string{
		"redis://admin:zq#xv@127.0.0.1:6379",
		"redis://admin:zq/xv@127.0.0.1:6379",
		"redis://admin:zqxv@127.0.0.1:99999",
		"redis://admin:zqxv@127.0.0.1:6379#frag",
		"admin:zqxv@127.0.0.1",
	}
	leaks := func(t *testing.T, where, text string) {
		t.Helper()
		if strings.Contains(text, "zq") || strings.Contains(text, "xv") {
			t.Errorf("%s shows the password:\n%s", where, text)
		}
	}
	var logs lockedBuffer
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portpatrol.yaml")
	testsvc.WriteFile(t, cfgPath, "api: {anonymous_read: true}\nhost_watch: {disabled: true}\n")
	d, err := daemon.New(daemon.Config{Path: cfgPath, DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	api := d.Handler()
	probeHandler := &exporter.ProbeHandler{Modules: func() map[string]probe.Module {
		return map[string]probe.Module{"tcp_connect": {Prober: "tcp"}}
	}}

	for _, in := range inputs {
		t.Run(in, func(t *testing.T) {
			_, err := patrol.ParseTarget(in)
			if err == nil {
				t.Fatal("ParseTarget: got no error")
			}
			leaks(t, "the ParseTarget error", err.Error())

			path := filepath.Join(dir, "bad.yaml")
			testsvc.WriteFile(t, path, "targets:\n  - url: '"+in+"'\n")
			code, out, errOut := runCLI(t, "config", "check", path)
			if code == exitOK {
				t.Errorf("config check: got exit %d, want a failure", code)
			}
			leaks(t, "config check", out+errOut)

			rec := httptest.NewRecorder()
			probeHandler.ServeHTTP(rec, httptest.NewRequest("GET", "/probe?module=tcp_connect&target="+url.QueryEscape(in), nil))
			if rec.Code != 400 {
				t.Errorf("/probe: got %d, want 400: %s", rec.Code, rec.Body)
			}
			leaks(t, "the /probe answer", rec.Body.String())

			for _, p := range []string{"/api/v1/targets/" + url.PathEscape(in), "/api/v1/targets/history?id=" + url.QueryEscape(in)} {
				req := httptest.NewRequest("GET", p, nil)
				req.RemoteAddr = "127.0.0.1:40000"
				req.Host = "127.0.0.1:9115"
				rec := httptest.NewRecorder()
				api.ServeHTTP(rec, req)
				if rec.Code < 400 || rec.Code >= 500 {
					t.Errorf("GET %s: got %d, want a 4xx: %s", p, rec.Code, rec.Body)
				}
				leaks(t, "the API answer to GET "+p, rec.Body.String())
			}
		})
	}
	leaks(t, "the daemon's log", logs.String())
}
