package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var migrations = []sqlstore.Migration{
	{Version: 1, Name: "results, rollups, states, tokens, learned sets", SQL: `
CREATE TABLE targets (
	id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE
);
CREATE TABLE results (
	target_id   bigint NOT NULL REFERENCES targets(id),
	start_ns    bigint NOT NULL, -- Unix ns
	duration_ns bigint NOT NULL,
	class       text NOT NULL,
	up          boolean NOT NULL,
	error       text,
	remote_addr text,
	extra       jsonb -- phases, tls, http, capacity, details
);
CREATE INDEX results_target_start ON results (target_id, start_ns);
CREATE INDEX results_start ON results (start_ns);
CREATE TABLE rollup_minute (
	target_id bigint NOT NULL REFERENCES targets(id),
	bucket    bigint NOT NULL, -- Unix ns of the minute
	count     bigint NOT NULL,
	failures  bigint NOT NULL,
	ok_sum_ns bigint NOT NULL,
	min_ns    bigint NOT NULL,
	max_ns    bigint NOT NULL,
	p95_ns    bigint NOT NULL,
	PRIMARY KEY (target_id, bucket)
);
CREATE INDEX rollup_minute_bucket ON rollup_minute (bucket);
CREATE TABLE rollup_hour (
	target_id bigint NOT NULL REFERENCES targets(id),
	bucket    bigint NOT NULL,
	count     bigint NOT NULL,
	failures  bigint NOT NULL,
	ok_sum_ns bigint NOT NULL,
	min_ns    bigint NOT NULL,
	max_ns    bigint NOT NULL,
	p95_ns    bigint NOT NULL, -- highest minute p95
	PRIMARY KEY (target_id, bucket)
);
CREATE INDEX rollup_hour_bucket ON rollup_hour (bucket);
CREATE TABLE rollup_progress (
	kind     text PRIMARY KEY, -- 'minute' or 'hour'
	until_ns bigint NOT NULL   -- everything before is rolled up
);
CREATE TABLE states (
	target           text PRIMARY KEY,
	status           text NOT NULL CHECK (status IN ('unknown', 'up', 'down')),
	flapping         boolean NOT NULL,
	since_ns         bigint NOT NULL,
	last_ns          bigint NOT NULL,
	last_class       text NOT NULL,
	last_duration_ns bigint NOT NULL,
	last_error       text NOT NULL,
	labels           text NOT NULL, -- JSON object
	updated_ns       bigint NOT NULL
);
CREATE TABLE tokens (
	id           text PRIMARY KEY,
	name         text NOT NULL,
	hash         bytea NOT NULL UNIQUE, -- SHA-256 of the secret
	role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
	created_ns   bigint NOT NULL,
	created_by   text NOT NULL,
	last_used_ns bigint NOT NULL DEFAULT 0,
	revoked_ns   bigint NOT NULL DEFAULT 0
);
CREATE TABLE learned (
	namespace  text NOT NULL,
	key        text NOT NULL,
	value      json NOT NULL, -- json, not jsonb: values come back byte for byte
	updated_ns bigint NOT NULL,
	PRIMARY KEY (namespace, key)
);
`},
	{Version: 2, Name: "alerts, silences, notification outbox", SQL: `
CREATE TABLE alerts (
	id         text PRIMARY KEY,
	record     json NOT NULL, -- json, not jsonb: jsonb refuses \u0000, which probe errors may hold
	updated_ns bigint NOT NULL
);
CREATE TABLE silences (
	id         text PRIMARY KEY,
	silence    json NOT NULL,
	updated_ns bigint NOT NULL
);
CREATE TABLE outbox (
	seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	receiver     text NOT NULL,
	key          text NOT NULL,
	notification json NOT NULL,
	provider     text NOT NULL,
	enqueued_ns  bigint NOT NULL,
	state        text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed', 'expired')),
	attempts     integer NOT NULL,
	next_ns      bigint NOT NULL,
	last_ns      bigint NOT NULL,
	last_error   bytea NOT NULL, -- bytes: a provider's reply may hold NUL or invalid UTF-8
	done_ns      bigint NOT NULL,
	UNIQUE (receiver, key)
);
CREATE INDEX outbox_pending ON outbox (receiver, seq) WHERE state = 'pending';
CREATE INDEX outbox_receiver ON outbox (receiver, seq);
CREATE INDEX outbox_done ON outbox (done_ns) WHERE state <> 'pending';
`},
	{Version: 3, Name: "status page notes", SQL: `
CREATE TABLE status_notes (
	id         text PRIMARY KEY,
	service    text NOT NULL, -- '' for the page as a whole
	state      text NOT NULL,
	text       text NOT NULL,
	author     text NOT NULL,
	created_ns bigint NOT NULL
);
CREATE INDEX status_notes_created ON status_notes (created_ns);
`},
	{Version: 4, Name: "anomaly detector states", SQL: `
CREATE TABLE anomaly_states (
	key     text PRIMARY KEY, -- "<signal> <target>"
	state   bytea NOT NULL,   -- anomaly.Detector.MarshalBinary
	last_ns bigint NOT NULL   -- the series' latest point
);
`},
	{Version: 5, Name: "audit chain", SQL: `
CREATE TABLE audit_chain (
	seq     bigint PRIMARY KEY, -- 1, 2, 3…: one writer wins each number
	time_ns bigint NOT NULL,    -- Unix ns, UTC
	record  text NOT NULL,      -- canonical JSON of auditlog.Record, byte for byte
	prev    text NOT NULL,      -- hash of entry seq-1, '' for the first
	hash    text NOT NULL       -- hex SHA-256 over seq, time_ns, record, prev
);
`},
	{Version: 6, Name: "bans", SQL: `
CREATE TABLE bans (
	addr       text PRIMARY KEY,
	record     json NOT NULL,   -- JSON of store.Ban
	end_ns     bigint NOT NULL, -- when it expired or was lifted
	updated_ns bigint NOT NULL
);
CREATE INDEX bans_end ON bans (end_ns);
`},
}

// KnownSchema is the newest schema version this binary knows.
var KnownSchema = migrations[len(migrations)-1].Version

// lockKey names portpatrol's advisory locks; they are per schema, so that instances
// using different schemas of one database do not wait for each other.
const lockKey = `hashtextextended(current_schema() || '.portpatrol', 0)`

// migrate applies the pending migrations in one transaction under an advisory lock,
// so instances starting together migrate once. It refuses a database newer than this
// binary.
func migrate(ctx context.Context, pool *pgxpool.Pool, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+lockKey+`)`); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_ns bigint NOT NULL)`); err != nil {
			return fmt.Errorf("migrate: create schema_version: %w", err)
		}
		var have int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
		return sqlstore.Migrate(have, migrations, func(m sqlstore.Migration) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (version, name, applied_ns) VALUES ($1, $2, $3)`,
				m.Version, m.Name, now.UnixNano())
			return err
		})
	})
}
