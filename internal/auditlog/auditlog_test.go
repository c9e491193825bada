package auditlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/store"
)

// memChain is an in-memory store.AuditChainStore with the same contract as the SQL
// backends, for the verifier's cases; the backends run the same cases on real
// databases in storetest.RunAuditChain.
type memChain struct {
	mu   sync.Mutex
	rows []store.AuditRow // in seq order
}

func (m *memChain) AppendAuditEntry(_ context.Context, r store.AuditRow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var head store.AuditRow
	if len(m.rows) > 0 {
		head = m.rows[len(m.rows)-1]
	}
	if r.Seq != head.Seq+1 || r.Prev != head.Hash {
		return fmt.Errorf("seq %d: %w", r.Seq, store.ErrExists)
	}
	m.rows = append(m.rows, r)
	return nil
}

func (m *memChain) AuditEntries(_ context.Context, after int64, limit int) ([]store.AuditRow, error) {
	if err := store.CheckAuditPage(after, limit); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.AuditRow
	for _, r := range m.rows {
		if r.Seq > after && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (m *memChain) AuditHead(context.Context) (store.AuditRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.rows) == 0 {
		return store.AuditRow{}, store.ErrNotFound
	}
	return m.rows[len(m.rows)-1], nil
}

func TestHashIsFixed(t *testing.T) {
	// The encoding is documented (docs/auditlog.md) so that others can recompute
	// it: a change here breaks every chain already written.
	tests := []struct {
		seq, ns int64
		rec     string
		prev    string
		want    string
	}{
		// printf 'portpatrol audit v1\n1\n0\n40\n{"kind":"decision","actor":"portpatrol"}\n' | sha256sum
		{1, 0, `{"kind":"decision","actor":"portpatrol"}`, "", "563bbfe988334f70e5e2b0b031e648d79a97825274dd632077bb37f3e8c06f80"},
	}
	for _, tt := range tests {
		got := Hash(tt.seq, tt.ns, []byte(tt.rec), tt.prev)
		want := sha256Hex("portpatrol audit v1\n" + fmt.Sprint(tt.seq) + "\n" + fmt.Sprint(tt.ns) + "\n" + fmt.Sprint(len(tt.rec)) + "\n" + tt.rec + "\n" + tt.prev)
		if got != want || got != tt.want {
			t.Errorf("Hash(%d, %d, %s, %q): got %s, want %s (as documented, and fixed: %s)", tt.seq, tt.ns, tt.rec, tt.prev, got, want, tt.want)
		}
	}
	// Every field counts.
	base := Hash(5, 100, []byte(`{}`), "ab")
	for name, h := range map[string]string{
		"seq": Hash(6, 100, []byte(`{}`), "ab"), "time": Hash(5, 101, []byte(`{}`), "ab"),
		"record": Hash(5, 100, []byte(`{ }`), "ab"), "prev": Hash(5, 100, []byte(`{}`), "ac"),
	} {
		if h == base {
			t.Errorf("changing the %s leaves the hash as it was", name)
		}
	}
}

func TestCanonical(t *testing.T) {
	tests := []struct {
		name string
		r    Record
		want string
	}{
		{"minimal", Record{Kind: KindDecision, Actor: "portpatrol"}, `{"kind":"decision","actor":"portpatrol"}`},
		{"evidence keys sorted, spaces gone, numbers as written",
			Record{Kind: KindExecution, Actor: "alice", Evidence: json.RawMessage(` { "z" : 1.50, "a" : [ 1e3, "<x>" ] } `)},
			`{"kind":"execution","actor":"alice","evidence":{"a":[1e3,"\u003cx\u003e"],"z":1.50}}`},
		{"null evidence left out", Record{Kind: KindDenial, Actor: "bob", Evidence: json.RawMessage(`null`)}, `{"kind":"denial","actor":"bob"}`},
		{"empty reasons left out", Record{Kind: KindDenial, Actor: "bob", Reasons: []string{}}, `{"kind":"denial","actor":"bob"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Canonical(tt.r)
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
			if _, canonical, err := parseRecord(got); err != nil || !canonical {
				t.Errorf("parsed again: canonical %v, %v; want the same bytes", canonical, err)
			}
		})
	}
	for _, bad := range []string{`{`, `{"a":1} {"b":2}`, `nope`} {
		if _, err := Canonical(Record{Kind: KindBan, Evidence: json.RawMessage(bad)}); err == nil || !strings.Contains(err.Error(), "evidence") {
			t.Errorf("evidence %s: got %v, want an evidence error", bad, err)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add("decision", "portpatrol", `{"a":1}`, "why")
	f.Add("ban", "x\x00y", `[1, 2.0, "\u00e9"]`, "<&>")
	f.Fuzz(func(t *testing.T, kind, actor, evidence, reason string) {
		r := Record{Kind: kind, Actor: actor, Reasons: []string{reason}}
		if evidence != "" {
			r.Evidence = json.RawMessage(evidence)
		}
		c, err := Canonical(r)
		if err != nil {
			return
		}
		if _, canonical, err := parseRecord(c); err != nil || !canonical {
			t.Fatalf("canonical %s does not parse back to itself: %v, %v", c, canonical, err)
		}
	})
}

type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time { c.t = c.t.Add(time.Second); return c.t }

func newMemLog(t *testing.T, m *memChain) *Log {
	t.Helper()
	clk := &stepClock{t: time.Date(2031, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))}
	l, err := New(Config{Store: m, Now: clk.now, PageSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAppend(t *testing.T) {
	ctx := t.Context()
	m := &memChain{}
	l := newMemLog(t, m)
	if h := l.Head(); h.Seq != 0 || h.String() != "0 (empty)" {
		t.Errorf("head of a new Log: %v", h)
	}
	e1, err := l.Append(ctx, Record{Kind: KindDecision, Actor: "portpatrol", Reasons: []string{"no playbook matches"}})
	if err != nil {
		t.Fatal(err)
	}
	want1 := Hash(1, e1.Time.UnixNano(), []byte(`{"kind":"decision","actor":"portpatrol","reasons":["no playbook matches"]}`), "")
	if e1.Seq != 1 || e1.Prev != "" || e1.Hash != want1 || e1.Time.Location() != time.UTC {
		t.Errorf("entry 1: %+v, want seq 1, no prev, hash %s, time in UTC", e1, want1)
	}
	e2, err := l.Append(ctx, Record{Kind: KindApproval, Actor: "alice", Evidence: json.RawMessage(`{"b":1,"a":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if e2.Seq != 2 || e2.Prev != e1.Hash || string(e2.Record.Evidence) != `{"a":2,"b":1}` {
		t.Errorf("entry 2: %+v, want seq 2 linked to 1 with canonical evidence", e2)
	}
	if h := l.Head(); h.Seq != 2 || h.Hash != e2.Hash || h.String() != "2 "+e2.Hash {
		t.Errorf("head: %v, want 2 %s", h, e2.Hash)
	}
	if _, err := l.Append(ctx, Record{Actor: "x"}); err == nil {
		t.Error("a record without a kind was appended")
	}
	if _, err := l.Append(ctx, Record{Kind: KindBan, Evidence: json.RawMessage(`{`)}); err == nil {
		t.Error("a record with broken evidence was appended")
	}
	if _, err := l.Append(ctx, Record{Kind: KindBan, Reasons: []string{strings.Repeat("x", MaxRecord)}}); err == nil {
		t.Error("a record over MaxRecord was appended")
	}
	// Another writer appends behind this Log's back: the next Append re-reads the head.
	other := newMemLog(t, m)
	e3, err := other.Append(ctx, Record{Kind: KindExecution, Actor: "portpatrol"})
	if err != nil || e3.Seq != 3 {
		t.Fatalf("append by another Log: %+v, %v", e3, err)
	}
	e4, err := l.Append(ctx, Record{Kind: KindVerification, Actor: "portpatrol"})
	if err != nil || e4.Seq != 4 || e4.Prev != e3.Hash {
		t.Fatalf("append after another Log: %+v, %v; want seq 4 linked to 3", e4, err)
	}
	if h, err := other.Refresh(ctx); err != nil || h.Seq != 4 {
		t.Errorf("refresh: %v, %v; want 4", h, err)
	}
	// A clock stepped back stamps the predecessor's time.
	back := &Log{store: m, now: func() time.Time { return time.Unix(0, 0) }, pageSize: 10}
	e5, err := back.Append(ctx, Record{Kind: KindControl, Actor: "portpatrol"})
	if err != nil || !e5.Time.Equal(e4.Time) {
		t.Errorf("append with a clock behind the chain: %v, %v; want the time of entry 4 (%v)", e5.Time, err, e4.Time)
	}
	if rep, err := l.Verify(ctx); err != nil || !rep.Intact() || rep.Entries != 5 || rep.Head.Hash != e5.Hash {
		t.Errorf("verify: %+v, %v; want intact with 5 entries", rep, err)
	}
}

type failingStore struct{ memChain }

func (f *failingStore) AuditEntries(context.Context, int64, int) ([]store.AuditRow, error) {
	return nil, errors.New("disk on fire")
}

func TestVerifyReadError(t *testing.T) {
	if _, err := Verify(t.Context(), &failingStore{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("got %v, want the store's error", err)
	}
}

// TestVerifyCases tampers with an in-memory chain of 12 entries, read 3 at a time, so
// that problems fall on page boundaries too.
func TestVerifyCases(t *testing.T) {
	build := func(t *testing.T) (*memChain, []store.AuditRow) {
		m := &memChain{}
		l := newMemLog(t, m)
		for i := range 12 {
			if _, err := l.Append(t.Context(), Record{Kind: KindDecision, Actor: "portpatrol", DecisionID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		return m, append([]store.AuditRow(nil), m.rows...)
	}
	rehash := func(r store.AuditRow) store.AuditRow {
		r.Hash = Hash(r.Seq, r.TimeNs, []byte(r.Record), r.Prev)
		return r
	}
	tests := []struct {
		name   string
		tamper func(rows []store.AuditRow) []store.AuditRow
		pin    int64
		seq    int64
		what   Tampering
	}{
		{"edit", func(rows []store.AuditRow) []store.AuditRow {
			rows[5].Record = strings.Replace(rows[5].Record, "portpatrol", "mallory", 1)
			return rows
		}, 0, 6, Edited},
		{"edit the hash", func(rows []store.AuditRow) []store.AuditRow { rows[5].Hash = rows[6].Hash; return rows }, 0, 6, Edited},
		{"rewrite and rehash", func(rows []store.AuditRow) []store.AuditRow {
			rows[2].Record = strings.Replace(rows[2].Record, "portpatrol", "mallory", 1)
			rows[2] = rehash(rows[2])
			return rows
		}, 0, 3, Edited},
		{"non-canonical record, rehashed", func(rows []store.AuditRow) []store.AuditRow {
			rows[11].Record = strings.Replace(rows[11].Record, `"kind"`, ` "kind"`, 1)
			rows[11] = rehash(rows[11])
			return rows
		}, 0, 12, Edited},
		{"not a record, rehashed", func(rows []store.AuditRow) []store.AuditRow {
			rows[11].Record = `[]`
			rows[11] = rehash(rows[11])
			return rows
		}, 0, 12, Edited},
		{"date going back, rehashed", func(rows []store.AuditRow) []store.AuditRow {
			rows[11].TimeNs = rows[10].TimeNs - 1
			rows[11] = rehash(rows[11])
			return rows
		}, 0, 12, Reordered},
		{"first entry with a prev", func(rows []store.AuditRow) []store.AuditRow {
			rows[0].Prev = rows[1].Hash
			rows[0] = rehash(rows[0])
			return rows
		}, 0, 1, Inserted},
		{"delete on a page boundary", func(rows []store.AuditRow) []store.AuditRow { return append(rows[:3], rows[4:]...) }, 0, 4, Deleted},
		{"delete the first two", func(rows []store.AuditRow) []store.AuditRow { return rows[2:] }, 0, 1, Deleted},
		{"delete the tail, pinned", func(rows []store.AuditRow) []store.AuditRow { return rows[:9] }, 12, 10, Deleted},
		{"swap across pages", func(rows []store.AuditRow) []store.AuditRow {
			rows[1], rows[10] = rows[10], rows[1]
			rows[1].Seq, rows[10].Seq = 2, 11
			return rows
		}, 0, 2, Reordered},
		{"swap neighbours across a page boundary", func(rows []store.AuditRow) []store.AuditRow {
			rows[2], rows[3] = rows[3], rows[2]
			rows[2].Seq, rows[3].Seq = 3, 4
			return rows
		}, 0, 3, Reordered},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, rows := build(t)
			pin := Head{}
			if tt.pin > 0 {
				pin = headOf(rows[tt.pin-1])
			}
			m.rows = tt.tamper(rows)
			rep, err := Verifier{PageSize: 3, Pin: pin}.Verify(t.Context(), m)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Intact() || rep.Problem.Seq != tt.seq || rep.Problem.What != tt.what {
				t.Fatalf("got %+v (%v), want entry %d %s", rep, rep.Problem, tt.seq, tt.what)
			}
			if rep.Entries != tt.seq-1 {
				t.Errorf("entries before the problem: got %d, want %d", rep.Entries, tt.seq-1)
			}
			t.Log(rep.Problem)
		})
	}
}

func TestVerifyEmpty(t *testing.T) {
	rep, err := Verify(t.Context(), &memChain{})
	if err != nil || !rep.Intact() || rep.Entries != 0 || rep.Head.Seq != 0 {
		t.Errorf("empty chain: %+v, %v; want intact and empty", rep, err)
	}
	rep, err = Verifier{Pin: Head{Seq: 3, Hash: "ab"}}.Verify(t.Context(), &memChain{})
	if err != nil || rep.Intact() || rep.Problem.Seq != 1 || rep.Problem.What != Deleted {
		t.Errorf("empty chain with a pin: %+v, %v; want entry 1 deleted", rep, err)
	}
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestExportVerifies: an export read back through ExportReader, a few lines a page,
// verifies like the store it came from, and an edited line is found.
func TestExportVerifies(t *testing.T) {
	m := &memChain{}
	l := newMemLog(t, m)
	for i := range 10 {
		if _, err := l.Append(t.Context(), Record{Kind: KindRollback, Actor: "portpatrol", Step: fmt.Sprint(i),
			Evidence: json.RawMessage(`{"rule":"<dnat>","n":1.0}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := l.Export(t.Context(), &buf); err != nil {
		t.Fatal(err)
	}
	rep, err := Verifier{PageSize: 4, Pin: l.Head()}.Verify(t.Context(), NewExportReader(bytes.NewReader(buf.Bytes())))
	if err != nil || !rep.Intact() || rep.Entries != 10 {
		t.Fatalf("export verified: %+v, %v; want intact with 10", rep, err)
	}
	edited := strings.Replace(buf.String(), `"step":"6"`, `"step":"7"`, 1)
	rep, err = Verifier{PageSize: 4}.Verify(t.Context(), NewExportReader(strings.NewReader(edited)))
	if err != nil || rep.Intact() || rep.Problem.Seq != 7 || rep.Problem.What != Edited {
		t.Errorf("edited export: %+v, %v; want entry 7 edited", rep, err)
	}
	if _, err := Verify(t.Context(), NewExportReader(strings.NewReader("{\n"))); err == nil || !strings.Contains(err.Error(), "export line 1") {
		t.Errorf("broken export: got %v, want an error naming line 1", err)
	}
}
