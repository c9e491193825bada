package postgres

import (
	"testing"

	"github.com/portpatrol/portpatrol/internal/alert"
	alertstoretest "github.com/portpatrol/portpatrol/internal/alert/storetest"
)

// openSchema opens cfg, on a new schema when cfg.DSN is empty, and closes it at
// cleanup.
func openSchema(t *testing.T, cfg Config) *DB {
	t.Helper()
	if cfg.DSN == "" {
		cfg.DSN, _ = newSchema(t)
	}
	db, err := Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestAlertStore(t *testing.T) {
	alertstoretest.Run(t, func(t *testing.T) alert.Store { return openSchema(t, Config{}) })
}
