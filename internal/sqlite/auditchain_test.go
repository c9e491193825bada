package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/storetest"
)

// TestAuditChain runs the audit chain suite on a real file, tampered with through a
// connection of its own, as someone with write access to the file would.
func TestAuditChain(t *testing.T) {
	storetest.RunAuditChain(t, func(t *testing.T) storetest.AuditDB {
		path := filepath.Join(t.TempDir(), FileName)
		return storetest.AuditDB{
			Open: func(t *testing.T) store.AuditChainStore {
				t.Helper()
				db, err := Open(t.Context(), Config{Path: path})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			},
			Exec: func(t *testing.T, query string) {
				t.Helper()
				db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(query); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
			},
		}
	})
}
