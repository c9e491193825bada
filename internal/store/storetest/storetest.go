// Package storetest is the test suite every store.Backend must pass. A backend's
// tests call Run with a function that makes a fresh, empty database.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// DB is one empty database made for a test. The zero value is not usable.
type DB struct {
	// Open opens the database; every call opens the same data anew, bringing its
	// schema up to date. The suite closes what it opens.
	Open func(ctx context.Context) (store.Backend, error)
	// SetSchemaVersion records version v as applied, as a newer portpatrol would.
	SetSchemaVersion func(t *testing.T, v int)
}

// Run runs the suite. newDB makes a fresh database for each subtest and cleans it up
// with t.Cleanup.
func Run(t *testing.T, newDB func(t *testing.T) DB) {
	tests := []struct {
		name string
		f    func(t *testing.T, db DB)
	}{
		{"Migrations", testMigrations},
		{"ResultsRoundTrip", testResultsRoundTrip},
		{"BatchWriter", testBatchWriter},
		{"Downsampling", testDownsampling},
		{"HistoryTail", testHistoryTail},
		{"Retention", testRetention},
		{"States", testStates},
		{"Tokens", testTokens},
		{"Learned", testLearned},
		{"StatusNotes", testStatusNotes},
		{"AnomalyStates", testAnomalyStates},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newDB(t)) })
	}
}

func open(t *testing.T, db DB) store.Backend {
	t.Helper()
	b, err := db.Open(t.Context())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// base is a fixed, minute-aligned instant the tests write around.
var base = time.Date(2031, 3, 4, 5, 0, 0, 0, time.UTC)

var timeEqual = cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })

func testMigrations(t *testing.T, db DB) {
	ctx := t.Context()
	b, err := db.Open(ctx)
	if err != nil {
		t.Fatalf("open fresh: %v", err)
	}
	v, err := b.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("fresh schema version: got %d, %v; want >= 1", v, err)
	}
	if err := b.PutLearned(ctx, store.Learned{Namespace: "n", Key: "k", Value: json.RawMessage(`[1]`)}); err != nil {
		t.Fatal(err)
	}
	b.Close()

	b, err = db.Open(ctx)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v2, err := b.SchemaVersion(ctx); err != nil || v2 != v {
		t.Errorf("reopened schema version: got %d, %v; want %d", v2, err, v)
	}
	if l, err := b.GetLearned(ctx, "n", "k"); err != nil || string(l.Value) != `[1]` {
		t.Errorf("after reopen: got %s, %v; want [1]", l.Value, err)
	}
	b.Close()

	db.SetSchemaVersion(t, v+2)
	b, err = db.Open(ctx)
	if err == nil {
		b.Close()
		t.Fatalf("open of schema %d by a binary knowing %d succeeded, want an error", v+2, v)
	}
	var tooNew *store.SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Have != v+2 || tooNew.Known != v {
		t.Fatalf("open newer schema: got %v, want SchemaTooNewError{%d, %d}", err, v+2, v)
	}
	want := fmt.Sprintf("database schema is version %d, this portpatrol knows up to %d: upgrade portpatrol", v+2, v)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error: got %q, want it to contain %q", err, want)
	}
}

