package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/storetest"
)

func TestBanStore(t *testing.T) {
	storetest.RunBans(t, func(t *testing.T) store.BanStore {
		db, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), FileName)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}
