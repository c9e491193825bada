package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/postgres"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/store"
)

// Store is everything the daemon keeps: history, states, tokens, learned sets,
// incidents, silences and the outbox. Both *sqlite.DB and *postgres.DB provide it.
type Store interface {
	store.Backend
	alert.Store
	notify.Store
}

var (
	_ Store = (*sqlite.DB)(nil)
	_ Store = (*postgres.DB)(nil)
)

// OpenStore opens the storage cfg names: a postgres:// DSN, a SQLite file, or by
// default portpatrol.db in dataDir (store.DefaultDataDir when empty). It returns a
// description for logs that never includes a password. The caller closes the Store.
// A SQLite file is kept readable by its owner only (see sqlite.Open); a data
// directory it creates is 0700.
func OpenStore(ctx context.Context, cfg *config.Config, dataDir string) (Store, string, error) {
	return openStore(ctx, cfg, dataDir, nil)
}

// openStore is OpenStore, warning logger (nil discards) of files and a data directory
// that other users can read.
func openStore(ctx context.Context, cfg *config.Config, dataDir string, logger *slog.Logger) (Store, string, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ret := store.Retention{Raw: cfg.Retention.Raw, Minute: cfg.Retention.Minute, Hour: cfg.Retention.Hour}
	s := cfg.Storage
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		db, err := postgres.Open(ctx, postgres.Config{DSN: s, Retention: ret, OutboxMaxAge: outboxMaxAge(cfg)})
		if err != nil {
			return nil, "", fmt.Errorf("open storage %s: %w", redactDSN(s), err)
		}
		return db, redactDSN(s), nil
	}
	path := s
	if path == "" {
		dir := dataDir
		if dir == "" {
			var err error
			if dir, err = store.DefaultDataDir(); err != nil {
				return nil, "", fmt.Errorf("data directory: %w (set --data-dir)", err)
			}
		}
		path = filepath.Join(dir, "portpatrol.db")
	} else if !filepath.IsAbs(path) && cfg.File != "" {
		path = filepath.Join(filepath.Dir(cfg.File), path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("data directory: %w (set --data-dir)", err)
	}
	if s == "" {
		// A data directory someone else made may be shared on purpose (--data-dir
		// /srv, a Kubernetes emptyDir); its mode is theirs to change, and the files
		// in it are private anyway, so it is only mentioned.
		if fi, err := os.Stat(filepath.Dir(path)); err == nil && fi.Mode().Perm()&0o077 != 0 {
			logger.Info("the data directory is open to other users (the database files in it are not); chmod 700 it to hide them entirely",
				"dir", filepath.Dir(path), "mode", fmt.Sprintf("%#o", fi.Mode().Perm()))
		}
	}
	db, err := sqlite.Open(ctx, sqlite.Config{Path: path, Retention: ret, OutboxMaxAge: outboxMaxAge(cfg),
		Logger: logger.With("component", "sqlite")})
	if err != nil {
		return nil, "", fmt.Errorf("open storage %s: %w", path, err)
	}
	return db, "sqlite:" + path, nil
}

// redactDSN drops the password from a DSN for logs and errors.
func redactDSN(dsn string) string {
	at := strings.LastIndex(dsn, "@")
	scheme := strings.Index(dsn, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return dsn
	}
	userinfo := dsn[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return dsn[:scheme+3] + user + ":***" + dsn[at:]
	}
	return dsn
}

// outboxMaxAge is the notify outbox's max age, so compaction may prune deliveries
// finished twice that long ago.
func outboxMaxAge(cfg *config.Config) time.Duration {
	if cfg.Notify.Outbox.MaxAge > 0 {
		return cfg.Notify.Outbox.MaxAge
	}
	return notify.DefaultMaxAge
}
