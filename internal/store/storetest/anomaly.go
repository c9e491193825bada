package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/store"
)

// testAnomalyStates checks the anomaly detector's states: binary states (every byte
// value) round-trip, a put replaces, a bad batch writes nothing, deletes forget, and
// the states survive reopening the database.
func testAnomalyStates(t *testing.T, db DB) {
	ctx := t.Context()
	b := open(t, db)
	if got, err := b.LoadAnomalyStates(ctx); err != nil || len(got) != 0 {
		t.Fatalf("empty store: got %d states, %v; want none", len(got), err)
	}
	blob := func(n int, seed byte) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i) ^ seed
		}
		return p
	}
	states := []store.AnomalyState{
		{Key: "latency tcp://127.0.0.1:6379", State: blob(12709, 0), Last: base},
		{Key: "failures tcp://127.0.0.1:6379", State: blob(12709, 0x5a), Last: base.Add(time.Minute)},
		{Key: "capacity:clients redis://127.0.0.1:6379", State: []byte{0, 0xff, 0}, Last: base.Add(2 * time.Minute)},
	}
	if err := b.PutAnomalyStates(ctx, states); err != nil {
		t.Fatalf("put: %v", err)
	}
	check := func(b store.Backend, want []store.AnomalyState) {
		t.Helper()
		got, err := b.LoadAnomalyStates(ctx)
		if err != nil {
			t.Fatalf("load: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("load: got %d states, want %d", len(got), len(want))
		}
		sorted := slices.SortedFunc(slices.Values(want), func(a, b store.AnomalyState) int { return strings.Compare(a.Key, b.Key) })
		for i, w := range sorted {
			g := got[i]
			if g.Key != w.Key || !bytes.Equal(g.State, w.State) || !g.Last.Equal(w.Last) {
				t.Errorf("state %d: got key %q, %d bytes, last %s; want %q (ordered by key), %d bytes, last %s",
					i, g.Key, len(g.State), g.Last, w.Key, len(w.State), w.Last)
			}
		}
	}
	check(b, states)

	// A put replaces the state of a key and leaves the others.
	states[0].State, states[0].Last = blob(100, 7), base.Add(time.Hour)
	if err := b.PutAnomalyStates(ctx, states[:1]); err != nil {
		t.Fatalf("replace: %v", err)
	}
	check(b, states)

	// A bad batch writes nothing.
	for _, bad := range [][]store.AnomalyState{
		{{Key: "latency new", State: []byte{1}, Last: base}, {Key: "", State: []byte{1}}},
		{{Key: "latency new", State: []byte{1}, Last: base}, {Key: "failures x", State: nil}},
		{{Key: "latency new", State: []byte{1}, Last: base}, {Key: "latency new", State: []byte{2}}},
		{{Key: "latency new", State: make([]byte, store.MaxAnomalyState+1)}},
	} {
		if err := b.PutAnomalyStates(ctx, bad); err == nil {
			t.Errorf("put %d states with a bad one: no error", len(bad))
		}
	}
	check(b, states)

	// Deleting forgets those keys; unknown keys are no error.
	if err := b.DeleteAnomalyStates(ctx, []string{states[1].Key, "latency never-stored"}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	want := []store.AnomalyState{states[0], states[2]}
	check(b, want)

	// They survive a reopen.
	b.Close()
	b2 := open(t, db)
	check(b2, want)

	// Many at once, in one call.
	many := make([]store.AnomalyState, 600)
	for i := range many {
		many[i] = store.AnomalyState{Key: fmt.Sprintf("latency tcp://127.0.0.%d:%d", i%250+1, 1000+i), State: blob(64, byte(i)), Last: base}
	}
	if err := b2.PutAnomalyStates(ctx, many); err != nil {
		t.Fatalf("put %d: %v", len(many), err)
	}
	got, err := b2.LoadAnomalyStates(ctx)
	if err != nil || len(got) != len(many)+len(want) {
		t.Fatalf("load after a put of %d: got %d, %v; want %d", len(many), len(got), err, len(many)+len(want))
	}
	i := slices.IndexFunc(got, func(s store.AnomalyState) bool { return s.Key == many[599].Key })
	if i < 0 {
		t.Fatalf("%s not loaded", many[599].Key)
	}
	if diff := cmp.Diff(blob(64, byte(599%256)), got[i].State); diff != "" {
		t.Errorf("state of %s (-want +got):\n%s", many[599].Key, diff)
	}
}
