package alert_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

// sink records what the engine sends; fail makes it refuse.
type sink struct {
	mu   sync.Mutex
	got  []patrol.Notification
	keys map[string]int
	fail error
}

func (s *sink) Enqueue(_ context.Context, ns []patrol.Notification) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.keys == nil {
		s.keys = map[string]int{}
	}
	for _, n := range ns {
		s.keys[n.Key]++
	}
	s.got = append(s.got, ns...)
	return nil
}

// take returns what was sent since the last take.
func (s *sink) take() []patrol.Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	got := s.got
	s.got = nil
	return got
}

// clock is a fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// harness drives one engine on fake time.
type harness struct {
	t     *testing.T
	e     *alert.Engine
	sink  *sink
	store *alert.MemStore
	clock *clock
	cfg   alert.Config
}

func newHarness(t *testing.T, cfg alert.Config) *harness {
	t.Helper()
	h := &harness{t: t, sink: &sink{}, store: alert.NewMemStore(), clock: &clock{t: t0}, cfg: cfg}
	h.start()
	return h
}

// start (re)builds the engine on the harness's store, as a restart would.
func (h *harness) start() {
	h.t.Helper()
	e, err := alert.New(context.Background(), h.cfg, alert.Deps{Sink: h.sink, Store: h.store, Now: h.clock.Now})
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	h.e = e
}

func (h *harness) now() time.Time { return h.clock.Now() }

// run moves time on by d, ticking every second as the daemon does.
func (h *harness) run(d time.Duration) {
	h.t.Helper()
	end := h.now().Add(d)
	for t := h.now(); !t.After(end); t = t.Add(time.Second) {
		h.clock.set(t)
		if err := h.e.Tick(context.Background(), t); err != nil {
			h.t.Fatalf("Tick at %s: %v", t.Sub(t0), err)
		}
	}
	h.clock.set(end)
}

func (h *harness) observe(sig alert.Signal) {
	h.t.Helper()
	if err := h.e.Observe(context.Background(), sig); err != nil {
		h.t.Fatalf("Observe: %v", err)
	}
}

// down and up observe a target with the scheduler's verdict.
func (h *harness) down(target string, class patrol.Class, labels ...string) {
	h.t.Helper()
	h.observe(signal(target, class, patrol.StatusDown, labels...))
}

func (h *harness) up(target string, labels ...string) {
	h.t.Helper()
	h.observe(signal(target, patrol.ClassOK, patrol.StatusUp, labels...))
}

func signal(target string, class patrol.Class, state patrol.Status, labels ...string) alert.Signal {
	sig := alert.Signal{Target: target, Status: state, Labels: map[string]string{},
		Result: patrol.Result{Target: target, Class: class, Duration: 10 * time.Millisecond}}
	if class == patrol.ClassRefused {
		sig.Result.Error = "connection refused"
	}
	for _, l := range labels {
		k, v, _ := strings.Cut(l, "=")
		sig.Labels[k] = v
	}
	return sig
}

// sent renders notifications as "kind receiver [subjects]" lines, sorted.
func sent(ns []patrol.Notification) []string {
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		var subj []string
		for _, a := range n.Alerts {
			subj = append(subj, a.Target+"/"+string(a.Class))
		}
		slices.Sort(subj)
		out = append(out, fmt.Sprintf("%s %s %s", n.Kind, n.Receiver, strings.Join(subj, ",")))
	}
	slices.Sort(out)
	return out
}

// one returns the single alert the filter selects.
func (h *harness) one(f alert.Filter) patrol.Alert {
	h.t.Helper()
	as := h.e.List(f)
	if len(as) != 1 {
		h.t.Fatalf("List(%+v): got %d alerts, want 1: %+v", f, len(as), as)
	}
	return as[0]
}

// chainConfig is a config with a three-step chain and no grouping delays, so that
// tests read like the life cycle.
func chainConfig() alert.Config {
	return alert.Config{
		Escalations: map[string][]alert.Step{
			"default": {
				{Receivers: []string{"noc"}},
				{Receivers: []string{"sre-oncall"}},
				{Receivers: []string{"sre-lead"}},
			},
		},
		Grouping:       alert.Grouping{GroupBy: []string{alert.GroupByNothing}, GroupWait: -1, GroupInterval: -1},
		RepeatInterval: 20 * time.Minute,
	}
}
