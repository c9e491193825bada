package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.DB {
		path := filepath.Join(t.TempDir(), FileName)
		return storetest.DB{
			Open: func(ctx context.Context) (store.Backend, error) {
				return Open(ctx, Config{Path: path})
			},
			SetSchemaVersion: func(t *testing.T, v int) {
				t.Helper()
				db, err := sql.Open("sqlite", path)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(`INSERT INTO schema_version (version, name, applied_ns) VALUES (?, 'from the future', 0)`, v); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

func TestPragmas(t *testing.T) {
	db, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), FileName)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, tt := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "1"}, // NORMAL
		{"foreign_keys", "1"},
		{"auto_vacuum", "2"}, // INCREMENTAL
		{"busy_timeout", "5000"},
	} {
		for name, pool := range map[string]*sql.DB{"writer": db.write, "reader": db.read} {
			var got string
			if err := pool.QueryRow("PRAGMA " + tt.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s PRAGMA %s: got %s, want %s", name, tt.pragma, got, tt.want)
			}
		}
	}
}
