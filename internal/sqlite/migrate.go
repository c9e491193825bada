package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var migrations = []sqlstore.Migration{
	{Version: 1, Name: "results, rollups, states, tokens, learned sets", SQL: `
CREATE TABLE targets (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);
CREATE TABLE results (
	target_id   INTEGER NOT NULL REFERENCES targets(id),
	start       INTEGER NOT NULL, -- Unix ns
	duration_ns INTEGER NOT NULL,
	class       TEXT NOT NULL,
	up          INTEGER NOT NULL, -- 0 or 1, stored in no bytes
	error       TEXT,
	remote_addr TEXT,
	extra       TEXT -- JSON: phases, tls, http, capacity, details
);
CREATE INDEX results_target_start ON results(target_id, start);
CREATE INDEX results_start ON results(start);
CREATE TABLE rollup_minute (
	target_id INTEGER NOT NULL REFERENCES targets(id),
	bucket    INTEGER NOT NULL, -- Unix ns of the minute
	count     INTEGER NOT NULL,
	failures  INTEGER NOT NULL,
	ok_sum_ns INTEGER NOT NULL,
	min_ns    INTEGER NOT NULL,
	max_ns    INTEGER NOT NULL,
	p95_ns    INTEGER NOT NULL,
	PRIMARY KEY (target_id, bucket)
) WITHOUT ROWID;
CREATE INDEX rollup_minute_bucket ON rollup_minute(bucket);
CREATE TABLE rollup_hour (
	target_id INTEGER NOT NULL REFERENCES targets(id),
	bucket    INTEGER NOT NULL,
	count     INTEGER NOT NULL,
	failures  INTEGER NOT NULL,
	ok_sum_ns INTEGER NOT NULL,
	min_ns    INTEGER NOT NULL,
	max_ns    INTEGER NOT NULL,
	p95_ns    INTEGER NOT NULL, -- highest minute p95
	PRIMARY KEY (target_id, bucket)
) WITHOUT ROWID;
CREATE INDEX rollup_hour_bucket ON rollup_hour(bucket);
CREATE TABLE rollup_progress (
	kind     TEXT PRIMARY KEY, -- 'minute' or 'hour'
	until_ns INTEGER NOT NULL  -- everything before is rolled up
);
CREATE TABLE states (
	target           TEXT PRIMARY KEY,
	status           TEXT NOT NULL CHECK (status IN ('unknown', 'up', 'down')),
	flapping         INTEGER NOT NULL,
	since_ns         INTEGER NOT NULL,
	last_ns          INTEGER NOT NULL,
	last_class       TEXT NOT NULL,
	last_duration_ns INTEGER NOT NULL,
	last_error       TEXT NOT NULL,
	labels           TEXT NOT NULL, -- JSON object
	updated_ns       INTEGER NOT NULL
);
CREATE TABLE tokens (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	hash         BLOB NOT NULL UNIQUE, -- SHA-256 of the secret
	role         TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
	created_ns   INTEGER NOT NULL,
	created_by   TEXT NOT NULL,
	last_used_ns INTEGER NOT NULL DEFAULT 0,
	revoked_ns   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE learned (
	namespace  TEXT NOT NULL,
	key        TEXT NOT NULL,
	value      TEXT NOT NULL, -- JSON
	updated_ns INTEGER NOT NULL,
	PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
`},
	{Version: 2, Name: "alerts, silences, notification outbox", SQL: `
CREATE TABLE alerts (
	id         TEXT PRIMARY KEY,
	record     TEXT NOT NULL, -- JSON of alert.Record
	updated_ns INTEGER NOT NULL
);
CREATE TABLE silences (
	id         TEXT PRIMARY KEY,
	silence    TEXT NOT NULL, -- JSON of alert.Silence
	updated_ns INTEGER NOT NULL
);
CREATE TABLE outbox (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after pruning
	receiver     TEXT NOT NULL,
	key          TEXT NOT NULL,
	notification TEXT NOT NULL, -- JSON of patrol.Notification
	provider     TEXT NOT NULL,
	enqueued_ns  INTEGER NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'expired')),
	attempts     INTEGER NOT NULL,
	next_ns      INTEGER NOT NULL,
	last_ns      INTEGER NOT NULL,
	last_error   TEXT NOT NULL,
	done_ns      INTEGER NOT NULL,
	UNIQUE (receiver, key)
);
CREATE INDEX outbox_pending ON outbox (receiver, seq) WHERE state = 'pending';
CREATE INDEX outbox_receiver ON outbox (receiver, seq);
CREATE INDEX outbox_done ON outbox (done_ns) WHERE state <> 'pending';
`},
	{Version: 3, Name: "status page notes", SQL: `
CREATE TABLE status_notes (
	id         TEXT PRIMARY KEY,
	service    TEXT NOT NULL, -- '' for the page as a whole
	state      TEXT NOT NULL,
	text       TEXT NOT NULL,
	author     TEXT NOT NULL,
	created_ns INTEGER NOT NULL
);
CREATE INDEX status_notes_created ON status_notes (created_ns);
`},
	{Version: 4, Name: "anomaly detector states", SQL: `
CREATE TABLE anomaly_states (
	key     TEXT PRIMARY KEY, -- "<signal> <target>"
	state   BLOB NOT NULL,    -- anomaly.Detector.MarshalBinary
	last_ns INTEGER NOT NULL     -- the series' latest point
);
`},
	{Version: 5, Name: "audit chain", SQL: `
CREATE TABLE audit_chain (
	seq     INTEGER PRIMARY KEY, -- 1, 2, 3…: one writer wins each number
	time_ns INTEGER NOT NULL,    -- Unix ns, UTC
	record  TEXT NOT NULL,       -- canonical JSON of auditlog.Record, byte for byte
	prev    TEXT NOT NULL,       -- hash of entry seq-1, '' for the first
	hash    TEXT NOT NULL        -- hex SHA-256 over seq, time_ns, record, prev
);
`},
	{Version: 6, Name: "bans", SQL: `
CREATE TABLE bans (
	addr       TEXT PRIMARY KEY,
	record     TEXT NOT NULL,    -- JSON of store.Ban
	end_ns     INTEGER NOT NULL, -- when it expired or was lifted
	updated_ns INTEGER NOT NULL
);
CREATE INDEX bans_end ON bans (end_ns);
`},
}

// KnownSchema is the newest schema version this binary knows.
var KnownSchema = migrations[len(migrations)-1].Version

// migrate applies the pending migrations in one transaction, so a crash leaves the
// schema as it was. It refuses a database newer than this binary.
func migrate(ctx context.Context, db *sql.DB, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_ns INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_version: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	err = sqlstore.Migrate(have, migrations, func(m sqlstore.Migration) error {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_ns) VALUES (?, ?, ?)`,
			m.Version, m.Name, now.UnixNano())
		return err
	})
	if err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
