package daemon

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/store"
)

func TestDataFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "state", "portpatrol")
	cfg, err := config.Parse([]byte("host_watch: {disabled: true}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Config: cfg, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	newToken(t, d, store.RoleViewer) // a write, so the -wal exists
	want := map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "portpatrol.db"): 0o600,
		filepath.Join(dir, "portpatrol.db-wal"): 0o600, filepath.Join(dir, "portpatrol.db-shm"): 0o600}
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: got mode %#o, want %#o", path, got, mode)
		}
	}
}
