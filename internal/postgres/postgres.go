// Package postgres is portpatrol's shared store: PostgreSQL through pgx, for several
// instances keeping one state. It implements store.Backend.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// Config configures Open. DSN is required; the other zero fields mean the defaults.
type Config struct {
	// DSN is a PostgreSQL URL or key/value string, "postgres://user@host/db". Unknown
	// parameters are sent as run-time settings, so "?search_path=portpatrol" selects a
	// schema.
	DSN string
	// Retention bounds the history kept; zero fields mean the defaults.
	Retention store.Retention
	// MaxConns caps the pool; default pgxpool's (the larger of 4 and the CPU count).
	MaxConns int32
	// OutboxMaxAge is the notification outbox's max age (notify.OutboxConfig.MaxAge).
	// Compact deletes deliveries in a final state once they are older than twice it;
	// zero keeps them forever.
	OutboxMaxAge time.Duration
	// Now is the clock used to choose history resolutions and stamp rows; nil means
	// time.Now.
	Now func() time.Time
}

// DB is an open PostgreSQL store. It is safe for concurrent use, also by several
// processes: migrations and compaction take advisory locks, writes are idempotent
// where they race.
type DB struct {
	pool   *pgxpool.Pool
	keep   store.Retention
	now    func() time.Time
	closed sync.Once

	outboxMaxAge time.Duration

	mu      sync.Mutex
	targets map[string]int64 // target name → id, only ids committed
}

var _ store.Backend = (*DB)(nil)

// Open connects and brings the schema up to date. It fails with a
// *store.SchemaTooNewError when the schema was written by a newer portpatrol.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	keep := cfg.Retention.WithDefaults()
	if err := keep.Validate(); err != nil {
		return nil, err
	}
	if cfg.DSN == "" {
		return nil, errors.New("postgres: empty DSN")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{pool: pool, keep: keep, now: cfg.Now, outboxMaxAge: cfg.OutboxMaxAge, targets: make(map[string]int64)}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect %s@%s/%s: %w", pc.ConnConfig.User, pc.ConnConfig.Host, pc.ConnConfig.Database, err)
	}
	if err := migrate(ctx, pool, cfg.Now()); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return db, nil
}

// Close closes the pool, waiting for connections in use to be released.
func (db *DB) Close() error {
	db.closed.Do(db.pool.Close)
	return nil
}

// SchemaVersion returns the version of the database schema.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return v, nil
}

// targetIDs returns the ids of names, inserting the new ones within tx. Names are
// inserted in sorted order so that concurrent writers cannot deadlock. New ids are
// returned in added and cached only once tx commits.
func (db *DB) targetIDs(ctx context.Context, tx pgx.Tx, names []string) (ids, added map[string]int64, err error) {
	ids = make(map[string]int64, len(names))
	var missing []string
	db.mu.Lock()
	for _, n := range names {
		if id, ok := db.targets[n]; ok {
			ids[n] = id
		} else if _, dup := ids[n]; !dup {
			ids[n] = 0
			missing = append(missing, n)
		}
	}
	db.mu.Unlock()
	if len(missing) == 0 {
		return ids, nil, nil
	}
	slices.Sort(missing)
	if _, err := tx.Exec(ctx, `INSERT INTO targets (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`, missing); err != nil {
		return nil, nil, fmt.Errorf("targets: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT name, id FROM targets WHERE name = ANY($1)`, missing)
	if err != nil {
		return nil, nil, fmt.Errorf("targets: %w", err)
	}
	added = make(map[string]int64, len(missing))
	for rows.Next() {
		var n string
		var id int64
		if err := rows.Scan(&n, &id); err != nil {
			return nil, nil, fmt.Errorf("targets: %w", err)
		}
		ids[n], added[n] = id, id
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("targets: %w", err)
	}
	return ids, added, nil
}

func (db *DB) cacheTargets(added map[string]int64) {
	if len(added) == 0 {
		return
	}
	db.mu.Lock()
	for k, v := range added {
		db.targets[k] = v
	}
	db.mu.Unlock()
}

// lookupTarget returns the id of a target name, or ok=false when it has no history.
func (db *DB) lookupTarget(ctx context.Context, name string) (id int64, ok bool, err error) {
	db.mu.Lock()
	id, ok = db.targets[name]
	db.mu.Unlock()
	if ok {
		return id, true, nil
	}
	err = db.pool.QueryRow(ctx, `SELECT id FROM targets WHERE name = $1`, name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("target %s: %w", name, err)
	}
	db.cacheTargets(map[string]int64{name: id})
	return id, true, nil
}

// queryAll runs query on q and reads every row with scan.
func queryAll[T any](ctx context.Context, q querier, scan func(sqlstore.Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.Collect(rows, scan)
}
