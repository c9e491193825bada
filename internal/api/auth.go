package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Role is what a token may do. Roles are ordered: each can do what the ones below it
// can.
type Role string

// The roles, from least to most powerful.
const (
	RoleViewer   Role = "viewer"   // read everything but tokens
	RoleOperator Role = "operator" // and ack, resolve, silence
	RoleAdmin    Role = "admin"    // and manage tokens
)

// rank orders the roles; an unknown role ranks below viewer.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() > 0 }

// Allows reports whether a token of role r may do what needs role need.
func (r Role) Allows(need Role) bool { return r.rank() >= need.rank() && r.Valid() }

// Identity is who made a request: the holder of a token, or the anonymous loopback
// reader. Name is what writes are recorded under.
type Identity struct {
	// TokenID is the token's public ID; empty for anonymous.
	TokenID string `json:"token_id,omitempty"`
	Name    string `json:"name"`
	Role    Role   `json:"role"`
}

// anonymous is the identity of an unauthenticated loopback reader.
var anonymous = Identity{Name: "anonymous", Role: RoleViewer}

// HashToken returns the hash a token secret is looked up by.
func HashToken(secret string) TokenHash { return sha256.Sum256([]byte(secret)) }

// StaticToken is a token given in configuration rather than stored.
type StaticToken struct {
	ID     string
	Name   string
	Role   Role
	Secret string
}

// StaticTokens authenticates against a fixed list of tokens, comparing hashes in
// constant time against every entry so that timing tells nothing about which entry is
// close. It is safe for concurrent use as long as the slice is not modified.
type StaticTokens []StaticToken

var _ Tokens = StaticTokens(nil)

// LookupToken implements Tokens.
func (s StaticTokens) LookupToken(_ context.Context, hash TokenHash) (Identity, error) {
	found := -1
	for i, t := range s {
		h := HashToken(t.Secret)
		if subtle.ConstantTimeCompare(h[:], hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Identity{}, ErrNotFound
	}
	t := s[found]
	return Identity{TokenID: t.ID, Name: t.Name, Role: t.Role}, nil
}

// authError is an authentication or authorisation failure.
type authError struct {
	status int
	msg    string
	need   Role
	have   Role
}

func (e *authError) Error() string { return e.msg }

// authenticate works out who sent r: root or the daemon's own user on the local socket
// (admin), a bearer token, or anonymous on loopback when the configuration and
// allowAnonymous allow it. It returns an *authError when the
// request cannot go on.
func (s *Server) authenticate(r *http.Request, need Role, allowAnonymous bool) (Identity, error) {
	if p, ok := socketPeer(r); ok {
		// The local socket: the kernel vouches for the peer's uid.
		if id, ok, err := socketIdentity(r, p, need); ok {
			return id, err
		}
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		if allowAnonymous && s.cfg.AnonymousRead && need == RoleViewer && (r.Method == http.MethodGet || r.Method == http.MethodHead) && loopbackPeer(r) {
			return anonymous, nil
		}
		return Identity{}, &authError{status: http.StatusUnauthorized, need: need,
			msg: fmt.Sprintf("missing bearer token: this needs the %s role (send Authorization: Bearer <token>)", need)}
	}
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return Identity{}, &authError{status: http.StatusUnauthorized, need: need,
			msg: "malformed Authorization header: want \"Bearer <token>\""}
	}
	if s.cfg.Tokens == nil {
		return Identity{}, &authError{status: http.StatusUnauthorized, need: need, msg: "no tokens are configured on this server"}
	}
	id, err := s.cfg.Tokens.LookupToken(r.Context(), HashToken(strings.TrimSpace(secret)))
	switch {
	case errors.Is(err, ErrNotFound):
		msg := "unknown token"
		if s.cfg.TokenStore != "" {
			// A token made with `portpatrol token create` against another data
			// directory or database is the usual cause.
			msg += " (this server reads tokens from " + s.cfg.TokenStore + "; create one there with portpatrol token create and the same --data-dir or -c)"
		}
		return Identity{}, &authError{status: http.StatusUnauthorized, need: need, msg: msg}
	case errors.Is(err, ErrRevoked):
		return Identity{}, &authError{status: http.StatusUnauthorized, need: need, msg: "token revoked"}
	case err != nil:
		return Identity{}, fmt.Errorf("look up token: %w", err)
	}
	if !id.Role.Allows(need) {
		return id, &authError{status: http.StatusForbidden, need: need, have: id.Role,
			msg: fmt.Sprintf("%s role required; token %q has the %s role", need, id.Name, id.Role)}
	}
	return id, nil
}

// loopbackPeer reports whether the TCP peer is on a loopback address. Behind a reverse
// proxy on the same host every peer is, which is why anonymous reads are off by default.
func loopbackPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
