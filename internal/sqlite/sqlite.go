// Package sqlite is portpatrol's embedded store: one SQLite file (pure Go,
// modernc.org/sqlite) in WAL mode, implementing store.Backend.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// FileName is the database file in the data directory.
const FileName = "portpatrol.db"

// Config configures Open. The zero value opens FileName in store.DefaultDataDir()
// with the default retention.
type Config struct {
	// Path is the database file; its directory is created (0700) if missing.
	Path string
	// Retention bounds the history kept; zero fields mean the defaults.
	Retention store.Retention
	// BusyTimeout is how long a statement waits for another process's lock; default 5s.
	BusyTimeout time.Duration
	// Readers caps concurrent read connections; default 4.
	Readers int
	// OutboxMaxAge is the notification outbox's max age (notify.OutboxConfig.MaxAge).
	// Compact deletes deliveries in a final state once they are older than twice it;
	// zero keeps them forever.
	OutboxMaxAge time.Duration
	// Now is the clock used to choose history resolutions and stamp rows; nil means
	// time.Now.
	Now func() time.Time
	// Logger is told when Open tightens the mode of an existing file, or cannot;
	// nil discards.
	Logger *slog.Logger
}

// DB is an open SQLite store. It is safe for concurrent use: writes go through a single
// connection (SQLite allows one writer), reads through a small pool that WAL lets run
// beside the writer.
type DB struct {
	path   string
	write  *sql.DB
	read   *sql.DB
	keep   store.Retention
	now    func() time.Time
	closed sync.Once

	outboxMaxAge time.Duration

	inserts [len(insertSizes)]*sql.Stmt // INSERTs of insertSizes[i] results, prepared on the writer

	mu      sync.Mutex
	targets map[string]int64 // target name → id, only ids committed
}

var _ store.Backend = (*DB)(nil)

// Open opens (creating if needed) the database and brings its schema up to date. It
// fails with a *store.SchemaTooNewError when the file was written by a newer
// portpatrol.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	keep := cfg.Retention.WithDefaults()
	if err := keep.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path == "" {
		dir, err := store.DefaultDataDir()
		if err != nil {
			return nil, err
		}
		cfg.Path = filepath.Join(dir, FileName)
	}
	if strings.ContainsAny(cfg.Path, "?#") {
		return nil, fmt.Errorf("sqlite: path %q: '?' and '#' are not allowed", cfg.Path)
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.Readers <= 0 {
		cfg.Readers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: data directory: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := privateFiles(cfg.Path, cfg.Logger); err != nil {
		return nil, err
	}
	// auto_vacuum must come before the first table exists, so it is first; on an
	// existing file it changes nothing.
	pragmas := fmt.Sprintf("_pragma=auto_vacuum(INCREMENTAL)&_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)", cfg.BusyTimeout.Milliseconds())
	write, err := sql.Open("sqlite", "file:"+cfg.Path+"?"+pragmas+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	write.SetMaxOpenConns(1)
	write.SetConnMaxIdleTime(0)
	read, err := sql.Open("sqlite", "file:"+cfg.Path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	read.SetMaxOpenConns(cfg.Readers)
	read.SetMaxIdleConns(cfg.Readers)
	db := &DB{path: cfg.Path, write: write, read: read, keep: keep, now: cfg.Now,
		outboxMaxAge: cfg.OutboxMaxAge, targets: make(map[string]int64)}
	if err := db.write.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", cfg.Path, err)
	}
	if err := migrate(ctx, db.write, cfg.Now()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", cfg.Path, err)
	}
	for i, n := range insertSizes {
		if db.inserts[i], err = db.write.PrepareContext(ctx, insertSQL(n)); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite %s: prepare: %w", cfg.Path, err)
		}
	}
	return db, nil
}

// privateFiles makes the database file and its -wal, -shm and -journal companions
// readable by their owner only: they hold token hashes, incident history and the
// notification outbox. A missing database file is created 0600 whatever the umask,
// and SQLite gives the files it creates beside it the database file's mode. An
// existing file with group or other permissions loses them, with a warning; one that
// cannot be changed (another user's) is only warned about.
func privateFiles(path string, logger *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
		mode := fi.Mode().Perm()
		if mode&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, mode&^0o077); err != nil {
			logger.Warn("the database file is readable by other users and its mode cannot be changed; chmod 600 it",
				"file", p, "mode", fmt.Sprintf("%#o", mode), "err", err)
			continue
		}
		logger.Warn("tightened the mode of a database file readable by other users", "file", p,
			"from", fmt.Sprintf("%#o", mode), "to", fmt.Sprintf("%#o", mode&^0o077))
	}
	return nil
}

// Path returns the database file.
func (db *DB) Path() string { return db.path }

// Close closes the database. The WAL is checkpointed into the main file by SQLite when
// the last connection closes.
func (db *DB) Close() error {
	var err error
	db.closed.Do(func() {
		for _, st := range db.inserts {
			if st != nil {
				st.Close()
			}
		}
		err = errors.Join(db.read.Close(), db.write.Close())
	})
	return err
}

// SchemaVersion returns the version of the database schema.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := db.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return v, nil
}

// targetID returns the id of a target name, inserting it within tx when new. New ids
// are returned in added and only cached once tx commits.
func (db *DB) targetID(ctx context.Context, tx *sql.Tx, name string, added map[string]int64) (int64, error) {
	db.mu.Lock()
	id, ok := db.targets[name]
	db.mu.Unlock()
	if ok {
		return id, nil
	}
	if id, ok := added[name]; ok {
		return id, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO targets (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return 0, fmt.Errorf("target %s: %w", name, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT id FROM targets WHERE name = ?`, name).Scan(&id); err != nil {
		return 0, fmt.Errorf("target %s: %w", name, err)
	}
	added[name] = id
	return id, nil
}

// lookupTarget returns the id of a target name, or ok=false when it has no history.
func (db *DB) lookupTarget(ctx context.Context, name string) (id int64, ok bool, err error) {
	db.mu.Lock()
	id, ok = db.targets[name]
	db.mu.Unlock()
	if ok {
		return id, true, nil
	}
	err = db.read.QueryRowContext(ctx, `SELECT id FROM targets WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("target %s: %w", name, err)
	}
	db.mu.Lock()
	db.targets[name] = id
	db.mu.Unlock()
	return id, true, nil
}

// queryAll runs query on q and reads every row with scan.
func queryAll[T any](ctx context.Context, q *sql.DB, scan func(sqlstore.Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return sqlstore.Collect(rows, scan)
}
