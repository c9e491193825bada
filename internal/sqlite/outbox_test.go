package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/store/storetest"

	"github.com/portpatrol/portpatrol/internal/notify"
	notifystoretest "github.com/portpatrol/portpatrol/internal/notify/storetest"
)

func TestOutboxStore(t *testing.T) {
	notifystoretest.Run(t, func(t *testing.T) notify.Store { return openTemp(t, Config{}) })
}

// TestRestart runs the shared restart suite on a SQLite file reopened each time.
func TestRestart(t *testing.T) {
	storetest.RunRestart(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), FileName)
		return func(t *testing.T, maxAge time.Duration, now func() time.Time) storetest.Durable {
			db, err := Open(t.Context(), Config{Path: path, OutboxMaxAge: maxAge, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return db
		}
	})
}
