package alert

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Every target keeps its last results as evidence: the last n, oldest first, equal
// field by field to the results given, in room for exactly n, with what repeats from
// one result to the next kept once.
func TestEvidenceKeepsTheLastN(t *testing.T) {
	t0 := time.Date(2025, 1, 6, 9, 0, 0, 0, time.FixedZone("CST", 8*3600))
	tls := &patrol.TLSInfo{}
	mk := func(i int) patrol.Result {
		r := patrol.Result{Target: "tcp://db:5432", Start: t0.Add(time.Duration(i) * time.Minute),
			Duration: time.Duration(i) * time.Millisecond, Class: patrol.ClassRefused,
			Error: fmt.Sprint("connect 127.0.0.1:5432: connection refused"), RemoteAddr: "127.0.0.1:5432",
			Phases: []patrol.Phase{{Name: "connect", Duration: time.Duration(i) * time.Microsecond}}}
		switch i % 4 {
		case 1:
			r.Class, r.Error, r.TLS = patrol.ClassOK, "", tls
		case 2:
			r.Phases = append(r.Phases, patrol.Phase{Name: "tls", Duration: time.Millisecond})
			r.Details = map[string]string{"version": fmt.Sprint(i)}
		}
		return r
	}
	for _, n := range []int{1, 5} {
		var ev evidence
		var all []patrol.Result
		for i := range 13 {
			r := mk(i)
			all = append(all, r)
			ev.add(&r, n)
			got := ev.results()
			want := all[max(0, len(all)-n):]
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("n=%d after %d results (-want +got):\n%s", n, i+1, diff)
			}
			if loc := got[len(got)-1].Start.Location(); loc != t0.Location() {
				t.Fatalf("n=%d: start in %v, want %v", n, loc, t0.Location())
			}
		}
		if cap(ev.ring) != n {
			t.Errorf("n=%d: got room for %d", n, cap(ev.ring))
		}
	}
	// Results that differ only in start, duration, class and the lone phase's
	// duration share the rest.
	var ev evidence
	for i := range 5 {
		r := mk(4 * i)
		ev.add(&r, 5)
	}
	for i := 1; i < 5; i++ {
		if ev.ring[i].rest != ev.ring[0].rest {
			t.Errorf("result %d keeps a copy of what result 0 holds", i)
		}
	}
	// A smaller number keeps the newest.
	r := mk(100)
	ev.add(&r, 2)
	if got := ev.results(); len(got) != 2 || got[0].Start != mk(16).Start || got[1].Start != r.Start {
		t.Errorf("after shrinking to 2: got %v", got)
	}
}

// Every target keeps at least one evidRest, so its size is memory per target: with
// TLS, HTTP, capacity, details and the phase list inline it was 160 bytes.
func TestEvidRestSize(t *testing.T) {
	if got, limit := unsafe.Sizeof(evidRest{}), uintptr(112); got > limit {
		t.Errorf("evidRest: got %d bytes, want at most %d", got, limit)
	}
}

// The anomaly rule reads only the samples of its baseline: a target probed every
// minute for five hours keeps an hour of samples, not max_samples, oldest first, and
// never more than max.
func TestAddSampleKeepsTheBaselineOnly(t *testing.T) {
	const minute = int64(60e9)
	for _, tt := range []struct {
		name     string
		baseline int64
		max      int
		want     int
	}{
		{"an hour at 1m", 60 * minute, 256, 61},
		{"capped by max", 60 * minute, 20, 20},
	} {
		var ts targetState
		for i := range int64(300) {
			at := i * minute
			ts.addSample(sample{at: at, us: i}, at-tt.baseline, tt.max)
		}
		if got := len(ts.samples); got != tt.want {
			t.Errorf("%s: got %d samples, want %d", tt.name, got, tt.want)
		}
		if cap(ts.samples) > 2*tt.want {
			t.Errorf("%s: got capacity %d for %d samples", tt.name, cap(ts.samples), tt.want)
		}
		for i, s := range ts.samples {
			if want := int64(300 - len(ts.samples) + i); s.us != want {
				t.Fatalf("%s: samples[%d] is sample %d, want %d (newest last)", tt.name, i, s.us, want)
			}
		}
	}
}
