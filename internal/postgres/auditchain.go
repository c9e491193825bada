package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.AuditChainStore = (*DB)(nil)

// AppendAuditEntry stores r as the entry after the head, or returns store.ErrExists
// when another writer took its place first. Instances sharing the database race on
// the seq primary key: the loser's insert waits for the winner's and then fails, so
// the chain never forks.
func (db *DB) AppendAuditEntry(ctx context.Context, r store.AuditRow) error {
	tag, err := db.pool.Exec(ctx, `INSERT INTO audit_chain (seq, time_ns, record, prev, hash)
		SELECT $1::bigint, $2::bigint, $3::text, $4::text, $5::text
		WHERE ($1::bigint = 1 AND $4::text = '')
		   OR EXISTS (SELECT 1 FROM audit_chain WHERE seq = $1::bigint - 1 AND hash = $4::text)`,
		r.Seq, r.TimeNs, r.Record, r.Prev, r.Hash)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation {
			return fmt.Errorf("postgres: append audit entry %d: %w", r.Seq, store.ErrExists)
		}
		return fmt.Errorf("postgres: append audit entry %d: %w", r.Seq, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: append audit entry %d: it does not follow the head: %w", r.Seq, store.ErrExists)
	}
	return nil
}

// AuditEntries returns at most limit entries after afterSeq, in seq order.
func (db *DB) AuditEntries(ctx context.Context, afterSeq int64, limit int) ([]store.AuditRow, error) {
	if err := store.CheckAuditPage(afterSeq, limit); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	out, err := queryAll(ctx, db.pool, scanAuditRow,
		`SELECT seq, time_ns, record, prev, hash FROM audit_chain WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: audit entries after %d: %w", afterSeq, err)
	}
	return out, nil
}

// AuditHead returns the last entry, or store.ErrNotFound when the chain is empty.
func (db *DB) AuditHead(ctx context.Context) (store.AuditRow, error) {
	r, err := scanAuditRow(db.pool.QueryRow(ctx,
		`SELECT seq, time_ns, record, prev, hash FROM audit_chain ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AuditRow{}, fmt.Errorf("postgres: audit chain head: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.AuditRow{}, fmt.Errorf("postgres: audit chain head: %w", err)
	}
	return r, nil
}

func scanAuditRow(sc sqlstore.Scanner) (store.AuditRow, error) {
	var r store.AuditRow
	err := sc.Scan(&r.Seq, &r.TimeNs, &r.Record, &r.Prev, &r.Hash)
	return r, err
}
