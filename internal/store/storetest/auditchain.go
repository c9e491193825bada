package storetest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/store"
)

// AuditDB is one empty database for the audit chain suite. The zero value is not
// usable.
type AuditDB struct {
	// Open opens the database anew, as another process would (its own connections),
	// and closes it in t.Cleanup.
	Open func(t *testing.T) store.AuditChainStore
	// Exec runs SQL on the database directly, as someone with write access to the
	// file or the server would.
	Exec func(t *testing.T, sql string)
}

// RunAuditChain runs the audit chain suite: the store's contract, then a chain of 50
// entries written through auditlog.Log and tampered with in SQL, one way per subtest,
// each of which Verify must find and name, then concurrent appends from one Log and
// from two Logs on separate connections.
func RunAuditChain(t *testing.T, newDB func(t *testing.T) AuditDB) {
	t.Run("Contract", func(t *testing.T) { testAuditContract(t, newDB(t)) })
	t.Run("LogRoundTrip", func(t *testing.T) { testAuditRoundTrip(t, newDB(t)) })
	t.Run("Tampering", func(t *testing.T) { testAuditTampering(t, newDB) })
	t.Run("ConcurrentAppends", func(t *testing.T) { testAuditConcurrent(t, newDB(t)) })
}

func testAuditContract(t *testing.T, db AuditDB) {
	ctx := t.Context()
	s := db.Open(t)
	if _, err := s.AuditHead(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("head of an empty chain: got %v, want ErrNotFound", err)
	}
	if rows, err := s.AuditEntries(ctx, 0, 10); err != nil || len(rows) != 0 {
		t.Fatalf("entries of an empty chain: got %v, %v; want none", rows, err)
	}
	// Records are kept byte for byte: escapes, non-ASCII, a NUL written as \u0000.
	rec := `{"kind":"decision","actor":"portpatrol","reasons":["Zürich “p95” \u003e 2s","nul \u0000 here"]}`
	r1 := store.AuditRow{Seq: 1, TimeNs: base.UnixNano(), Record: rec, Prev: ""}
	r1.Hash = auditlog.Hash(r1.Seq, r1.TimeNs, []byte(r1.Record), r1.Prev)
	if err := s.AppendAuditEntry(ctx, r1); err != nil {
		t.Fatalf("append entry 1: %v", err)
	}
	r2 := store.AuditRow{Seq: 2, TimeNs: base.UnixNano() + 1, Record: `{"kind":"approval","actor":"alice"}`, Prev: r1.Hash}
	r2.Hash = auditlog.Hash(r2.Seq, r2.TimeNs, []byte(r2.Record), r2.Prev)
	for _, bad := range []struct {
		name string
		r    store.AuditRow
	}{
		{"seq taken", store.AuditRow{Seq: 1, TimeNs: 5, Record: `{}`, Prev: "", Hash: "x"}},
		{"a gap", store.AuditRow{Seq: 3, TimeNs: 5, Record: `{}`, Prev: r1.Hash, Hash: "x"}},
		{"a wrong prev", store.AuditRow{Seq: 2, TimeNs: 5, Record: `{}`, Prev: strings.Repeat("0", 64), Hash: "x"}},
		{"a first entry with a prev", store.AuditRow{Seq: 1, TimeNs: 5, Record: `{}`, Prev: r1.Hash, Hash: "x"}},
	} {
		if err := s.AppendAuditEntry(ctx, bad.r); !errors.Is(err, store.ErrExists) {
			t.Errorf("append with %s: got %v, want ErrExists", bad.name, err)
		}
	}
	if err := s.AppendAuditEntry(ctx, r2); err != nil {
		t.Fatalf("append entry 2: %v", err)
	}
	if h, err := s.AuditHead(ctx); err != nil || h != r2 {
		t.Errorf("head: got %+v, %v; want %+v", h, err, r2)
	}
	if rows, err := s.AuditEntries(ctx, 0, 10); err != nil || len(rows) != 2 || rows[0] != r1 || rows[1] != r2 {
		t.Errorf("entries: got %+v, %v; want %+v, %+v", rows, err, r1, r2)
	}
	if rows, err := s.AuditEntries(ctx, 0, 1); err != nil || len(rows) != 1 || rows[0] != r1 {
		t.Errorf("entries limit 1: got %+v, %v; want entry 1", rows, err)
	}
	if rows, err := s.AuditEntries(ctx, 1, 10); err != nil || len(rows) != 1 || rows[0] != r2 {
		t.Errorf("entries after 1: got %+v, %v; want entry 2", rows, err)
	}
	for _, lim := range []int{0, -1, store.MaxAuditPage + 1} {
		if _, err := s.AuditEntries(ctx, 0, lim); err == nil {
			t.Errorf("entries with limit %d: no error", lim)
		}
	}
	// Another connection sees the same chain.
	if h, err := db.Open(t).AuditHead(ctx); err != nil || h != r2 {
		t.Errorf("head read anew: got %+v, %v; want %+v", h, err, r2)
	}
}

