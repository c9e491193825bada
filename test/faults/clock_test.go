package faults_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// captureSink keeps what the alert engine sends.
type captureSink struct {
	mu sync.Mutex
	ns []patrol.Notification
}

func (s *captureSink) Enqueue(_ context.Context, ns []patrol.Notification) error {
	s.mu.Lock()
	s.ns = append(s.ns, ns...)
	s.mu.Unlock()
	return nil
}

// take returns the notifications about target since the last take, by kind.
func (s *captureSink) take(target string) []patrol.NotificationKind {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []patrol.NotificationKind
	keep := s.ns[:0]
	for _, n := range s.ns {
		about := false
		for _, a := range n.Alerts {
			about = about || a.Target == target
		}
		if about {
			out = append(out, n.Kind)
		} else {
			keep = append(keep, n)
		}
	}
	s.ns = keep
	return out
}

// TestWallClockSteps drives the alert engine's clock back one hour and then forward
// one day, as an NTP step would: nothing fires, reminds or expires early while the
// clock is behind; a day later the reminder comes once (a rate, not a catch-up flood),
// a silence and a maintenance window that ended meanwhile let their alerts through
// once, and no alert resolves by itself.
func TestWallClockSteps(t *testing.T) {
	cfg, err := config.Parse([]byte(`alerting:
  repeat_interval: 1h
  grouping: {group_by: ["..."], group_wait: -1s, group_interval: -1s}
  maintenance:
    - {name: upgrade, start: "2026-03-01T12:00:00Z", end: "2026-03-01T14:00:00Z", matchers: ["target=tcp://10.0.0.3:80"]}
notify:
  receivers: [{name: default, type: webhook, url: "http://127.0.0.1:9/"}]
`), filepath.Join(t.TempDir(), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	step := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	sink := &captureSink{}
	ctx := context.Background()
	e, err := alert.New(ctx, cfg.Alerting, alert.Deps{Sink: sink, Store: alert.NewMemStore(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	down := func(target string) {
		t.Helper()
		sig := alert.Signal{Target: target, Status: patrol.StatusDown, At: clock(),
			Result: patrol.Result{Target: target, Class: patrol.ClassRefused, Error: "connection refused", Start: clock()}}
		if err := e.Observe(ctx, sig); err != nil {
			t.Fatal(err)
		}
	}
	tick := func() {
		t.Helper()
		if err := e.Tick(ctx, clock()); err != nil {
			t.Fatal(err)
		}
	}
	const loud, quiet, maint = "tcp://10.0.0.1:5432", "tcp://10.0.0.2:6379", "tcp://10.0.0.3:80"
	m, err := patrol.ParseMatchers([]string{"target=" + quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.CreateSilence(ctx, patrol.Silence{Matchers: m, Author: "ops", Comment: "migration",
		StartsAt: clock(), EndsAt: clock().Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	down(loud)
	down(quiet)
	down(maint)
	tick()
	if got := sink.take(maint); len(got) != 0 {
		t.Fatalf("an alert in a maintenance window sent %v", got)
	}
	if got := sink.take(loud); len(got) != 1 || got[0] != patrol.NotifyFiring {
		t.Fatalf("at the start: %v, want one firing", got)
	}
	if got := sink.take(quiet); len(got) != 0 {
		t.Fatalf("a silenced alert sent %v", got)
	}

	// Back one hour: the targets stay down; for an hour of wall time nothing is due.
	step(-time.Hour)
	for range 60 {
		step(time.Minute)
		down(loud)
		down(quiet)
		down(maint)
		tick()
	}
	if got := sink.take(loud); len(got) != 0 {
		t.Fatalf("an hour stepped back: %v sent, want nothing (the reminder is due an hour after the first message)", got)
	}
	if got := sink.take(quiet); len(got) != 0 {
		t.Fatalf("the silence ended early after a step back: %v", got)
	}
	// The window starts at the first message's time, so an hour back it is not open
	// yet: its alert may be told then; what matters is that it is told at most once.
	maintBack := sink.take(maint)

	// Forward one day at once: one reminder, not 24; the silence is over, so its alert
	// is told once.
	step(24 * time.Hour)
	down(loud)
	down(quiet)
	down(maint)
	for range 10 {
		tick()
	}
	loudGot, quietGot, maintGot := sink.take(loud), sink.take(quiet), sink.take(maint)
	t.Logf("clock steps: back 1h then forward 24h: %v sent for the firing alert, %v for the one whose silence ended, %v (%v while the clock was before the window) for the one whose maintenance window ended", loudGot, quietGot, maintGot, maintBack)
	if n := len(maintGot) + len(maintBack); n != 1 {
		t.Fatalf("the alert of the maintenance window was told %d times (%v, then %v), want once", n, maintBack, maintGot)
	}
	if len(loudGot) != 1 || loudGot[0] != patrol.NotifyReminder {
		t.Fatalf("a day forward: %v, want one reminder", loudGot)
	}
	if len(quietGot) != 1 {
		t.Fatalf("a day forward past the silence: %v, want one message", quietGot)
	}
	for _, a := range e.List(alert.Filter{}) {
		if !a.Active() {
			t.Fatalf("alert %s resolved by a clock step", a.Target)
		}
	}
}
