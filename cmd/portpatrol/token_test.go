package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// token create names the store it wrote to, --quiet prints the secret alone for
// TOKEN=$(…), --json an object; a daemon on another store says which one it reads when
// it does not know a token.
func TestTokenCreateOutputs(t *testing.T) {
	dataDir := t.TempDir()
	store := "sqlite:" + filepath.Join(dataDir, "portpatrol.db")

	code, out, errOut := runCLI(t, "token", "create", "--name", "alice", "--data-dir", dataDir)
	if code != exitOK || !strings.Contains(out, "in "+store+".") {
		t.Errorf("plain: exit %d, stdout %q: want the store %s named", code, out, store)
	}

	code, out, errOut = runCLI(t, "token", "create", "-q", "--role", "operator", "--name", "ci", "--data-dir", dataDir)
	secret := strings.TrimSpace(out)
	if code != exitOK || strings.ContainsAny(secret, " \n") || !strings.HasPrefix(secret, "ppt_") {
		t.Fatalf("--quiet: exit %d, stdout %q: want the secret alone", code, out)
	}
	if !strings.Contains(errOut, store) {
		t.Errorf("--quiet: stderr %q does not name the store", errOut)
	}

	code, out, _ = runCLI(t, "token", "create", "--json", "--name", "grafana", "--data-dir", dataDir)
	var got struct{ ID, Name, Role, Secret, Store string }
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
		t.Fatalf("--json: exit %d, %v: %q", code, err, out)
	}
	if got.Name != "grafana" || got.Role != "viewer" || !strings.HasPrefix(got.Secret, "ppt_") || got.Store != store || got.ID == "" {
		t.Errorf("--json: got %+v", got)
	}

	if code, _, errOut := runCLI(t, "token", "create", "-q", "--json", "--name", "x", "--data-dir", dataDir); code != exitUnknown || !strings.Contains(errOut, "--quiet and --json") {
		t.Errorf("-q with --json: exit %d, %q", code, errOut)
	}

	// The secret works against a daemon on the same store; a daemon on another store
	// names the one it reads.
	cfg := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, cfg, "host_watch: {disabled: true}\n")
	for _, tt := range []struct {
		dir  string
		code int
		want string
	}{
		{dataDir, http.StatusOK, ""},
		{t.TempDir(), http.StatusUnauthorized, "this server reads tokens from sqlite:"},
	} {
		d, err := daemon.New(daemon.Config{Path: cfg, DataDir: tt.dir})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(d.Handler())
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/alerts", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		body := string(b)
		resp.Body.Close()
		srv.Close()
		d.Close()
		if resp.StatusCode != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("daemon on %s: got %d %q, want %d containing %q", tt.dir, resp.StatusCode, body, tt.code, tt.want)
		}
	}
}
