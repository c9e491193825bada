// Package auditlog is portpatrol's record of every decision its automation makes: an
// append-only, hash-chained log in the store, so that an entry edited, deleted, inserted
// or reordered afterwards is found by verifying the chain.
package auditlog

import (
	"context"
	"encoding/json"
	"time"
)

// Kinds of records. Every decision is recorded, including the decision to do nothing.
const (
	KindDecision     = "decision"     // a playbook was matched (or not) and a plan made
	KindApproval     = "approval"     // an approver accepted a plan
	KindDenial       = "denial"       // an approver refused a plan, or an approval was refused
	KindExpiry       = "expiry"       // a pending plan expired or was voided (resolved, drifted)
	KindExecution    = "execution"    // an action ran (or was skipped in shadow mode)
	KindVerification = "verification" // a step's verification window decided
	KindRollback     = "rollback"     // a step's rollback ran
	KindBan          = "ban"          // an address was banned
	KindUnban        = "unban"        // a ban was lifted by hand or expired
	KindControl      = "control"      // automation paused or resumed, break-glass used
)

// Record is what a caller appends: one decision or event with its reasons in words.
type Record struct {
	Kind       string          `json:"kind"`
	DecisionID string          `json:"decision_id,omitempty"`
	Alert      string          `json:"alert,omitempty"` // the alert's fingerprint
	Playbook   string          `json:"playbook,omitempty"`
	Step       string          `json:"step,omitempty"`
	Target     string          `json:"target,omitempty"`
	Actor      string          `json:"actor"`             // "portpatrol" or a user's name
	Reasons    []string        `json:"reasons,omitempty"` // why, in words
	PlanHash   string          `json:"plan_hash,omitempty"`
	Outcome    string          `json:"outcome,omitempty"`
	Evidence   json.RawMessage `json:"evidence,omitempty"`
}

// Entry is a record as stored: its place in the chain, its time and its hashes.
type Entry struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Record Record    `json:"record"`
	Prev   string    `json:"prev"` // hex SHA-256 of the previous entry ("" for the first)
	Hash   string    `json:"hash"` // hex SHA-256 over Seq, Time, Record and Prev
}

// Recorder appends records to the chain. Automation and bans write through it.
type Recorder interface {
	Append(ctx context.Context, r Record) (Entry, error)
}
