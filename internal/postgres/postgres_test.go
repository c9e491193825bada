package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/storetest"
)

// testDSN is the PostgreSQL the tests use: $PORTPATROL_TEST_POSTGRES, else the
// server on this machine.
func testDSN() string {
	if d := os.Getenv("PORTPATROL_TEST_POSTGRES"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// newSchema creates a schema of its own for one test and drops it afterwards. It
// returns a DSN whose search_path selects it. Without a reachable server the test is
// skipped, or fails when CI=true.
func newSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s: %v", testDSN(), err)
		}
		t.Skipf("PostgreSQL at %s unreachable (set PORTPATROL_TEST_POSTGRES, or run it; CI=true fails instead): %v", testDSN(), err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema = "portpatrol_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testDSN())
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(testDSN())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.DB {
		dsn, _ := newSchema(t)
		return storetest.DB{
			Open: func(ctx context.Context) (store.Backend, error) {
				return Open(ctx, Config{DSN: dsn})
			},
			SetSchemaVersion: func(t *testing.T, v int) {
				t.Helper()
				conn, err := pgx.Connect(t.Context(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(t.Context())
				if _, err := conn.Exec(t.Context(), `INSERT INTO schema_version (version, name, applied_ns) VALUES ($1, 'from the future', 0)`, v); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

// TestConcurrentOpen starts several instances on one empty schema at once: the
// migration lock lets exactly one create the tables.
func TestConcurrentOpen(t *testing.T) {
	dsn, _ := newSchema(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			db, err := Open(t.Context(), Config{DSN: dsn})
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Errorf("concurrent open: %v", err)
		}
	}
}
