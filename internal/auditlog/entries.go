package auditlog

import (
	"context"
	"fmt"
	"time"
)

// Entries calls fn with each entry dated at or after since (all when since is zero), in
// sequence order, reading the store a page at a time. It does not verify; an entry whose
// record is not JSON stops it with an error naming the entry. fn's error stops it too.
func (l *Log) Entries(ctx context.Context, since time.Time, fn func(Entry) error) error {
	after := int64(0)
	for {
		rows, err := l.store.AuditEntries(ctx, after, l.pageSize)
		if err != nil {
			return fmt.Errorf("audit log: entries: %w", err)
		}
		for _, r := range rows {
			after = r.Seq
			if !since.IsZero() && r.TimeNs < since.UnixNano() {
				continue
			}
			e, err := entryOf(r)
			if err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		if len(rows) < l.pageSize {
			return nil
		}
	}
}
