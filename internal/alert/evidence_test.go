package alert

import (
	"fmt"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Every target keeps its last results as evidence, so the room kept must be what is
// kept: the last n, oldest first, in a slice of capacity n.
func TestRememberKeepsTheLastNInPlace(t *testing.T) {
	for _, n := range []int{1, 5} {
		var ts targetState
		for i := range 12 {
			ts.remember(patrol.Result{Target: fmt.Sprint(i)}, n)
		}
		if len(ts.evidence) != n || cap(ts.evidence) != n {
			t.Fatalf("n=%d: got len %d cap %d, want %d and %d", n, len(ts.evidence), cap(ts.evidence), n, n)
		}
		for i, r := range ts.evidence {
			if want := fmt.Sprint(12 - n + i); r.Target != want {
				t.Errorf("n=%d: evidence[%d] is result %s, want %s", n, i, r.Target, want)
			}
		}
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
