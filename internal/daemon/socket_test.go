package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestRunServesTheLocalSocketWhereConfigured runs the daemon with the socket in the
// data directory (the default), at api.socket, and off, and calls an admin route on it.
func TestRunServesTheLocalSocketWhereConfigured(t *testing.T) {
	for _, tc := range []struct{ name, yaml, sock string }{
		{"default", "", api.SocketName},
		{"api.socket", "api: {socket: run/pp.sock}\n", "run/pp.sock"},
		{"off", "api: {socket: 'off'}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "pp.yaml")
			testsvc.WriteFile(t, path, "host_watch: {disabled: true}\n"+tc.yaml)
			if err := os.MkdirAll(filepath.Join(dir, "run"), 0o700); err != nil {
				t.Fatal(err)
			}
			d, err := New(Config{Path: path, DataDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			base, stop := serveDaemon(t, d)
			waitFor(t, base+"/-/ready", "ready")
			if tc.sock == "" {
				if _, err := os.Stat(filepath.Join(dir, api.SocketName)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("api.socket off: stat %v, want no socket", err)
				}
				stop()
				return
			}
			sock := filepath.Join(dir, tc.sock)
			// POST /-/reload needs an admin: over the socket, root (this test) is one.
			if err := (&api.Client{Socket: sock}).Do(context.Background(), http.MethodPost, "/-/reload", nil, nil); err != nil {
				t.Errorf("reload over %s as uid %d: %v", sock, os.Geteuid(), err)
			}
			var ae *api.Error
			if err := (&api.Client{Base: base}).Do(context.Background(), http.MethodPost, "/-/reload", nil, nil); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
				t.Errorf("reload over TCP without a token: got %v, want 401", err)
			}
			stop()
			if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("after shutdown: stat %s: %v, want the socket removed", sock, err)
			}
		})
	}
}
