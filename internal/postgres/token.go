package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/portpatrol/portpatrol/internal/store"
)

const tokenColumns = `id, name, hash, role, created_ns, created_by, last_used_ns, revoked_ns`

// CreateToken stores t; its ID and Hash must be unique.
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	if err := store.ValidateToken(&t); err != nil {
		return err
	}
	_, err := db.pool.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		t.ID, t.Name, t.Hash[:], string(t.Role), store.TimeNS(t.CreatedAt), t.CreatedBy,
		store.TimeNS(t.LastUsed), store.TimeNS(t.RevokedAt))
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return fmt.Errorf("postgres: create token %s: id or secret already exists: %w", t.ID, err)
		}
		return fmt.Errorf("postgres: create token %s: %w", t.ID, err)
	}
	return nil
}

// LookupToken returns the token with this hash: store.ErrNotFound when unknown, the
// token and store.ErrRevoked when revoked.
func (db *DB) LookupToken(ctx context.Context, hash store.TokenHash) (store.Token, error) {
	t, err := scanToken(db.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = $1`, hash[:]))
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
	rows, err := db.pool.Query(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
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

func scanToken(sc pgx.Row) (store.Token, error) {
	var t store.Token
	var hash []byte
	var role string
	var created, used, revoked int64
	if err := sc.Scan(&t.ID, &t.Name, &hash, &role, &created, &t.CreatedBy, &used, &revoked); err != nil {
		return t, err
	}
	if len(hash) != len(t.Hash) {
		return t, fmt.Errorf("token %s: hash of %d bytes", t.ID, len(hash))
	}
	copy(t.Hash[:], hash)
	t.Role, t.CreatedAt, t.LastUsed, t.RevokedAt = store.Role(role), store.NSTime(created), store.NSTime(used), store.NSTime(revoked)
	return t, nil
}