func testResultsRoundTrip(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	full := patrol.Result{Target: "https://example.test:443/health", Start: base.Add(1500 * time.Millisecond),
		Duration: 42 * time.Millisecond, Class: patrol.ClassSlow, RemoteAddr: "192.0.2.1:443",
		Phases:   []patrol.Phase{{Name: "connect", Duration: 3 * time.Millisecond}, {Name: "tls", Duration: 9 * time.Millisecond}},
		TLS:      &patrol.TLSInfo{Version: "TLS 1.3", ServerName: "example.test", EarliestExpiry: base.AddDate(0, 2, 0), DaysLeft: 61, Verified: true},
		HTTP:     &patrol.HTTPInfo{Status: 200, Proto: "HTTP/1.1", ContentLength: -1, BodyLength: 12},
		Capacity: &patrol.Capacity{What: "clients", Used: 90, Limit: 100},
		Details:  map[string]string{"server": "nginx"}}
	bare := patrol.Result{Target: full.Target, Start: base.Add(2 * time.Second), Duration: time.Second,
		Class: patrol.ClassTimeout, Error: "no answer within 1s"}
	other := patrol.Result{Target: "tcp://127.0.0.1:22", Start: base.Add(3 * time.Second), Class: patrol.ClassOK}
	if err := b.WriteResults(ctx, []patrol.Result{full, bare, other}); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := b.RecentResults(ctx, full.Target, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]patrol.Result{bare, full}, got, timeEqual); diff != "" {
		t.Errorf("recent results (-want +got):\n%s", diff)
	}
	if got, _ := b.RecentResults(ctx, full.Target, 1); len(got) != 1 || !got[0].Start.Equal(bare.Start) {
		t.Errorf("recent 1: got %v, want the newest (%v)", got, bare.Start)
	}
	if got, err := b.RecentResults(ctx, "tcp://never.test:1", 5); err != nil || len(got) != 0 {
		t.Errorf("recent of unknown target: got %v, %v; want none", got, err)
	}
}

func count(t *testing.T, b store.HistoryReader, target string, from, to time.Time) int64 {
	t.Helper()
	s, err := b.History(t.Context(), patrol.HistoryQuery{Target: target, From: from, To: to,
		Resolution: patrol.ResolutionRaw, Step: to.Sub(from)})
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	var n int64
	for _, p := range s.Points {
		n += p.Count
	}
	return n
}

type fakeTicker chan time.Time

func (f fakeTicker) new(time.Duration) (<-chan time.Time, func()) { return f, func() {} }

