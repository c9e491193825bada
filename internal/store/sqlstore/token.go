package sqlstore

import (
	"fmt"

	"github.com/portpatrol/portpatrol/internal/store"
)

// TokenColumns are the columns of the tokens table, in the order of TokenArgs and
// ScanToken.
const TokenColumns = `id, name, hash, role, created_ns, created_by, last_used_ns, revoked_ns`

// TokenArgs validates t and returns the values of its TokenColumns.
func TokenArgs(t *store.Token) ([]any, error) {
	if err := store.ValidateToken(t); err != nil {
		return nil, err
	}
	return []any{t.ID, t.Name, t.Hash[:], string(t.Role), store.TimeNS(t.CreatedAt), t.CreatedBy,
		store.TimeNS(t.LastUsed), store.TimeNS(t.RevokedAt)}, nil
}

// ScanToken reads a row of TokenColumns.
func ScanToken(sc Scanner) (store.Token, error) {
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
