package hostwatch_test

import (
	"testing"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
)

// TestEventConvertsToFinding keeps Event field for field the alert engine's Finding,
// so that cmd hands events to the engine with a plain conversion. Only this test
// imports alert; the package itself does not.
func TestEventConvertsToFinding(t *testing.T) {
	e := hostwatch.Event{Class: "unreachable", Subject: "tcp://127.0.0.1:6379", Severity: "P0", Active: true}
	f := alert.Finding(e)
	if f.Subject != e.Subject || f.Class != e.Class || !f.Active {
		t.Errorf("got %+v from %+v", f, e)
	}
}
