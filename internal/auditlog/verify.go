package auditlog

import (
	"context"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

// Tampering says what was done to the first bad entry of a chain.
type Tampering string

// What Verify finds.
const (
	Edited    Tampering = "edited"    // an entry's content no longer matches its hash, or it was rewritten
	Deleted   Tampering = "deleted"   // an entry is missing: a gap, or the chain ends before its pinned head
	Inserted  Tampering = "inserted"  // an entry was added that the chain did not have
	Reordered Tampering = "reordered" // entries were moved: one sits at another's place, or dates go back
)

// Problem is the first bad entry of a chain and what is wrong with it.
type Problem struct {
	Seq    int64     // the first bad entry
	What   Tampering // what was done to it
	Detail string    // what Verify found, in words
}

func (p *Problem) Error() string {
	return fmt.Sprintf("first bad entry %d (%s): %s", p.Seq, p.What, p.Detail)
}

// Report is the outcome of Verify.
type Report struct {
	// Entries is how many entries were checked: the whole chain when it is intact,
	// the good ones before the problem otherwise.
	Entries int64
	// Head is the last good entry checked.
	Head Head
	// Problem is the first bad entry, nil when the chain is intact.
	Problem *Problem
}

// Intact reports whether the chain passed.
func (r Report) Intact() bool { return r.Problem == nil }

// Pages is what Verify reads: a store.AuditChainStore provides it.
type Pages interface {
	AuditEntries(ctx context.Context, afterSeq int64, limit int) ([]store.AuditRow, error)
}

// Verifier checks chains. The zero value reads 1000 entries at a time and pins
// nothing.
type Verifier struct {
	// PageSize is how many entries are read at a time.
	PageSize int
	// Pin is a head recorded earlier (from /metrics or the log): the chain must still
	// hold that entry with that hash. It catches what the chain alone cannot: entries
	// deleted from its end, or the whole chain rewritten.
	Pin Head
}

// Verify checks the whole chain in s with the zero Verifier.
func Verify(ctx context.Context, s Pages) (Report, error) {
	return Verifier{}.Verify(ctx, s)
}

// maxSearch bounds how many other sequence numbers are tried, once, to find where a
// bad entry was first written.
const maxSearch = 1 << 16

// Verify walks the chain in s in sequence order, a page at a time, and returns the
// first bad entry in the Report. An error is returned only when the store cannot be
// read.
//
// Each entry must carry the next sequence number, its hash must be the hash of its own
// seq, time, record and prev, its prev must be the previous entry's hash, its time
// must not go back, and its record must be canonical JSON. When an entry fails, the
// entries around it tell what happened: an entry whose content hashes correctly under
// another sequence number was moved (reordered), or displaced by an insertion or a
// deletion; an entry that hashes correctly but does not link to its predecessor means
// the predecessor was rewritten.
func (v Verifier) Verify(ctx context.Context, s Pages) (Report, error) {
	c := &cursor{ctx: ctx, src: s, size: v.PageSize}
	if c.size <= 0 {
		c.size = 1000
	}
	c.size = min(c.size, store.MaxAuditPage)
	var (
		rep      Report
		want     = int64(1)
		prev     store.AuditRow // the last entry that passed
		before   store.AuditRow // the one before it
		pinFound bool
	)
	fail := func(seq int64, what Tampering, format string, args ...any) (Report, error) {
		rep.Problem = &Problem{Seq: seq, What: what, Detail: fmt.Sprintf(format, args...)}
		rep.Entries = seq - 1
		rep.Head = Head{}
		switch seq - 1 {
		case prev.Seq:
			rep.Head = headOf(prev)
		case before.Seq:
			rep.Head = headOf(before)
		}
		return rep, nil
	}
	for {
		r, ok, err := c.next()
		if err != nil {
			return Report{}, err
		}
		if !ok {
			break
		}
		switch {
		case r.Seq == 2 && want == 1:
			return fail(1, Deleted, "entry 1 is missing: the chain starts at entry 2")
		case r.Seq > want && want == 1:
			return fail(1, Deleted, "entries 1 to %d are missing: the chain starts at entry %d", r.Seq-1, r.Seq)
		case r.Seq == want+1:
			return fail(want, Deleted, "entry %d is missing: the chain goes from entry %d to entry %d", want, want-1, r.Seq)
		case r.Seq > want:
			return fail(want, Deleted, "entries %d to %d are missing: the chain goes from entry %d to entry %d", want, r.Seq-1, want-1, r.Seq)
		case r.Seq < want:
			return fail(r.Seq, Inserted, "entry %d appears again after entry %d", r.Seq, want-1)
		}
		rec := []byte(r.Record)
		if Hash(r.Seq, r.TimeNs, rec, r.Prev) != r.Hash {
			return v.explainBadHash(c, r, prev, fail)
		}
		if r.Prev != prev.Hash {
			if r.Seq == 1 {
				return fail(1, Inserted, "entry 1 links to a predecessor (prev %s), but the first entry has none", short(r.Prev))
			}
			return fail(r.Seq-1, Edited, "entry %d was rewritten: its hash %s is not the hash %s that entry %d links to",
				r.Seq-1, short(prev.Hash), short(r.Prev), r.Seq)
		}
		if r.TimeNs < prev.TimeNs {
			return fail(r.Seq, Reordered, "entry %d is dated %s, before entry %d (%s)", r.Seq, stamp(r.TimeNs), prev.Seq, stamp(prev.TimeNs))
		}
		if _, canonical, err := parseRecord(rec); err != nil {
			return fail(r.Seq, Edited, "entry %d's record is not a record: %v", r.Seq, err)
		} else if !canonical {
			return fail(r.Seq, Edited, "entry %d's record is not in canonical form", r.Seq)
		}
		if v.Pin.Seq == r.Seq {
			if r.Hash != v.Pin.Hash {
				return fail(r.Seq, Edited, "entry %d has the hash %s, not the pinned %s: the chain was rewritten up to here", r.Seq, short(r.Hash), short(v.Pin.Hash))
			}
			pinFound = true
		}
		before, prev, want = prev, r, want+1
		rep.Entries++
		rep.Head = headOf(r)
	}
	if v.Pin.Seq > 0 && !pinFound && v.Pin.Seq == prev.Seq+1 {
		return fail(v.Pin.Seq, Deleted, "the chain ends at entry %d, but entry %d was pinned: it was deleted", prev.Seq, v.Pin.Seq)
	}
	if v.Pin.Seq > 0 && !pinFound {
		return fail(prev.Seq+1, Deleted, "the chain ends at entry %d, but entry %d was pinned: entries %d to %d were deleted",
			prev.Seq, v.Pin.Seq, prev.Seq+1, v.Pin.Seq)
	}
	return rep, nil
}

// explainBadHash names what happened to r, whose hash does not match its content.
func (v Verifier) explainBadHash(c *cursor, r, prev store.AuditRow, fail func(int64, Tampering, string, ...any) (Report, error)) (Report, error) {
	rec := []byte(r.Record)
	next, hasNext, err := c.peek()
	if err != nil {
		return Report{}, err
	}
	// Where was r's content first written? Its hash covers its sequence number.
	last := r.Seq + maxSearch
	if h, ok := c.src.(interface {
		AuditHead(context.Context) (store.AuditRow, error)
	}); ok {
		if head, err := h.AuditHead(c.ctx); err == nil {
			last = min(last, max(head.Seq, r.Seq+1))
		}
	}
	orig := int64(0)
	for d := int64(1); orig == 0 && (r.Seq+d <= last || r.Seq-d >= max(1, r.Seq-maxSearch)); d++ {
		if s := r.Seq + d; s <= last && Hash(s, r.TimeNs, rec, r.Prev) == r.Hash {
			orig = s
		} else if s := r.Seq - d; s >= 1 && Hash(s, r.TimeNs, rec, r.Prev) == r.Hash {
			orig = s
		}
	}
	// nextBelongsHere: the next entry is the one first written at r's place.
	nextBelongsHere := hasNext && next.Seq == r.Seq+1 && Hash(r.Seq, next.TimeNs, []byte(next.Record), next.Prev) == next.Hash
	switch {
	case orig == r.Seq+1 && nextBelongsHere:
		return fail(r.Seq, Reordered, "entries %d and %d were swapped", r.Seq, r.Seq+1)
	case nextBelongsHere && next.Prev == prev.Hash:
		return fail(r.Seq, Inserted, "entry %d was inserted: the entry after it is the one first written as entry %d", r.Seq, r.Seq)
	case orig == 0:
		return fail(r.Seq, Edited, "entry %d was edited or forged: its content does not match its hash %s", r.Seq, short(r.Hash))
	case orig == r.Seq-1:
		// r was written as the entry before; the good entry before it is extra.
		return fail(r.Seq-1, Inserted, "entry %d was inserted: entry %d is the one first written as entry %d", r.Seq-1, r.Seq, r.Seq-1)
	case orig == r.Seq+1:
		return fail(r.Seq, Deleted, "entry %d was deleted and the entries after it renumbered: entry %d is the one first written as entry %d", r.Seq, r.Seq, orig)
	}
	return fail(r.Seq, Reordered, "entry %d is the one first written as entry %d: entries were moved", r.Seq, orig)
}

// cursor reads a chain a page at a time, with one entry of lookahead.
type cursor struct {
	ctx   context.Context
	src   Pages
	size  int
	page  []store.AuditRow
	i     int
	after int64
	end   bool
}

func (c *cursor) fill() error {
	if c.i < len(c.page) || c.end {
		return nil
	}
	rows, err := c.src.AuditEntries(c.ctx, c.after, c.size)
	if err != nil {
		return fmt.Errorf("audit log: verify: %w", err)
	}
	c.page, c.i = rows, 0
	if len(rows) < c.size {
		c.end = true
	}
	if len(rows) > 0 {
		c.after = rows[len(rows)-1].Seq
	}
	return nil
}

func (c *cursor) peek() (store.AuditRow, bool, error) {
	if err := c.fill(); err != nil {
		return store.AuditRow{}, false, err
	}
	if c.i >= len(c.page) {
		return store.AuditRow{}, false, nil
	}
	return c.page[c.i], true, nil
}

func (c *cursor) next() (store.AuditRow, bool, error) {
	r, ok, err := c.peek()
	if ok {
		c.i++
	}
	return r, ok, err
}

// short abbreviates a hash for messages.
func short(h string) string {
	if h == "" {
		return `""`
	}
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
