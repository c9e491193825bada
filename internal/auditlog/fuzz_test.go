package auditlog

import (
	"bytes"
	"testing"

	"github.com/portpatrol/portpatrol/internal/store"
)

// FuzzVerifyOneChange changes one field of one entry of a good chain of 8 to what the
// fuzzer chooses: whatever the change, Verify finds it and names that entry.
func FuzzVerifyOneChange(f *testing.F) {
	f.Add(uint8(3), uint8(0), []byte(`{"kind":"decision","actor":"mallory"}`), int64(0))
	f.Add(uint8(0), uint8(1), []byte(nil), int64(-1))
	f.Add(uint8(7), uint8(2), []byte("00"), int64(0))
	f.Add(uint8(5), uint8(3), []byte(""), int64(0))
	f.Fuzz(func(t *testing.T, at, field uint8, b []byte, delta int64) {
		m := &memChain{}
		l := newMemLog(t, m)
		for range 8 {
			if _, err := l.Append(t.Context(), Record{Kind: KindExecution, Actor: "portpatrol"}); err != nil {
				t.Fatal(err)
			}
		}
		i := int(at % 8)
		orig := m.rows[i]
		r := &m.rows[i]
		switch field % 4 {
		case 0:
			r.Record = string(b)
		case 1:
			r.TimeNs += delta
		case 2:
			r.Prev = string(b)
		case 3:
			r.Hash = string(b)
		}
		if *r == orig {
			return
		}
		rep, err := Verifier{PageSize: 3}.Verify(t.Context(), m)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Intact() || rep.Problem.Seq != orig.Seq {
			t.Fatalf("entry %d changed from %+v to %+v: got %+v (%v), want entry %d named", orig.Seq, orig, *r, rep, rep.Problem, orig.Seq)
		}
	})
}

// FuzzExportReader reads arbitrary bytes as an export: Verify returns a report or an
// error, never panics, and an intact report's head is the last line read.
func FuzzExportReader(f *testing.F) {
	l, err := New(Config{Store: &memChain{}})
	if err != nil {
		f.Fatal(err)
	}
	for range 3 {
		if _, err := l.Append(f.Context(), Record{Kind: KindBan, Actor: "portpatrol", Target: "192.0.2.7"}); err != nil {
			f.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := l.Export(f.Context(), &buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("{}\n{}\n"))
	f.Add([]byte(`{"seq":1,"time":"2031-01-01T00:00:00Z","record":{},"prev":"","hash":""}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Verify(t.Context(), NewExportReader(bytes.NewReader(b)))
		if err == nil && rep.Intact() && rep.Entries != rep.Head.Seq {
			t.Fatalf("intact with %d entries but head %d", rep.Entries, rep.Head.Seq)
		}
	})
}

var (
	_ Pages                 = (*ExportReader)(nil)
	_ store.AuditChainStore = (*memChain)(nil)
)
