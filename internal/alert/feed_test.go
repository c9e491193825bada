package alert_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// feed records what the change hook is given.
type feed struct {
	mu  sync.Mutex
	got []patrol.Alert
}

func (f *feed) add(a patrol.Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, a)
}

// take returns what the hook was given since the last take.
func (f *feed) take() []patrol.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.got
	f.got = nil
	return got
}

// newFeedHarness is newHarness with the change hook recording into a feed.
func newFeedHarness(t *testing.T, cfg alert.Config, hook func(*harness, patrol.Alert)) (*harness, *feed) {
	t.Helper()
	f := &feed{}
	h := &harness{t: t, sink: &sink{}, store: alert.NewMemStore(), clock: &clock{t: t0}, cfg: cfg}
	deps := alert.Deps{Sink: h.sink, Store: h.store, Now: h.clock.Now, OnChange: func(a patrol.Alert) {
		f.add(a)
		if hook != nil {
			hook(h, a)
		}
	}}
	e, err := alert.New(context.Background(), cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.e = e
	return h, f
}

// TestChangeHook walks an incident through every kind of change and checks that each
// reaches the hook, as the alert is after it — and that nothing reaches it when nothing
// changed.
func TestChangeHook(t *testing.T) {
	const db, cache = "tcp://db:5432", "redis://cache:6379"
	cfg := chainConfig()
	cfg.RepeatInterval = 3 * time.Minute
	h, f := newFeedHarness(t, cfg, nil)
	ctx := context.Background()
	var silence patrol.Silence
	var deadline time.Time

	steps := []struct {
		name string
		do   func()
		// target is whose alert the step changes; empty means nothing may reach the
		// hook.
		target string
		check  func(a patrol.Alert) bool
	}{
		{"opened and fired", func() { h.down(db, patrol.ClassRefused) }, db,
			func(a patrol.Alert) bool { return a.State == patrol.AlertFiring && a.Deadline.IsZero() }},
		{"first notice sets the deadline", func() { h.run(0) }, db,
			func(a patrol.Alert) bool {
				deadline = a.Deadline
				return !a.Deadline.IsZero() && cmp.Equal(a.Told, []string{"noc"})
			}},
		{"summary only", func() { h.down(db, patrol.ClassTimeout) }, db,
			func(a patrol.Alert) bool { return a.Summary == db+" unreachable: timeout" }},
		{"the same result again changes nothing", func() { h.down(db, patrol.ClassTimeout) }, "", nil},
		{"reminder", func() { h.run(3 * time.Minute) }, db,
			func(a patrol.Alert) bool { return a.EscalationStep == 0 && a.Deadline.Equal(deadline) }},
		{"escalated", func() { h.run(2 * time.Minute) }, db,
			func(a patrol.Alert) bool {
				ok := a.EscalationStep == 1 && a.Deadline.After(deadline)
				deadline = a.Deadline
				return ok
			}},
		{"silenced", func() {
			m, _ := patrol.ParseMatcher("target=" + db)
			var err error
			if silence, err = h.e.CreateSilence(ctx, patrol.Silence{Matchers: patrol.Matchers{m}, Author: "ops",
				Comment: "failover", EndsAt: h.now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			h.run(0)
		}, db, func(a patrol.Alert) bool { return a.State == patrol.AlertSilenced && a.MutedBy != "" }},
		{"nothing changes while muted", func() { h.run(10 * time.Minute) }, "", nil},
		{"unsilenced: a fresh deadline", func() {
			if err := h.e.ExpireSilence(ctx, silence.ID, "ops"); err != nil {
				t.Fatal(err)
			}
			h.run(0)
		}, db, func(a patrol.Alert) bool {
			return a.State == patrol.AlertFiring && a.MutedBy == "" && a.Deadline.After(deadline) && a.EscalationStep == 1
		}},
		{"acknowledged", func() {
			if err := h.e.Ack(ctx, h.one(alert.Filter{Target: db}).ID, "alice", "on it"); err != nil {
				t.Fatal(err)
			}
		}, db, func(a patrol.Alert) bool { return a.State == patrol.AlertAcknowledged && a.AckedBy == "alice" }},
		{"resolved", func() { h.up(db) }, db,
			func(a patrol.Alert) bool { return a.State == patrol.AlertResolved && a.ResolvedBy == "auto" }},
		{"pending", func() { h.observe(signal(cache, patrol.ClassOverloaded, patrol.StatusUnknown)) }, cache,
			func(a patrol.Alert) bool { return a.State == patrol.AlertPending && a.Class == patrol.AlertCapacity }},
		{"pending and gone: told as resolved", func() { h.up(cache) }, cache,
			func(a patrol.Alert) bool { return a.State == patrol.AlertResolved }},
	}
	for _, st := range steps {
		st.do()
		got := f.take()
		if st.target == "" {
			if len(got) > 0 {
				t.Errorf("%s: the hook got %d alerts, want none: %+v", st.name, len(got), got)
			}
			continue
		}
		if len(got) == 0 {
			t.Errorf("%s: the hook got nothing", st.name)
			continue
		}
		last := got[len(got)-1]
		if last.Target != st.target {
			t.Errorf("%s: the hook last got an alert of %s, want %s", st.name, last.Target, st.target)
			continue
		}
		if !st.check(last) {
			t.Errorf("%s: the hook got %+v", st.name, last)
		}
		// What the hook got last is the alert as it is now.
		if r, ok := h.e.Get(last.ID); ok {
			if diff := cmp.Diff(r.Alert, last); diff != "" {
				t.Errorf("%s: the hook's alert differs from the engine's (-engine +hook):\n%s", st.name, diff)
			}
		} else if last.State != patrol.AlertResolved {
			t.Errorf("%s: the engine forgot %s, but the hook last got it %s", st.name, last.ID, last.State)
		}
	}
}

// TestChangeHookCallsEngine: the hook runs outside the engine's lock, so it may read
// and change the engine; a change it makes reaches it too, after the one it is given.
func TestChangeHookCallsEngine(t *testing.T) {
	const db = "tcp://db:5432"
	h, f := newFeedHarness(t, chainConfig(), func(h *harness, a patrol.Alert) {
		if len(h.e.List(alert.Filter{})) == 0 {
			t.Error("List in the hook: no alerts")
		}
		if a.State == patrol.AlertFiring {
			if err := h.e.Ack(context.Background(), a.ID, "robot", ""); err != nil {
				t.Errorf("Ack in the hook: %v", err)
			}
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.down(db, patrol.ClassRefused)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe did not return: the hook deadlocked the engine")
	}
	var states []patrol.AlertState
	for _, a := range f.take() {
		states = append(states, a.State)
	}
	if want := []patrol.AlertState{patrol.AlertFiring, patrol.AlertAcknowledged}; !cmp.Equal(states, want) {
		t.Errorf("the hook got %v, want %v", states, want)
	}
}

// TestChangeHookOrder: under concurrent calls, each alert's changes reach the hook in
// the order they were made: once resolved, an incident is never shown open again.
func TestChangeHookOrder(t *testing.T) {
	h, f := newFeedHarness(t, chainConfig(), nil)
	var wg sync.WaitGroup
	for i := range 4 {
		target := "tcp://db:" + string(rune('1'+i)) + "000"
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				// Each incident starts at a time of its own, so it has an ID of its own.
				down, up := signal(target, patrol.ClassRefused, patrol.StatusDown), signal(target, patrol.ClassOK, patrol.StatusUp)
				down.At = t0.Add(time.Duration(j) * time.Second)
				up.At = down.At.Add(time.Millisecond)
				if err := h.e.Observe(context.Background(), down); err != nil {
					t.Error(err)
				}
				if err := h.e.Observe(context.Background(), up); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	resolved := map[string]bool{}
	for _, a := range f.take() {
		if resolved[a.ID] {
			t.Fatalf("alert %s reached the hook %s after it was resolved", a.ID, a.State)
		}
		resolved[a.ID] = a.State == patrol.AlertResolved
	}
	// Changes made before the hook is called reach it as one: an incident may be
	// shown resolved only, but each is shown, and shown resolved last.
	if len(resolved) != 4*50 {
		t.Errorf("the hook got %d incidents, want %d", len(resolved), 4*50)
	}
	for id, ok := range resolved {
		if !ok {
			t.Errorf("alert %s: the hook did not get it resolved", id)
		}
	}
}
