package store

import (
	"context"
	"fmt"
)

// AuditRow is one entry of the audit chain (internal/auditlog) as both SQL backends
// store it in the audit_chain table: its place, its time as Unix nanoseconds, the
// record's canonical JSON kept byte for byte, and the hashes that chain it.
type AuditRow struct {
	Seq    int64  // 1, 2, 3… with no gaps
	TimeNs int64  // Unix ns, UTC
	Record string // canonical JSON of the record; the hash covers these exact bytes
	Prev   string // Hash of the entry Seq-1, "" for the first
	Hash   string // hex SHA-256 over Seq, TimeNs, Record and Prev
}

// AuditChainStore keeps the audit chain. It is not part of Backend: the daemon and the
// audit-log command use it where the store provides it. Implementations are safe for
// concurrent use, also by several processes sharing one database.
type AuditChainStore interface {
	// AppendAuditEntry stores r as the entry after the head. It stores nothing and
	// returns an error wrapping ErrExists when r.Seq is taken or r does not follow the
	// head (r.Seq is 1 with r.Prev "", or the entry r.Seq-1 exists with the hash
	// r.Prev): another writer appended first, and the caller re-reads the head.
	AppendAuditEntry(ctx context.Context, r AuditRow) error
	// AuditEntries returns at most limit entries whose Seq is above afterSeq, in Seq
	// order, as stored: nothing is checked on the way out.
	AuditEntries(ctx context.Context, afterSeq int64, limit int) ([]AuditRow, error)
	// AuditHead returns the entry with the highest Seq, or ErrNotFound when the chain
	// is empty.
	AuditHead(ctx context.Context) (AuditRow, error)
}

// MaxAuditPage bounds the limit of one AuditEntries call.
const MaxAuditPage = 10000

// CheckAuditPage validates the arguments of AuditEntries.
func CheckAuditPage(afterSeq int64, limit int) error {
	if afterSeq < 0 {
		return fmt.Errorf("audit entries after %d: a negative sequence number", afterSeq)
	}
	if limit <= 0 || limit > MaxAuditPage {
		return fmt.Errorf("audit entries: limit %d, want 1 to %d", limit, MaxAuditPage)
	}
	return nil
}
