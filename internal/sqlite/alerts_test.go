package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/portpatrol/portpatrol/internal/alert"
	alertstoretest "github.com/portpatrol/portpatrol/internal/alert/storetest"
)

// openTemp opens a new database in a temporary directory and closes it at cleanup.
func openTemp(t *testing.T, cfg Config) *DB {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), FileName)
	}
	db, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAlertStore(t *testing.T) {
	alertstoretest.Run(t, func(t *testing.T) alert.Store { return openTemp(t, Config{}) })
}
