package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"
)

// Role is what a token may do through the API.
type Role string

// The token roles, from least to most powerful.
const (
	RoleViewer   Role = "viewer"   // read
	RoleOperator Role = "operator" // read, ack, silence, approve
	RoleAdmin    Role = "admin"    // everything, including tokens and configuration
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleViewer || r == RoleOperator || r == RoleAdmin }

// TokenHash is the SHA-256 of a token secret. Only the hash is stored: a secret has
// 256 random bits, so a plain hash is enough to make a stolen database useless.
type TokenHash [sha256.Size]byte

// HashToken returns the hash under which the secret is stored.
func HashToken(secret string) TokenHash { return sha256.Sum256([]byte(secret)) }

// String returns the hash in hex.
func (h TokenHash) String() string { return hex.EncodeToString(h[:]) }

// tokenPrefix marks portpatrol secrets, so secret scanners and people recognise them.
const tokenPrefix = "ppt_"

// Token is an API token as stored: never the secret, only its hash. The zero value is
// not a valid token; make one with NewToken.
type Token struct {
	ID        string // public identifier, safe to log
	Name      string
	Hash      TokenHash
	Role      Role
	CreatedAt time.Time
	CreatedBy string
	LastUsed  time.Time // zero when never used
	RevokedAt time.Time // zero while the token is valid
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

// NewToken makes a token with a fresh random ID and secret. It returns the token to
// store and the secret to show once to its owner.
func NewToken(name string, role Role, createdBy string, now time.Time) (Token, string, error) {
	if !role.Valid() {
		return Token{}, "", fmt.Errorf("invalid role %q: want viewer, operator or admin", role)
	}
	var id [8]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, "", fmt.Errorf("token id: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return Token{}, "", fmt.Errorf("token secret: %w", err)
	}
	s := tokenPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	return Token{
		ID:        hex.EncodeToString(id[:]),
		Name:      name,
		Hash:      HashToken(s),
		Role:      role,
		CreatedAt: now,
		CreatedBy: createdBy,
	}, s, nil
}
