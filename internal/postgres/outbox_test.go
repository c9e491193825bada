package postgres

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/store/storetest"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	notifystoretest "github.com/portpatrol/portpatrol/internal/notify/storetest"
)

func TestOutboxStore(t *testing.T) {
	notifystoretest.Run(t, func(t *testing.T) notify.Store { return openSchema(t, Config{}) })
}

// TestRestart runs the shared restart suite on a schema reconnected to each time.
func TestRestart(t *testing.T) {
	storetest.RunRestart(t, func(t *testing.T) storetest.Opener {
		dsn, _ := newSchema(t)
		return func(t *testing.T, maxAge time.Duration, now func() time.Time) storetest.Durable {
			db, err := Open(t.Context(), Config{DSN: dsn, OutboxMaxAge: maxAge, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			return db
		}
	})
}

// TestConcurrentPut races Puts of the same keys from two instances: each key is
// inserted once, and the Seqs of one receiver are distinct.
func TestConcurrentPut(t *testing.T) {
	dsn, _ := newSchema(t)
	dbs := []*DB{openSchema(t, Config{DSN: dsn}), openSchema(t, Config{DSN: dsn})}
	const keys = 20
	var wg sync.WaitGroup
	inserted := make([][]bool, len(dbs))
	errs := make(chan error, len(dbs)*keys)
	for i, db := range dbs {
		inserted[i] = make([]bool, keys)
		wg.Go(func() {
			for k := range keys {
				ok, err := db.Put(t.Context(), storetest.Delivery("a", fmt.Sprint(k), notifytest.T0))
				if err != nil {
					errs <- err
				}
				inserted[i][k] = ok
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for k := range keys {
		if inserted[0][k] == inserted[1][k] {
			t.Errorf("key %d: inserted by instance 0 %v, by 1 %v; want exactly one", k, inserted[0][k], inserted[1][k])
		}
	}
	got, err := dbs[0].List(t.Context(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != keys {
		t.Errorf("got %d deliveries, want %d", len(got), keys)
	}
}
