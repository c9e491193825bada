package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// CreateToken stores t; its ID and Hash must be unique (store.ErrExists).
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	args, err := sqlstore.TokenArgs(&t)
	if err != nil {
		return err
	}
	if _, err := db.write.ExecContext(ctx, `INSERT INTO tokens (`+sqlstore.TokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, args...); err != nil {
		if isUniqueViolation(err) {
			return fmt.Errorf("sqlite: create token %s: id or secret: %w", t.ID, store.ErrExists)
		}
		return fmt.Errorf("sqlite: create token %s: %w", t.ID, err)
	}
	return nil
}

// isUniqueViolation reports whether err is SQLite refusing a row whose primary key or
// unique column is already taken. A TEXT primary key reports the PRIMARYKEY code, a
// UNIQUE column the UNIQUE one.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// LookupToken returns the token with this hash: store.ErrNotFound when unknown, the
// token and store.ErrRevoked when revoked.
func (db *DB) LookupToken(ctx context.Context, hash store.TokenHash) (store.Token, error) {
	t, err := sqlstore.ScanToken(db.read.QueryRowContext(ctx, `SELECT `+sqlstore.TokenColumns+` FROM tokens WHERE hash = ?`, hash[:]))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, fmt.Errorf("sqlite: token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("sqlite: token: %w", err)
	}
	if t.Revoked() {
		return t, fmt.Errorf("sqlite: token %s: %w", t.ID, store.ErrRevoked)
	}
	return t, nil
}

// TouchToken records that token id was used at the given time; an earlier time than
// the one recorded is ignored.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := db.write.ExecContext(ctx, `UPDATE tokens SET last_used_ns = ? WHERE id = ? AND last_used_ns < ?`,
		at.UnixNano(), id, at.UnixNano()); err != nil {
		return fmt.Errorf("sqlite: touch token %s: %w", id, err)
	}
	return nil
}

// ListTokens returns every token, revoked ones included, oldest first.
func (db *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	out, err := queryAll(ctx, db.read, sqlstore.ScanToken, `SELECT `+sqlstore.TokenColumns+` FROM tokens ORDER BY created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken marks token id revoked at the given time, keeping an earlier
// revocation, or returns store.ErrNotFound.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, `UPDATE tokens SET revoked_ns = CASE WHEN revoked_ns = 0 THEN ? ELSE revoked_ns END
		WHERE id = ?`, at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("sqlite: revoke token %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: revoke token %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: revoke token %s: %w", id, store.ErrNotFound)
	}
	return nil
}
