package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

const tokenColumns = `id, name, hash, role, created_ns, created_by, last_used_ns, revoked_ns`

// CreateToken stores t; its ID and Hash must be unique.
func (db *DB) CreateToken(ctx context.Context, t store.Token) error {
	if err := store.ValidateToken(&t); err != nil {
		return err
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Hash[:], string(t.Role), store.TimeNS(t.CreatedAt), t.CreatedBy,
		store.TimeNS(t.LastUsed), store.TimeNS(t.RevokedAt))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("sqlite: create token %s: id or secret already exists: %w", t.ID, err)
		}
		return fmt.Errorf("sqlite: create token %s: %w", t.ID, err)
	}
	return nil
}

// LookupToken returns the token with this hash: store.ErrNotFound when unknown, the
// token and store.ErrRevoked when revoked.
func (db *DB) LookupToken(ctx context.Context, hash store.TokenHash) (store.Token, error) {
	t, err := scanToken(db.read.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE hash = ?`, hash[:]))
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
	rows, err := db.read.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_ns, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
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

func scanToken(sc scanner) (store.Token, error) {
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