// auditClock is a clock that moves 1.5 s per call.
type auditClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *auditClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(1500 * time.Millisecond)
	return c.t
}

// writeChain appends n records through a Log and returns them as stored.
func writeAuditChain(t *testing.T, s store.AuditChainStore, n int) []store.AuditRow {
	t.Helper()
	clk := &auditClock{t: base}
	l, err := auditlog.New(auditlog.Config{Store: s, Now: clk.Now, PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{auditlog.KindDecision, auditlog.KindApproval, auditlog.KindExecution, auditlog.KindVerification, auditlog.KindRollback}
	for i := range n {
		r := auditlog.Record{Kind: kinds[i%len(kinds)], DecisionID: fmt.Sprintf("d-%03d", i/5), Alert: "fp-redis-6379",
			Playbook: "restart-redis", Step: "restart", Target: "tcp://127.0.0.1:6379", Actor: "portpatrol",
			Reasons:  []string{"P0: refused for 30s", "tier R1: a reversible restart of one unit"},
			PlanHash: fmt.Sprintf("%064x", i), Outcome: "ok", Evidence: json.RawMessage(fmt.Sprintf(`{"z": %d, "a": ["<b>", 1.50]}`, i))}
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatalf("append %d: %v", i+1, err)
		}
	}
	rows, err := s.AuditEntries(t.Context(), 0, n+1)
	if err != nil || len(rows) != n {
		t.Fatalf("read back: got %d entries, %v; want %d", len(rows), err, n)
	}
	return rows
}

func verifyAudit(t *testing.T, s store.AuditChainStore, pin auditlog.Head) auditlog.Report {
	t.Helper()
	rep, err := auditlog.Verifier{PageSize: 7, Pin: pin}.Verify(t.Context(), s)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

func testAuditRoundTrip(t *testing.T, db AuditDB) {
	ctx := t.Context()
	s := db.Open(t)
	rows := writeAuditChain(t, s, 50)
	for i, r := range rows {
		if r.Seq != int64(i+1) || (i > 0 && r.Prev != rows[i-1].Hash) || (i == 0 && r.Prev != "") {
			t.Fatalf("entry %d: seq %d prev %s; want seq %d linked to the entry before", i+1, r.Seq, r.Prev, i+1)
		}
		if r.TimeNs != base.Add(time.Duration(i+1)*1500*time.Millisecond).UnixNano() {
			t.Errorf("entry %d: time %d, want the injected clock's", r.Seq, r.TimeNs)
		}
	}
	if !strings.Contains(rows[0].Record, `"evidence":{"a":["\u003cb\u003e",1.50],"z":0}`) {
		t.Errorf("entry 1's record is not canonical: %s", rows[0].Record)
	}
	rep := verifyAudit(t, db.Open(t), auditlog.Head{})
	if !rep.Intact() || rep.Entries != 50 || rep.Head.Seq != 50 || rep.Head.Hash != rows[49].Hash {
		t.Fatalf("verify: got %+v, want intact, 50 entries, head 50 %s", rep, rows[49].Hash)
	}
	if rep := verifyAudit(t, s, auditlog.Head{Seq: 50, Hash: rows[49].Hash}); !rep.Intact() {
		t.Errorf("verify pinned at its own head: %v", rep.Problem)
	}

	// A second Log continues the chain from the stored head.
	l, err := auditlog.New(auditlog.Config{Store: db.Open(t)})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Append(ctx, auditlog.Record{Kind: auditlog.KindControl, Actor: "alice", Reasons: []string{"paused for maintenance"}})
	if err != nil || e.Seq != 51 || e.Prev != rows[49].Hash {
		t.Fatalf("append by another Log: got seq %d prev %s, %v; want 51 linked to 50", e.Seq, e.Prev, err)
	}
	// The chain is dated in 2031 and this Log's clock is the system's: an entry is
	// never dated before its predecessor.
	if !e.Time.Equal(time.Unix(0, rows[49].TimeNs)) || e.Time.Location() != time.UTC {
		t.Errorf("entry 51 time %v: want entry 50's %v, in UTC", e.Time, time.Unix(0, rows[49].TimeNs).UTC())
	}
	if h := l.Head(); h.Seq != 51 || h.Hash != e.Hash {
		t.Errorf("head: got %v, want 51 %s", h, e.Hash)
	}

	// Export: one Entry per line, and each line's hash recomputes from the line.
	var buf bytes.Buffer
	if err := l.Export(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(&buf)
	n := 0
	for sc.Scan() {
		n++
		var line struct {
			Seq    int64           `json:"seq"`
			Time   time.Time       `json:"time"`
			Record json.RawMessage `json:"record"`
			Prev   string          `json:"prev"`
			Hash   string          `json:"hash"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %d: %v", n, err)
		}
		if got := auditlog.Hash(line.Seq, line.Time.UnixNano(), line.Record, line.Prev); got != line.Hash || line.Seq != int64(n) {
			t.Errorf("line %d: seq %d, recomputed hash %s, want seq %d hash %s", n, line.Seq, got, n, line.Hash)
		}
		var entry auditlog.Entry
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil || entry.Record.Kind == "" {
			t.Errorf("line %d as an Entry: %+v, %v", n, entry, err)
		}
	}
	if n != 51 {
		t.Errorf("export: %d lines, want 51", n)
	}
	buf.Reset()
	if err := l.ExportSince(ctx, &buf, time.Unix(0, rows[39].TimeNs)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(buf.String(), "\n"); got != 12 || !strings.HasPrefix(buf.String(), `{"seq":40,`) {
		t.Errorf("export since entry 40's time: %d lines starting %.12q, want 12 from seq 40", got, buf.String())
	}
}

// sqlQuote quotes s as an SQL string literal, for SQLite and PostgreSQL alike.
func auditQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// renumber moves the entries from seq on by delta, in two statements so that no
// row takes a number still held by another.
func renumberAudit(t *testing.T, db AuditDB, from, delta int64) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`UPDATE audit_chain SET seq = -(seq + %d) WHERE seq >= %d`, delta, from))
	db.Exec(t, `UPDATE audit_chain SET seq = -seq WHERE seq < 0`)
}

func swapAudit(t *testing.T, db AuditDB, a, b int64) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`UPDATE audit_chain SET seq = -1 WHERE seq = %d`, a))
	db.Exec(t, fmt.Sprintf(`UPDATE audit_chain SET seq = %d WHERE seq = %d`, a, b))
	db.Exec(t, fmt.Sprintf(`UPDATE audit_chain SET seq = %d WHERE seq = -1`, b))
}

func testAuditTampering(t *testing.T, newDB func(t *testing.T) AuditDB) {
	forge := func(seq, timeNs int64, record, prev string) string {
		return fmt.Sprintf(`INSERT INTO audit_chain (seq, time_ns, record, prev, hash) VALUES (%d, %d, %s, %s, %s)`,
			seq, timeNs, auditQuote(record), auditQuote(prev), auditQuote(auditlog.Hash(seq, timeNs, []byte(record), prev)))
	}
	const forged = `{"kind":"approval","actor":"mallory","plan_hash":"beef"}`
	tests := []struct {
		name   string
		tamper func(t *testing.T, db AuditDB, rows []store.AuditRow)
		pin    bool // verify against the head pinned before tampering
		seq    int64
		what   auditlog.Tampering
		detail string
	}{
		{"edit a record", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `UPDATE audit_chain SET record = replace(record, '"actor":"portpatrol"', '"actor":"alice"') WHERE seq = 17`)
		}, false, 17, auditlog.Edited, "entry 17 was edited or forged: its content does not match its hash"},
		{"edit a time", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `UPDATE audit_chain SET time_ns = time_ns - 1000 WHERE seq = 30`)
		}, false, 30, auditlog.Edited, "entry 30 was edited"},
		{"edit a record and its hash", func(t *testing.T, db AuditDB, rows []store.AuditRow) {
			r := rows[16]
			rec := strings.Replace(r.Record, `"outcome":"ok"`, `"outcome":"skipped"`, 1)
			db.Exec(t, fmt.Sprintf(`UPDATE audit_chain SET record = %s, hash = %s WHERE seq = 17`,
				auditQuote(rec), auditQuote(auditlog.Hash(17, r.TimeNs, []byte(rec), r.Prev))))
		}, false, 17, auditlog.Edited, "entry 17 was rewritten: its hash"},
		{"delete an entry", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `DELETE FROM audit_chain WHERE seq = 23`)
		}, false, 23, auditlog.Deleted, "entry 23 is missing: the chain goes from entry 22 to entry 24"},
		{"delete three entries", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `DELETE FROM audit_chain WHERE seq BETWEEN 23 AND 25`)
		}, false, 23, auditlog.Deleted, "entries 23 to 25 are missing"},
		{"delete the first entry", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `DELETE FROM audit_chain WHERE seq = 1`)
		}, false, 1, auditlog.Deleted, "entry 1 is missing: the chain starts at entry 2"},
		{"delete an entry and renumber", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `DELETE FROM audit_chain WHERE seq = 23`)
			renumberAudit(t, db, 24, -1)
		}, false, 23, auditlog.Deleted, "entry 23 was deleted and the entries after it renumbered"},
		{"delete the last entries, pinned", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			db.Exec(t, `DELETE FROM audit_chain WHERE seq > 47`)
		}, true, 48, auditlog.Deleted, "the chain ends at entry 47, but entry 50 was pinned"},
		{"insert a forged entry", func(t *testing.T, db AuditDB, rows []store.AuditRow) {
			renumberAudit(t, db, 30, 1)
			db.Exec(t, forge(30, rows[28].TimeNs+1, forged, rows[28].Hash))
		}, false, 30, auditlog.Inserted, "entry 30 was inserted: entry 31 is the one first written as entry 30"},
		{"insert a junk entry", func(t *testing.T, db AuditDB, rows []store.AuditRow) {
			renumberAudit(t, db, 30, 1)
			db.Exec(t, fmt.Sprintf(`INSERT INTO audit_chain (seq, time_ns, record, prev, hash) VALUES (30, %d, %s, %s, 'feed')`,
				rows[28].TimeNs+1, auditQuote(forged), auditQuote(rows[28].Hash)))
		}, false, 30, auditlog.Inserted, "entry 30 was inserted: the entry after it is the one first written as entry 30"},
		{"append a forged entry with a bad hash", func(t *testing.T, db AuditDB, rows []store.AuditRow) {
			db.Exec(t, fmt.Sprintf(`INSERT INTO audit_chain (seq, time_ns, record, prev, hash) VALUES (51, %d, %s, %s, %s)`,
				rows[49].TimeNs+1, auditQuote(forged), auditQuote(rows[49].Hash), auditQuote(rows[49].Hash)))
		}, false, 51, auditlog.Edited, "entry 51 was edited or forged"},
		{"swap two entries", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			swapAudit(t, db, 20, 35)
		}, false, 20, auditlog.Reordered, "entry 20 is the one first written as entry 35"},
		{"swap neighbours", func(t *testing.T, db AuditDB, _ []store.AuditRow) {
			swapAudit(t, db, 20, 21)
		}, false, 20, auditlog.Reordered, "entries 20 and 21 were swapped"},
		{"rewrite the tail, pinned", func(t *testing.T, db AuditDB, rows []store.AuditRow) {
			db.Exec(t, `DELETE FROM audit_chain WHERE seq > 40`)
			prev := rows[39].Hash
			for seq := int64(41); seq <= 50; seq++ {
				db.Exec(t, forge(seq, rows[seq-1].TimeNs, forged, prev))
				prev = auditlog.Hash(seq, rows[seq-1].TimeNs, []byte(forged), prev)
			}
		}, true, 50, auditlog.Edited, "entry 50 has the hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newDB(t)
			s := db.Open(t)
			rows := writeAuditChain(t, s, 50)
			if rep := verifyAudit(t, s, auditlog.Head{}); !rep.Intact() || rep.Entries != 50 {
				t.Fatalf("before tampering: %+v, want intact with 50 entries", rep)
			}
			tt.tamper(t, db, rows)
			var pin auditlog.Head
			if tt.pin {
				pin = auditlog.Head{Seq: 50, Hash: rows[49].Hash}
			}
			rep := verifyAudit(t, db.Open(t), pin)
			if rep.Intact() {
				t.Fatalf("verify after tampering: intact (%d entries), want entry %d %s", rep.Entries, tt.seq, tt.what)
			}
			p := rep.Problem
			if p.Seq != tt.seq || p.What != tt.what || !strings.Contains(p.Error(), tt.detail) {
				t.Errorf("verify after tampering: got %q, want entry %d %s saying %q", p, tt.seq, tt.what, tt.detail)
			}
			if rep.Entries != tt.seq-1 || (tt.seq > 1 && rep.Head.Seq != tt.seq-1) {
				t.Errorf("good entries before the problem: got %d, head %v; want %d", rep.Entries, rep.Head, tt.seq-1)
			}
		})
	}
	t.Run("without a pin, a deleted tail goes unseen", func(t *testing.T) {
		db := newDB(t)
		s := db.Open(t)
		writeAuditChain(t, s, 50)
		db.Exec(t, `DELETE FROM audit_chain WHERE seq > 47`)
		if rep := verifyAudit(t, s, auditlog.Head{}); !rep.Intact() || rep.Entries != 47 {
			t.Errorf("got %+v, want intact with 47 entries: this is what pinning the head is for", rep)
		}
	})
}

func testAuditConcurrent(t *testing.T, db AuditDB) {
	ctx := t.Context()
	const perWriter = 20
	var logs []*auditlog.Log
	for range 2 { // two Logs on their own connections, as two processes
		l, err := auditlog.New(auditlog.Config{Store: db.Open(t)})
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seqs = map[int64]bool{}
		errs []error
	)
	for w := range 6 { // three goroutines on each Log
		wg.Go(func() {
			for i := range perWriter {
				e, err := logs[w%2].Append(ctx, auditlog.Record{Kind: auditlog.KindDecision, Actor: "portpatrol",
					DecisionID: fmt.Sprintf("w%d-%d", w, i)})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if seqs[e.Seq] {
					errs = append(errs, fmt.Errorf("seq %d returned twice", e.Seq))
				}
				seqs[e.Seq] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	const want = 6 * perWriter
	rep, err := logs[0].Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact() || rep.Entries != want || rep.Head.Seq != want {
		t.Fatalf("after concurrent appends: %+v (problem %v), want an intact chain of %d", rep, rep.Problem, want)
	}
	for s := int64(1); s <= want; s++ {
		if !seqs[s] {
			t.Errorf("no Append returned seq %d", s)
		}
	}
}
