package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/store/sqlstore"
)

// CreateToken stores t; its ID and Hash must be unique (store.ErrExists).
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	args, err := sqlstore.TokenArgs(&t)
	if err != nil {
		return err
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO tokens (`+sqlstore.TokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, args...); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == uniqueViolation {
			return fmt.Errorf("postgres: create token %s: id or secret: %w", t.ID, store.ErrExists)
		}
		return fmt.Errorf("postgres: create token %s: %w", t.ID, err)
	}
	return nil
}

// uniqueViolation is the SQLSTATE of an insert whose unique key is already taken.
const uniqueViolation = "23505"

// LookupToken returns the token with this hash: store.ErrNotFound when unknown, the
// token and store.ErrRevoked when revoked.
func (db *DB) LookupToken(ctx context.Context, hash store.TokenHash) (store.Token, error) {
	t, err := sqlstore.ScanToken(db.pool.QueryRow(ctx, `SELECT `+sqlstore.TokenColumns+` FROM tokens WHERE hash = $1`, hash[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Token{}, fmt.Errorf("postgres: token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("postgres: token: %w", err)
	}
	if t.Revoked() {
		return t, fmt.Errorf("postgres: token %s: %w", t.ID, store.ErrRevoked)
	}
	return t, nil
}

// TouchToken records that token id was used at the given time; an earlier time than
// the one recorded is ignored.
func (db *DB) TouchToken(ctx context.Context, id string, at time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE tokens SET last_used_ns = $1 WHERE id = $2 AND last_used_ns < $1`,
		at.UnixNano(), id); err != nil {
		return fmt.Errorf("postgres: touch token %s: %w", id, err)
	}
	return nil
}

// ListTokens returns every token, revoked ones included, oldest first.
func (db *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	out, err := queryAll(ctx, db.pool, sqlstore.ScanToken, `SELECT `+sqlstore.TokenColumns+` FROM tokens ORDER BY created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken marks token id revoked at the given time, keeping an earlier
// revocation, or returns store.ErrNotFound.
func (db *DB) RevokeToken(ctx context.Context, id string, at time.Time) error {
	tag, err := db.pool.Exec(ctx, `UPDATE tokens SET revoked_ns = CASE WHEN revoked_ns = 0 THEN $1 ELSE revoked_ns END
		WHERE id = $2`, at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("postgres: revoke token %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: revoke token %s: %w", id, store.ErrNotFound)
	}
	return nil
}
