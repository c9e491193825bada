package auditlog

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/portpatrol/portpatrol/internal/store"
)

// ExportReader reads an export (JSON Lines, as Export writes them) back as the pages
// Verify reads, a line at a time, so that a copy of the chain kept elsewhere can be
// verified without the database. Its pages must be asked for in order, as Verify does.
// It is not safe for concurrent use.
type ExportReader struct {
	sc   *bufio.Scanner
	line int
}

// NewExportReader reads the export in r.
func NewExportReader(r io.Reader) *ExportReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 2*MaxRecord)
	return &ExportReader{sc: sc}
}

// AuditEntries returns the next lines of the export, at most limit. afterSeq is not
// used: the lines come in the order they were written.
func (e *ExportReader) AuditEntries(ctx context.Context, _ int64, limit int) ([]store.AuditRow, error) {
	var out []store.AuditRow
	for len(out) < limit && e.sc.Scan() {
		e.line++
		if len(e.sc.Bytes()) == 0 {
			continue
		}
		var l exportLine
		if err := json.Unmarshal(e.sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("export line %d: %w", e.line, err)
		}
		out = append(out, store.AuditRow{Seq: l.Seq, TimeNs: l.Time.UnixNano(), Record: string(l.Record), Prev: l.Prev, Hash: l.Hash})
	}
	if err := e.sc.Err(); err != nil {
		return nil, fmt.Errorf("export line %d: %w", e.line+1, err)
	}
	return out, ctx.Err()
}
