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
