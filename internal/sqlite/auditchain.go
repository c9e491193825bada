package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

var _ store.AuditChainStore = (*DB)(nil)

// AppendAuditEntry stores r as the entry after the head, or returns store.ErrExists
// when another writer took its place first. The seq primary key and the condition on
// the previous entry's hash are checked by SQLite in the one statement, so two
// processes writing the same file cannot fork the chain.
func (db *DB) AppendAuditEntry(ctx context.Context, r store.AuditRow) error {
	res, err := db.write.ExecContext(ctx, `INSERT INTO audit_chain (seq, time_ns, record, prev, hash)
		SELECT ?1, ?2, ?3, ?4, ?5
		WHERE (?1 = 1 AND ?4 = '') OR EXISTS (SELECT 1 FROM audit_chain WHERE seq = ?1 - 1 AND hash = ?4)`,
		r.Seq, r.TimeNs, r.Record, r.Prev, r.Hash)
	if err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("sqlite: append audit entry %d: %w", r.Seq, store.ErrExists)
		}
		return fmt.Errorf("sqlite: append audit entry %d: %w", r.Seq, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: append audit entry %d: %w", r.Seq, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: append audit entry %d: it does not follow the head: %w", r.Seq, store.ErrExists)
	}
	return nil
}

// AuditEntries returns at most limit entries after afterSeq, in seq order.
func (db *DB) AuditEntries(ctx context.Context, afterSeq int64, limit int) ([]store.AuditRow, error) {
	if err := store.CheckAuditPage(afterSeq, limit); err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	out, err := queryAll(ctx, db.read, scanAuditRow,
		`SELECT seq, time_ns, record, prev, hash FROM audit_chain WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: audit entries after %d: %w", afterSeq, err)
	}
	return out, nil
}

// AuditHead returns the last entry, or store.ErrNotFound when the chain is empty.
func (db *DB) AuditHead(ctx context.Context) (store.AuditRow, error) {
	r, err := scanAuditRow(db.read.QueryRowContext(ctx,
		`SELECT seq, time_ns, record, prev, hash FROM audit_chain ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return store.AuditRow{}, fmt.Errorf("sqlite: audit chain head: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.AuditRow{}, fmt.Errorf("sqlite: audit chain head: %w", err)
	}
	return r, nil
}

func scanAuditRow(sc sqlstore.Scanner) (store.AuditRow, error) {
	var r store.AuditRow
	err := sc.Scan(&r.Seq, &r.TimeNs, &r.Record, &r.Prev, &r.Hash)
	return r, err
}
