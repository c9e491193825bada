package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/storetest"
)

// TestAuditChain runs the audit chain suite on a real table, in a schema of its own,
// tampered with through a connection of its own; Open makes a new pool each time, as a
// second instance sharing the database would.
func TestAuditChain(t *testing.T) {
	storetest.RunAuditChain(t, func(t *testing.T) storetest.AuditDB {
		dsn, _ := newSchema(t)
		return storetest.AuditDB{
			Open: func(t *testing.T) store.AuditChainStore {
				t.Helper()
				db, err := Open(t.Context(), Config{DSN: dsn})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				return db
			},
			Exec: func(t *testing.T, query string) {
				t.Helper()
				conn, err := pgx.Connect(t.Context(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(t.Context())
				if _, err := conn.Exec(t.Context(), query); err != nil {
					t.Fatalf("%s: %v", query, err)
				}
			},
		}
	})
}
