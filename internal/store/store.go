// Package store declares what portpatrol keeps across restarts — probe history and its
// rollups, the latest state of every target, API tokens and learned sets — as small
// interfaces that the engines use, plus the backend-agnostic parts: the batch writer,
// history bucketing and token hashing. internal/sqlite and internal/postgres implement
// the interfaces; storetest is the suite both must pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// ResultWriter stores probe results. One call is one transaction: either every result
// is stored or none is. Implementations must not keep the slice after returning (the
// BatchWriter reuses it). Feed it through a BatchWriter rather than one result at a time.
type ResultWriter interface {
	WriteResults(ctx context.Context, results []patrol.Result) error
}

// HistoryReader reads the stored history of a target.
type HistoryReader interface {
	// History returns the series of q.Target between q.From and q.To.
	History(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error)
	// RecentResults returns the latest n results of target, newest first.
	RecentResults(ctx context.Context, target string, n int) ([]patrol.Result, error)
}

// StateReader reads the latest state of targets.
type StateReader interface {
	// States returns the latest state of every target, ordered by target.
	States(ctx context.Context) ([]patrol.TargetState, error)
	// State returns the latest state of one target, or ErrNotFound.
	State(ctx context.Context, target string) (patrol.TargetState, error)
}

// StateWriter records the latest state of targets.
type StateWriter interface {
	// PutStates inserts or replaces the states, in one transaction.
	PutStates(ctx context.Context, states []patrol.TargetState) error
	// DeleteStates forgets the states of targets no longer watched.
	DeleteStates(ctx context.Context, targets []string) error
}

// TokenAuthenticator checks API tokens.
type TokenAuthenticator interface {
	// LookupToken returns the token with this hash. It returns ErrNotFound for an
	// unknown hash, and the token together with ErrRevoked for a revoked one.
	LookupToken(ctx context.Context, hash TokenHash) (Token, error)
	// TouchToken records that token id was used at the given time.
	TouchToken(ctx context.Context, id string, at time.Time) error
}

// TokenAdmin manages API tokens.
type TokenAdmin interface {
	// CreateToken stores t; its ID and Hash must be unique: a token that repeats
	// either returns ErrExists.
	CreateToken(ctx context.Context, t Token) error
	// ListTokens returns every token, revoked ones included, oldest first.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken marks token id revoked at the given time, or returns ErrNotFound.
	// Revoking a revoked token keeps its first revocation time.
	RevokeToken(ctx context.Context, id string, at time.Time) error
}

// LearnedStore keeps small learned sets, such as the expected listeners of the host
// watch, as JSON values under a namespace and key.
type LearnedStore interface {
	// PutLearned inserts or replaces l.Value under l.Namespace and l.Key.
	PutLearned(ctx context.Context, l Learned) error
	// GetLearned returns one value, or ErrNotFound.
	GetLearned(ctx context.Context, namespace, key string) (Learned, error)
	// ListLearned returns every value of a namespace, ordered by key.
	ListLearned(ctx context.Context, namespace string) ([]Learned, error)
}

// Compactor rolls raw history up into per-minute and per-hour rollups and deletes
// what is older than the retention allows. Call it about once a minute.
type Compactor interface {
	Compact(ctx context.Context, now time.Time) (CompactStats, error)
}

// Backend is a complete storage engine: what cmd/portpatrol opens and hands, through
// the small interfaces above, to the engines. Implementations are safe for concurrent
// use.
type Backend interface {
	ResultWriter
	HistoryReader
	StateReader
	StateWriter
	TokenAuthenticator
	TokenAdmin
	LearnedStore
	StatusNoteStore
	AnomalyStateStore
	Compactor
	// SchemaVersion returns the version of the database schema.
	SchemaVersion(ctx context.Context) (int, error)
	// Close releases the database. It does not flush BatchWriters: close them first.
	Close() error
}

// Errors that callers branch on, with errors.Is.
var (
	ErrNotFound   = errors.New("not found")
	ErrRevoked    = errors.New("token revoked")
	ErrClosed     = errors.New("store closed")
	ErrBufferFull = errors.New("result buffer full")
	// ErrExists is a create whose unique key (a token's ID or secret) is already taken.
	ErrExists = errors.New("already exists")
)

// SchemaTooNewError reports a database whose schema was written by a newer portpatrol.
// Running against it could corrupt data the newer binary relies on, so opening fails.
type SchemaTooNewError struct {
	Have  int // the database's version
	Known int // the newest version this binary knows
}

func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema is version %d, this portpatrol knows up to %d: upgrade portpatrol", e.Have, e.Known)
}

// CheckSchema returns a *SchemaTooNewError when have is newer than known.
func CheckSchema(have, known int) error {
	if have > known {
		return &SchemaTooNewError{Have: have, Known: known}
	}
	return nil
}