func testBatchWriter(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	tick := make(fakeTicker)
	w := store.NewBatchWriter(b, store.BatchConfig{Size: 1000, NewTicker: tick.new})
	const target = "tcp://10.0.0.1:80"
	for i := range 2500 {
		if err := w.Write(ctx, patrol.Result{Target: target, Start: base.Add(time.Duration(i) * time.Millisecond),
			Duration: time.Millisecond, Class: patrol.ClassOK}); err != nil {
			t.Fatal(err)
		}
	}
	// Two full batches are written without a tick; the rest waits for one.
	deadline := time.Now().Add(10 * time.Second)
	for w.Stats().Written < 2000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := w.Stats(); st.Written != 2000 || st.Batches != 2 {
		t.Fatalf("after 2500 writes: got %+v, want 2000 written in 2 batches", st)
	}
	tick <- time.Now()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := count(t, b, target, base, base.Add(time.Hour)); n != 2500 {
		t.Errorf("stored after tick and flush: got %d, want 2500", n)
	}
	for i := range 10 {
		w.Write(ctx, patrol.Result{Target: target, Start: base.Add(time.Hour + time.Duration(i)), Class: patrol.ClassOK})
	}
	if err := w.Close(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if n := count(t, b, target, base, base.Add(2*time.Hour)); n != 2510 {
		t.Errorf("stored after close: got %d, want 2510", n)
	}
	if st := w.Stats(); st.Accepted != 2510 || st.Written != 2510 || st.Dropped != 0 || st.Failed != 0 {
		t.Errorf("stats: got %+v, want 2510 accepted and written", st)
	}
	if err := w.Write(ctx, patrol.Result{Target: target}); !errors.Is(err, store.ErrClosed) {
		t.Errorf("write after close: got %v, want ErrClosed", err)
	}
}

// genResults makes n results per target spread over span from start, with durations
// from a seeded generator and one failure in seven.
func genResults(targets []string, start time.Time, span time.Duration, n int, seed uint64) []patrol.Result {
	rng := rand.New(rand.NewPCG(seed, 1))
	var out []patrol.Result
	for _, tg := range targets {
		for i := range n {
			r := patrol.Result{Target: tg, Start: start.Add(span * time.Duration(i) / time.Duration(n)),
				Duration: time.Duration(1+rng.IntN(500)) * time.Millisecond, Class: patrol.ClassOK}
			if rng.IntN(7) == 0 {
				r.Class, r.Error = patrol.ClassRefused, "connection refused"
			}
			out = append(out, r)
		}
	}
	return out
}

// expected computes points at step from results of one target, as the store should.
func expected(results []patrol.Result, target string, step time.Duration) []patrol.Point {
	var s []store.Sample
	for _, r := range results {
		if r.Target == target {
			s = append(s, store.Sample{Start: r.Start, Duration: r.Duration, Up: r.Up()})
		}
	}
	slices.SortFunc(s, func(a, b store.Sample) int { return a.Start.Compare(b.Start) })
	return store.BucketSamples(s, step)
}

func writeAll(t *testing.T, b store.ResultWriter, results []patrol.Result) {
	t.Helper()
	for c := range slices.Chunk(results, 1000) {
		if err := b.WriteResults(t.Context(), c); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
}

func testDownsampling(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	targets := []string{"tcp://10.0.0.1:80", "redis://10.0.0.2:6379"}
	span := 3 * time.Hour
	results := genResults(targets, base, span, 3*3600/5, 7) // one every 5s
	writeAll(t, b, results)
	end := base.Add(span)
	st, err := b.Compact(ctx, end.Add(store.DefaultRollupDelay))
	if err != nil {
		t.Fatalf("compact: %v", err)
	}
	if st.MinuteRollups != int64(len(targets))*180 || st.HourRollups != int64(len(targets))*3 {
		t.Errorf("compact: got %+v, want %d minute and %d hour rollups", st, len(targets)*180, len(targets)*3)
	}
	if !st.RolledUntil.Equal(end) {
		t.Errorf("rolled until: got %v, want %v", st.RolledUntil, end)
	}
	// A second run finds nothing new.
	if st, err := b.Compact(ctx, end.Add(store.DefaultRollupDelay)); err != nil || st.MinuteRollups != 0 || st.HourRollups != 0 {
		t.Errorf("second compact: got %+v, %v; want nothing rolled", st, err)
	}
	ignoreUnkept := cmpopts.IgnoreFields(patrol.Point{}, "P50", "P99")
	for _, tg := range targets {
		raw, err := b.History(ctx, patrol.HistoryQuery{Target: tg, From: base, To: end, Resolution: patrol.ResolutionRaw, Step: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(expected(results, tg, 10*time.Minute), raw.Points, timeEqual); diff != "" || raw.Quantiles != patrol.QuantilesExact {
			t.Errorf("%s raw series (%s) (-want +got):\n%s", tg, raw.Quantiles, diff)
		}
		minute, err := b.History(ctx, patrol.HistoryQuery{Target: tg, From: base, To: end, Resolution: patrol.ResolutionMinute})
		if err != nil {
			t.Fatal(err)
		}
		wantMin := expected(results, tg, time.Minute)
		if diff := cmp.Diff(wantMin, minute.Points, timeEqual, ignoreUnkept); diff != "" || minute.Quantiles != patrol.QuantilesP95 {
			t.Errorf("%s minute series (%s) (-want +got):\n%s", tg, minute.Quantiles, diff)
		}
		for _, p := range minute.Points {
			if p.P50 != 0 || p.P99 != 0 {
				t.Fatalf("minute point has P50 %v, P99 %v; want them absent", p.P50, p.P99)
			}
		}
		hour, err := b.History(ctx, patrol.HistoryQuery{Target: tg, From: base, To: end, Resolution: patrol.ResolutionHour})
		if err != nil {
			t.Fatal(err)
		}
		wantHour := expected(results, tg, time.Hour)
		for i := range wantHour {
			var bound time.Duration
			for _, m := range wantMin[i*60 : i*60+60] {
				bound = max(bound, m.P95)
			}
			if wantHour[i].P95 > bound {
				t.Fatalf("hour %d: exact p95 %v above the minute bound %v", i, wantHour[i].P95, bound)
			}
			wantHour[i].P95 = bound
		}
		if diff := cmp.Diff(wantHour, hour.Points, timeEqual, ignoreUnkept); diff != "" || hour.Quantiles != patrol.QuantilesP95UpperBound {
			t.Errorf("%s hour series (%s) (-want +got):\n%s", tg, hour.Quantiles, diff)
		}
	}
}

// testHistoryTail checks that minute series include the minutes not rolled up yet.
func testHistoryTail(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	const tg = "tcp://10.0.0.9:443"
	results := genResults([]string{tg}, base, 30*time.Minute, 360, 3)
	writeAll(t, b, results)
	if _, err := b.Compact(ctx, base.Add(20*time.Minute+store.DefaultRollupDelay)); err != nil {
		t.Fatal(err)
	}
	s, err := b.History(ctx, patrol.HistoryQuery{Target: tg, From: base, To: base.Add(30 * time.Minute), Resolution: patrol.ResolutionMinute})
	if err != nil {
		t.Fatal(err)
	}
	want := expected(results, tg, time.Minute)
	if diff := cmp.Diff(want, s.Points, timeEqual, cmpopts.IgnoreFields(patrol.Point{}, "P50", "P99")); diff != "" {
		t.Errorf("minute series with a raw tail (-want +got):\n%s", diff)
	}
}

func testRetention(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	const tg = "tcp://10.0.0.3:25"
	results := genResults([]string{tg}, base, 2*time.Hour, 240, 5)
	writeAll(t, b, results)
	end := base.Add(2 * time.Hour)
	if _, err := b.Compact(ctx, end.Add(store.DefaultRollupDelay)); err != nil {
		t.Fatal(err)
	}
	// Past the raw retention, raw rows go and rollups stay.
	st, err := b.Compact(ctx, end.Add(store.DefaultRawRetention))
	if err != nil {
		t.Fatal(err)
	}
	if st.RawDeleted != int64(len(results)) || st.MinuteDeleted != 0 || st.HourDeleted != 0 {
		t.Errorf("compact past raw retention: got %+v, want %d raw deleted and nothing else", st, len(results))
	}
	if got, _ := b.RecentResults(ctx, tg, 5); len(got) != 0 {
		t.Errorf("raw results after retention: got %d, want 0", len(got))
	}
	s, err := b.History(ctx, patrol.HistoryQuery{Target: tg, From: base, To: end, Resolution: patrol.ResolutionHour})
	if err != nil || len(s.Points) != 2 || s.Points[0].Count+s.Points[1].Count != int64(len(results)) {
		t.Errorf("hour rollups after raw retention: got %+v, %v; want 2 points of %d results", s.Points, err, len(results))
	}
	st, err = b.Compact(ctx, end.Add(store.DefaultRollupRetention+time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.MinuteDeleted != 120 || st.HourDeleted != 2 {
		t.Errorf("compact past rollup retention: got %+v, want 120 minute and 2 hour rollups deleted", st)
	}
	for _, res := range []patrol.Resolution{patrol.ResolutionMinute, patrol.ResolutionHour} {
		s, err := b.History(ctx, patrol.HistoryQuery{Target: tg, From: base, To: end, Resolution: res})
		if err != nil || len(s.Points) != 0 {
			t.Errorf("%s history after retention: got %d points, %v; want none", res, len(s.Points), err)
		}
	}
}

func testStates(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	states := []patrol.TargetState{
		{Target: "tcp://b:1", Status: patrol.StatusDown, Since: base, Labels: map[string]string{"team": "db", "env": "prod"},
			Last:      patrol.ResultSummary{Time: base.Add(time.Second), Class: patrol.ClassRefused, Duration: time.Millisecond, Error: "refused"},
			UpdatedAt: base.Add(time.Second)},
		{Target: "tcp://a:1", Status: patrol.StatusUp, Flapping: true, Since: base, UpdatedAt: base},
		{Target: "tcp://c:1", Status: patrol.StatusUnknown, UpdatedAt: base},
	}
	if err := b.PutStates(ctx, states); err != nil {
		t.Fatal(err)
	}
	got, err := b.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []patrol.TargetState{states[1], states[0], states[2]}
	if diff := cmp.Diff(want, got, timeEqual); diff != "" {
		t.Errorf("states (-want +got):\n%s", diff)
	}
	states[1].Status, states[1].Flapping = patrol.StatusDown, false
	if err := b.PutStates(ctx, states[1:2]); err != nil {
		t.Fatal(err)
	}
	if s, err := b.State(ctx, "tcp://a:1"); err != nil || s.Status != patrol.StatusDown || s.Flapping {
		t.Errorf("updated state: got %+v, %v; want down, not flapping", s, err)
	}
	if err := b.DeleteStates(ctx, []string{"tcp://a:1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.State(ctx, "tcp://a:1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted state: got %v, want ErrNotFound", err)
	}
	if err := b.PutStates(ctx, []patrol.TargetState{{Target: "x", Status: "sideways"}}); err == nil {
		t.Error("invalid status stored, want an error")
	}
}

func testTokens(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	tok, secret, err := store.NewToken("ci", store.RoleOperator, "admin@example", base)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	sameID, _, _ := store.NewToken("ci again", store.RoleViewer, "admin@example", base)
	sameID.ID = tok.ID
	sameSecret, _, _ := store.NewToken("ci copy", store.RoleViewer, "admin@example", base)
	sameSecret.Hash = tok.Hash
	for _, tt := range []struct {
		name string
		tok  store.Token
	}{{"same token", tok}, {"same id", sameID}, {"same secret", sameSecret}} {
		if err := b.CreateToken(ctx, tt.tok); !errors.Is(err, store.ErrExists) {
			t.Errorf("create %s: got %v, want ErrExists", tt.name, err)
		}
	}
	got, err := b.LookupToken(ctx, store.HashToken(secret))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tok, got, timeEqual); diff != "" {
		t.Errorf("looked up token (-want +got):\n%s", diff)
	}
	if _, err := b.LookupToken(ctx, store.HashToken(secret+"x")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lookup of a wrong secret: got %v, want ErrNotFound", err)
	}
	used := base.Add(time.Hour)
	if err := b.TouchToken(ctx, tok.ID, used); err != nil {
		t.Fatal(err)
	}
	if err := b.TouchToken(ctx, tok.ID, base); err != nil { // older: ignored
		t.Fatal(err)
	}
	admin, _, _ := store.NewToken("root", store.RoleAdmin, "install", base.Add(time.Minute))
	if err := b.CreateToken(ctx, admin); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeToken(ctx, tok.ID, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := b.RevokeToken(ctx, tok.ID, base.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err = b.LookupToken(ctx, store.HashToken(secret))
	if !errors.Is(err, store.ErrRevoked) || got.ID != tok.ID {
		t.Errorf("lookup of a revoked token: got %s, %v; want it with ErrRevoked", got.ID, err)
	}
	list, err := b.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok.LastUsed, tok.RevokedAt = used, base.Add(2*time.Hour)
	if diff := cmp.Diff([]store.Token{tok, admin}, list, timeEqual); diff != "" {
		t.Errorf("tokens (-want +got):\n%s", diff)
	}
	if err := b.RevokeToken(ctx, "nope", base); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown: got %v, want ErrNotFound", err)
	}
	bad := admin
	bad.ID, bad.Role = "other", "root"
	if err := b.CreateToken(ctx, bad); err == nil || errors.Is(err, store.ErrExists) {
		t.Errorf("token with an invalid role: got %v, want an error other than ErrExists", err)
	}
}

func testLearned(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	put := func(ns, key, value string) {
		t.Helper()
		if err := b.PutLearned(ctx, store.Learned{Namespace: ns, Key: key, Value: json.RawMessage(value)}); err != nil {
			t.Fatal(err)
		}
	}
	put("hostwatch", "listeners", `["tcp:0.0.0.0:22"]`)
	put("hostwatch", "listeners", `["tcp:0.0.0.0:22","tcp:127.0.0.1:6379"]`)
	put("hostwatch", "a-first", `{}`)
	put("baseline", "x", `1`)
	l, err := b.GetLearned(ctx, "hostwatch", "listeners")
	if err != nil || string(l.Value) != `["tcp:0.0.0.0:22","tcp:127.0.0.1:6379"]` || l.UpdatedAt.IsZero() {
		t.Errorf("get: got %s at %v, %v; want the replaced value", l.Value, l.UpdatedAt, err)
	}
	list, err := b.ListLearned(ctx, "hostwatch")
	if err != nil || len(list) != 2 || list[0].Key != "a-first" || list[1].Key != "listeners" {
		t.Errorf("list: got %+v, %v; want a-first, listeners", list, err)
	}
	if _, err := b.GetLearned(ctx, "hostwatch", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get missing: got %v, want ErrNotFound", err)
	}
	if err := b.PutLearned(ctx, store.Learned{Namespace: "n", Key: "k", Value: json.RawMessage(`{bad`)}); err == nil {
		t.Error("invalid JSON stored, want an error")
	}

	// A batch is written whole, or not at all.
	bs, ok := b.(interface {
		PutLearnedBatch(context.Context, []store.Learned) error
	})
	if !ok {
		return
	}
	var batch []store.Learned
	for i := range 1000 {
		batch = append(batch, store.Learned{Namespace: "batch", Key: fmt.Sprintf("k%04d", i), Value: json.RawMessage(`{"n":1}`)})
	}
	bad := append(slices.Clone(batch), store.Learned{Namespace: "batch", Key: "zz", Value: json.RawMessage(`{bad`)})
	if err := bs.PutLearnedBatch(ctx, bad); err == nil {
		t.Error("batch with invalid JSON stored, want an error")
	}
	if list, _ := b.ListLearned(ctx, "batch"); len(list) != 0 {
		t.Errorf("failed batch: got %d rows stored, want none", len(list))
	}
	batch[7].Value = json.RawMessage(`{"n":2}`)
	if err := bs.PutLearnedBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	list, err = b.ListLearned(ctx, "batch")
	if err != nil || len(list) != 1000 || string(list[7].Value) != `{"n":2}` {
		t.Errorf("batch: got %d rows, %v; want 1000 with k0007 = {\"n\":2}", len(list), err)
	}
}

func testConcurrentWriters(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	const writers, batches, per = 6, 10, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches+writers)
	for w := range writers {
		wg.Go(func() {
			bw := store.NewBatchWriter(b, store.BatchConfig{Size: 64, Interval: time.Millisecond})
			for i := range batches * per {
				// Every writer also touches shared targets, racing on their ids.
				tg := fmt.Sprintf("tcp://10.1.0.%d:80", i%7)
				r := patrol.Result{Target: tg, Start: base.Add(time.Duration(w*batches*per+i) * time.Microsecond),
					Duration: time.Millisecond, Class: patrol.ClassOK}
				if err := bw.Write(ctx, r); err != nil {
					errs <- err
				}
			}
			if err := bw.Close(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Go(func() { // a reader beside the writers
		for range 20 {
			if _, err := b.History(ctx, patrol.HistoryQuery{Target: "tcp://10.1.0.1:80", From: base, To: base.Add(time.Second)}); err != nil {
				errs <- err
			}
			if _, err := b.States(ctx); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var total int64
	for i := range 7 {
		total += count(t, b, fmt.Sprintf("tcp://10.1.0.%d:80", i), base, base.Add(time.Second))
	}
	if total != writers*batches*per {
		t.Errorf("stored: got %d, want %d", total, writers*batches*per)
	}
}
