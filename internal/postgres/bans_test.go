package postgres

import (
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/storetest"
)

func TestBanStore(t *testing.T) {
	storetest.RunBans(t, func(t *testing.T) store.BanStore {
		dsn, _ := newSchema(t)
		db, err := Open(t.Context(), Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
