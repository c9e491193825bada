package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

// checkModes fails for each of the files that does not have its wanted mode.
func checkModes(t *testing.T, want map[string]os.FileMode) {
	t.Helper()
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if got := fi.Mode().Perm(); got != mode {
			t.Errorf("%s: got mode %#o, want %#o", filepath.Base(path), got, mode)
		}
	}
}

// write stores a token, so the -wal and -shm files exist.
func write(t *testing.T, db *DB) {
	t.Helper()
	tok, _, err := store.NewToken("t", store.RoleViewer, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
}

func TestFilesAreCreatedPrivate(t *testing.T) {
	for _, umask := range []int{0o022, 0o002, 0o000} {
		t.Run(fmt.Sprintf("umask %#o", umask), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "state", "portpatrol")
			path := filepath.Join(dir, FileName)
			db, err := Open(t.Context(), Config{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			write(t, db)
			checkModes(t, map[string]os.FileMode{dir: 0o700, path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600})
		})
	}
}

func TestOpenTightensAWiderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	db, err := Open(t.Context(), Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	db, err = Open(t.Context(), Config{Path: path, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	write(t, db)
	checkModes(t, map[string]os.FileMode{path: 0o600, path + "-wal": 0o600, path + "-shm": 0o600})
	if got := log.String(); !strings.Contains(got, "tightened the mode") || !strings.Contains(got, "from=0644 to=0600") {
		t.Errorf("log: got %q, want a warning naming the old and new mode", got)
	}
}
