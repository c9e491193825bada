package alert_test

import (
	"errors"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// A diagnosis attached while the first notice waits in its group goes out with it,
// survives a restart, and cannot be attached to a resolved alert.
func TestAnnotateReachesTheFirstNoticeAndTheStore(t *testing.T) {
	cfg := chainConfig()
	cfg.Grouping.GroupWait = 30 * time.Second
	h := newHarness(t, cfg)
	h.down("tcp://10.0.0.5:6379", patrol.ClassRefused)
	h.run(time.Second)
	a := h.one(alert.Filter{})
	if a.Severity != patrol.P0 || len(h.sink.take()) != 0 {
		t.Fatalf("got %+v, want a P0 whose notice waits for its group", a)
	}
	if err := h.e.Annotate(a.ID, "nothing listens on TCP port 6379", "2 other targets are on 10.0.0.5 (0 down)"); err != nil {
		t.Fatal(err)
	}
	h.run(40 * time.Second)
	ns := h.sink.take()
	if len(ns) != 1 || len(ns[0].Alerts) != 1 {
		t.Fatalf("got %d notifications, want the first notice: %+v", len(ns), ns)
	}
	got := ns[0].Alerts[0]
	if got.Diagnosis != "nothing listens on TCP port 6379" || got.Impact != "2 other targets are on 10.0.0.5 (0 down)" {
		t.Errorf("got diagnosis %q, impact %q in the notice", got.Diagnosis, got.Impact)
	}

	h.start() // a restart loads what was saved
	if a := h.one(alert.Filter{}); a.Diagnosis == "" || a.Impact == "" {
		t.Errorf("after a restart got diagnosis %q, impact %q, want both kept", a.Diagnosis, a.Impact)
	}

	h.up("tcp://10.0.0.5:6379")
	h.run(time.Second)
	if err := h.e.Annotate(a.ID, "late", ""); !errors.Is(err, alert.ErrResolved) {
		t.Errorf("annotating a resolved alert: got %v, want ErrResolved", err)
	}
	if err := h.e.Annotate("no-such-alert", "x", ""); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("annotating an unknown alert: got %v, want ErrNotFound", err)
	}
}
