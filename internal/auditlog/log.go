package auditlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

// Config configures New. Store is required; the zero value of the rest means the
// defaults.
type Config struct {
	// Store keeps the chain: *sqlite.DB and *postgres.DB provide it.
	Store store.AuditChainStore
	// Now stamps entries; nil means time.Now. An entry is never dated before its
	// predecessor: a clock stepped back stamps the predecessor's time.
	Now func() time.Time
	// PageSize is how many entries Verify and Export read at a time; default 1000.
	PageSize int
}

// Head is the last entry of the chain: its place and hash, which an external system
// pins, and its time. The zero Head is an empty chain.
type Head struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
}

// String returns "<seq> <hash>", or "0 (empty)".
func (h Head) String() string {
	if h.Seq == 0 {
		return "0 (empty)"
	}
	return fmt.Sprintf("%d %s", h.Seq, h.Hash)
}

// Log appends records to the chain in a store. It is safe for concurrent use; appends
// are serialised in the Log, and Logs in other processes sharing the store race on the
// next sequence number, the loser re-reading the head and trying again.
type Log struct {
	store    store.AuditChainStore
	now      func() time.Time
	pageSize int

	mu     sync.Mutex
	head   store.AuditRow // the last entry appended or read
	loaded bool           // head is as of the last write: no need to read it first
}

var _ Recorder = (*Log)(nil)

// New returns a Log over cfg.Store. It does no I/O.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, errors.New("audit log: no store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 1000
	}
	cfg.PageSize = min(cfg.PageSize, store.MaxAuditPage)
	return &Log{store: cfg.Store, now: cfg.Now, pageSize: cfg.PageSize}, nil
}

// maxAttempts bounds how often one Append re-reads the head after losing the race
// for a sequence number; each loss means another entry was appended.
const maxAttempts = 1000

// Append adds r to the chain and returns the entry as stored. r.Kind is required.
func (l *Log) Append(ctx context.Context, r Record) (Entry, error) {
	if r.Kind == "" {
		return Entry{}, errors.New("audit log: append: a record needs a kind")
	}
	rec, err := Canonical(r)
	if err != nil {
		return Entry{}, fmt.Errorf("audit log: append %s: %w", r.Kind, err)
	}
	if len(rec) > MaxRecord {
		return Entry{}, fmt.Errorf("audit log: append %s: the record is %d bytes, over the limit of %d", r.Kind, len(rec), MaxRecord)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for attempt := 1; ; attempt++ {
		if !l.loaded {
			if err := l.readHead(ctx); err != nil {
				return Entry{}, fmt.Errorf("audit log: append %s: %w", r.Kind, err)
			}
		}
		row := store.AuditRow{Seq: l.head.Seq + 1, TimeNs: max(l.now().UnixNano(), l.head.TimeNs), Record: string(rec), Prev: l.head.Hash}
		row.Hash = Hash(row.Seq, row.TimeNs, rec, row.Prev)
		err := l.store.AppendAuditEntry(ctx, row)
		if err == nil {
			l.head = row
			return entryOf(row)
		}
		l.loaded = false
		if !errors.Is(err, store.ErrExists) || attempt == maxAttempts || ctx.Err() != nil {
			return Entry{}, fmt.Errorf("audit log: append %s: %w", r.Kind, err)
		}
	}
}

// readHead reads the head from the store; the caller holds mu.
func (l *Log) readHead(ctx context.Context) error {
	h, err := l.store.AuditHead(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		h = store.AuditRow{}
	case err != nil:
		return err
	}
	l.head, l.loaded = h, true
	return nil
}

// Head returns the last entry this Log appended or read (Refresh), without I/O.
func (l *Log) Head() Head {
	l.mu.Lock()
	defer l.mu.Unlock()
	return headOf(l.head)
}

// Refresh reads the head from the store, which other processes may have moved, and
// returns it.
func (l *Log) Refresh(ctx context.Context) (Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.readHead(ctx); err != nil {
		return Head{}, fmt.Errorf("audit log: head: %w", err)
	}
	return headOf(l.head), nil
}

// Verify checks the whole chain in the Log's store (see Verify).
func (l *Log) Verify(ctx context.Context) (Report, error) {
	return Verifier{PageSize: l.pageSize}.Verify(ctx, l.store)
}

// Export writes the whole chain to w as JSON Lines, one Entry per line in sequence
// order (see ExportSince).
func (l *Log) Export(ctx context.Context, w io.Writer) error {
	return l.ExportSince(ctx, w, time.Time{})
}

// ExportSince writes the entries dated at or after since to w as JSON Lines, one
// Entry per line in sequence order. The "record" of each line is the stored canonical
// JSON byte for byte, so a line's hash can be recomputed from it. It reads the store a
// page at a time; it does not verify (an entry whose record is not JSON fails the
// export).
func (l *Log) ExportSince(ctx context.Context, w io.Writer, since time.Time) error {
	after := int64(0)
	var line []byte
	for {
		rows, err := l.store.AuditEntries(ctx, after, l.pageSize)
		if err != nil {
			return fmt.Errorf("audit log: export: %w", err)
		}
		for _, r := range rows {
			after = r.Seq
			if !since.IsZero() && r.TimeNs < since.UnixNano() {
				continue
			}
			b, err := json.Marshal(exportLine{Seq: r.Seq, Time: time.Unix(0, r.TimeNs).UTC(), Record: json.RawMessage(r.Record), Prev: r.Prev, Hash: r.Hash})
			if err != nil {
				return fmt.Errorf("audit log: export entry %d: its record is not JSON (run audit-log verify): %w", r.Seq, err)
			}
			line = append(append(line[:0], b...), '\n')
			if _, err := w.Write(line); err != nil {
				return fmt.Errorf("audit log: export: %w", err)
			}
		}
		if len(rows) < l.pageSize {
			return nil
		}
	}
}

// exportLine is an Entry with its record as stored.
type exportLine struct {
	Seq    int64           `json:"seq"`
	Time   time.Time       `json:"time"`
	Record json.RawMessage `json:"record"`
	Prev   string          `json:"prev"`
	Hash   string          `json:"hash"`
}

func headOf(r store.AuditRow) Head {
	if r.Seq == 0 {
		return Head{}
	}
	return Head{Seq: r.Seq, Hash: r.Hash, Time: time.Unix(0, r.TimeNs).UTC()}
}

// entryOf decodes a stored row.
func entryOf(r store.AuditRow) (Entry, error) {
	var rec Record
	if err := json.Unmarshal([]byte(r.Record), &rec); err != nil {
		return Entry{}, fmt.Errorf("audit log: entry %d: record: %w", r.Seq, err)
	}
	return Entry{Seq: r.Seq, Time: time.Unix(0, r.TimeNs).UTC(), Record: rec, Prev: r.Prev, Hash: r.Hash}, nil
}
