package store

import (
	"context"
	"encoding/json"
	"time"
)

// Ban is one address's ban, as the store keeps it: the latest ban of the address,
// active or ended, so that a recurrence finds the one before it and its length.
type Ban struct {
	Addr   string `json:"addr"`   // the address banned, in its canonical form
	Reason string `json:"reason"` // why, in words
	Kind   string `json:"kind"`   // the detector ("fast_scan", "bruteforce"…) or "manual"
	Actor  string `json:"actor"`  // "portpatrol" or the user who banned it
	// Created is when the ban began; Expires when the kernel lifts it.
	Created  time.Time     `json:"created"`
	Expires  time.Time     `json:"expires"`
	Duration time.Duration `json:"duration_ns"`
	// Count is how many bans of this address in a row this is, the first being 1;
	// each doubles the one before, up to a cap.
	Count int `json:"count"`
	// DryRun bans were decided but not enforced.
	DryRun bool `json:"dry_run,omitempty"`
	// Lifted is when the ban ended early by hand or was seen to expire; LiftedBy is
	// who lifted it, or "expired".
	Lifted   time.Time       `json:"lifted,omitzero"`
	LiftedBy string          `json:"lifted_by,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// Active reports whether the ban is enforced at now (dry-run bans never are).
func (b Ban) Active(now time.Time) bool {
	return !b.DryRun && b.Lifted.IsZero() && b.Expires.After(now)
}

// BanStore keeps bans. It is separate from the store's other interfaces: the daemon
// finds it on the store by a type assertion.
type BanStore interface {
	// PutBan inserts or replaces the ban of b.Addr.
	PutBan(ctx context.Context, b Ban) error
	// ListBans returns every ban kept, active or ended, ordered by address.
	ListBans(ctx context.Context) ([]Ban, error)
	// DeleteBans forgets the bans that ended (expired or lifted) before t: their
	// recurrence no longer escalates.
	DeleteBans(ctx context.Context, before time.Time) (int, error)
}
