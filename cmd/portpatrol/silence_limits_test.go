package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestSilenceLimitsThroughEveryLayer: the alert engine's silence rules reach the API
// (a 400 naming the field) and the CLI (a message and exit 3), with the maximum from
// alerting.max_silence.
func TestSilenceLimitsThroughEveryLayer(t *testing.T) {
	dir, dataDir := t.TempDir(), t.TempDir()
	cfgPath := filepath.Join(dir, "portpatrol.yaml")
	testsvc.WriteFile(t, cfgPath, "host_watch: {disabled: true}\nalerting: {max_silence: 48h}\n")
	code, out, errOut := runCLI(t, "token", "create", "--role", "operator", "--name", "ops", "--data-dir", dataDir)
	if code != exitOK {
		t.Fatalf("token create: exit %d: %s%s", code, out, errOut)
	}
	token := regexp.MustCompile(`(?m)^\S{20,}$`).FindString(out)
	if token == "" {
		t.Fatalf("no secret in:\n%s", out)
	}
	d, err := daemon.New(daemon.Config{Path: cfgPath, DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)

	tests := []struct {
		name, body string
		status     int
		field, msg string
	}{
		{"match everything", `{"matchers":[{"name":"target","op":"=~","value":".*"}],"comment":"x","duration":"1h"}`,
			400, "matchers", "match the empty string"},
		{"over max_silence", `{"matchers":[{"name":"target","op":"=","value":"tcp://db:5432"}],"comment":"x","duration":"49h"}`,
			400, "duration", "longer than the maximum of 48h0m0s"},
		{"within max_silence", `{"matchers":[{"name":"target","op":"=","value":"tcp://db:5432"}],"comment":"x","duration":"48h"}`,
			201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/api/v1/silences", strings.NewReader(tt.body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct{ Error, Field string }
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tt.status || e.Field != tt.field || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("got %d %s: %q, want %d %s: …%s…", resp.StatusCode, e.Field, e.Error, tt.status, tt.field, tt.msg)
			}
		})
	}

	for _, tt := range []struct {
		args []string
		msg  string
	}{
		{[]string{"target=~.*", "--for", "1h"}, "matchers: {target=~.*} all match the empty string"},
		{[]string{"target=tcp://db:5432", "--for", "72h"}, "duration: lasts 72h0m0s, longer than the maximum of 48h0m0s"},
	} {
		code, out, errOut := runCLI(t, append([]string{"silence", "add", "--server", srv.URL, "--token", token, "-m", "drill"}, tt.args...)...)
		if code != exitUnknown || !strings.Contains(errOut, tt.msg) {
			t.Errorf("silence add %v: got exit %d: %s%s, want exit %d saying %q", tt.args, code, out, errOut, exitUnknown, tt.msg)
		}
	}
}
