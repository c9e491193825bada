package alert_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/alert/storetest"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TestRestart: a new engine on the same store neither pages again for what was sent
// nor forgets what was owed; escalation, pending timers and resolving carry on.
func TestRestart(t *testing.T) {
	cfg := chainConfig()
	cfg.Rules.Capacity.For = 10 * time.Minute
	cfg.Grouping = alert.Grouping{GroupWait: 30 * time.Second}
	h := newHarness(t, cfg)
	h.down(db, patrol.ClassRefused)
	h.observe(capSig("tcp://cache:6379", 95, 100)) // pending for 10 minutes
	h.run(time.Minute)
	if diff := cmp.Diff([]string{"firing noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	// A port of another host goes down just before the restart: owed, not yet sent.
	h.down("tcp://web:80", patrol.ClassRefused)
	h.run(10 * time.Second)
	before := h.e.List(alert.Filter{})

	h.start() // restart
	after := h.e.List(alert.Filter{})
	ignore := cmp.Comparer(func(a, b []patrol.Result) bool { return len(a) == len(b) })
	if diff := cmp.Diff(before, after, ignore); diff != "" {
		t.Errorf("alerts changed across the restart (-before +after):\n%s", diff)
	}
	h.run(30 * time.Second)
	if diff := cmp.Diff([]string{"firing noc tcp://web:80/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
	// The P0 escalates on its original deadline: told at 0:30, due at 5:30, sent
	// after the new group's wait at 6:00.
	h.run(4*time.Minute + 20*time.Second)
	if diff := cmp.Diff([]string{"escalation sre-oncall " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("escalation (-want +got):\n%s", diff)
	}
	// The pending capacity alert fires 10 minutes after it started, not after the
	// restart.
	h.run(4*time.Minute + 30*time.Second)
	got := sent(h.sink.take())
	if !contains(got, "firing noc tcp://cache:6379/capacity") {
		t.Errorf("got %v, want the capacity alert fired on its stored time", got)
	}
	h.start() // and again
	h.up(db)
	h.run(time.Minute)
	var dbLines []string
	for _, l := range sent(h.sink.take()) {
		if strings.Contains(l, db) {
			dbLines = append(dbLines, l)
		}
	}
	if diff := cmp.Diff(each("resolved", "noc,sre-oncall"), dbLines); diff != "" {
		t.Errorf("resolve after restart (-want +got):\n%s", diff)
	}
	for k, n := range h.sink.keys {
		if n != 1 {
			t.Errorf("key %s sent %d times", k, n)
		}
	}
}

// TestRestartSilences: silences survive a restart and keep muting.
func TestRestartSilences(t *testing.T) {
	h := newHarness(t, chainConfig())
	_, err := h.e.CreateSilence(context.Background(), patrol.Silence{Matchers: mustMatchers(t, "env=~prod"), Author: "a", EndsAt: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	h.down(db, patrol.ClassRefused, "env=prod")
	h.run(10 * time.Minute)
	if got := h.sink.take(); len(got) != 0 {
		t.Errorf("got %v, want the silence to hold", sent(got))
	}
}

// failStore fails saving on demand.
type failStore struct {
	*alert.MemStore
	mu   sync.Mutex
	fail bool
}

func (f *failStore) SaveAlert(ctx context.Context, r alert.Record) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("disk full")
	}
	return f.MemStore.SaveAlert(ctx, r)
}

// TestStoreFailure: nothing is sent before the record that owes it is saved.
func TestStoreFailure(t *testing.T) {
	st := &failStore{MemStore: alert.NewMemStore(), fail: true}
	sk := &sink{}
	clk := &clock{t: t0}
	e, err := alert.New(context.Background(), chainConfig(), alert.Deps{Sink: sk, Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Observe leaves saving to the next Tick, which saves before it sends.
	if err := e.Observe(context.Background(), signal(db, patrol.ClassRefused, patrol.StatusDown)); err != nil {
		t.Errorf("Observe: %v", err)
	}
	if err := e.Tick(context.Background(), t0); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Tick: got %v, want the store's error", err)
	}
	if got := sk.take(); len(got) != 0 {
		t.Errorf("got %v sent before it was saved", sent(got))
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	if err := e.Tick(context.Background(), t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if got := sent(sk.take()); len(got) != 1 {
		t.Errorf("got %v, want the firing notice once saved", got)
	}
}

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) alert.Store { return alert.NewMemStore() })
}

// TestConcurrent exercises every entry point at once, for the race detector, then
// checks that the engine ends where the last signals put it: every call succeeded, each
// target's alert follows its last signal, no silence is left active, and the store
// holds what the engine holds (a restart from it lists the same alerts).
func TestConcurrent(t *testing.T) {
	h := newHarness(t, alert.Config{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	report := func(what string, err error) {
		if err != nil {
			select {
			case errs <- fmt.Errorf("%s: %w", what, err):
			default:
			}
		}
	}
	const hosts, ports, rounds = 4, 20, 200
	lastDown := map[string]bool{} // target → its last signal was down; written before the goroutines start
	for g := range hosts {
		for i := range rounds {
			lastDown[portSig(fmt.Sprintf("10.0.0.%d", g+1), 1000+i%ports).Target] = i%3 != 0
		}
	}
	for g := range hosts {
		wg.Go(func() {
			for i := range rounds {
				sig := portSig(fmt.Sprintf("10.0.0.%d", g+1), 1000+i%ports)
				if i%3 == 0 {
					sig.Status, sig.Result.Class = patrol.StatusUp, patrol.ClassOK
				}
				report("observe", h.e.Observe(ctx, sig))
			}
		})
	}
	wg.Go(func() {
		for i := range rounds {
			report("tick", h.e.Tick(ctx, t0.Add(time.Duration(i)*time.Second)))
		}
	})
	wg.Go(func() {
		for range rounds {
			for _, a := range h.e.List(alert.Filter{}) {
				// The alert may have resolved, or resolved and been dropped, since
				// List returned: that is the race this exercises, not a failure.
				err := h.e.Ack(ctx, a.ID, "bot", "")
				if !errors.Is(err, alert.ErrResolved) && !errors.Is(err, alert.ErrNotFound) {
					report("ack", err)
				}
				h.e.Get(a.ID)
			}
			h.e.Stats()
			h.e.Silences()
			h.e.Windows()
		}
	})
	wg.Go(func() {
		for range 50 {
			s, err := h.e.CreateSilence(ctx, patrol.Silence{Matchers: mustMatchers(t, "port=1"), Author: "a", EndsAt: t0.Add(time.Hour)})
			report("create silence", err)
			if err == nil {
				report("expire silence", h.e.ExpireSilence(ctx, s.ID, "a"))
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	active := map[string]patrol.Alert{}
	for _, a := range h.e.List(alert.Filter{}) {
		if prev, dup := active[a.Target]; dup {
			t.Errorf("%s: two active alerts, %s and %s", a.Target, prev.ID, a.ID)
		}
		active[a.Target] = a
	}
	for target, down := range lastDown {
		a, ok := active[target]
		switch {
		case down && !ok:
			t.Errorf("%s: last signal down, got no active alert", target)
		case !down && ok && (a.State == patrol.AlertFiring || a.State == patrol.AlertAcknowledged):
			t.Errorf("%s: last signal up, got alert %s %s", target, a.ID, a.State)
		}
	}
	if n := h.e.Stats().Silences; n != 0 {
		t.Errorf("got %d active silences, want 0: every silence was expired", n)
	}

	type row struct {
		ID, Target string
		State      patrol.AlertState
	}
	rows := func(as []patrol.Alert) []row {
		out := make([]row, len(as))
		for i, a := range as {
			out[i] = row{a.ID, a.Target, a.State}
		}
		slices.SortFunc(out, func(a, b row) int { return strings.Compare(a.ID, b.ID) })
		return out
	}
	before := rows(h.e.List(alert.Filter{}))
	// Results observed after the last save are saved by Flush, as before any restart.
	if err := h.e.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	h.start()
	if diff := cmp.Diff(before, rows(h.e.List(alert.Filter{}))); diff != "" {
		t.Errorf("alerts after a restart from the store (-before +after):\n%s", diff)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (alert.Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	windows := []alert.Window{{Name: "w", Schedule: "Someday 1-2"}, {Name: "x", Start: t0, End: t0},
		{Name: "y", Start: t0}, {Name: "z", Matchers: []string{"a=~("}, Start: t0, End: t0.Add(time.Hour)}}
	bad := alert.Config{
		Deadlines:         map[string]time.Duration{"P7": time.Minute, "P1": -time.Minute},
		Rules:             alert.Rules{Slow: alert.Rule{Severity: "high"}, Capacity: alert.Rule{Threshold: 1.5}, Unreachable: alert.Rule{Classes: []patrol.Class{patrol.ClassOK}}},
		Routes:            []alert.Route{{Match: []string{"team=~("}, Escalation: "nope"}},
		Escalations:       map[string][]alert.Step{"ops": {{After: -time.Second}}, "empty": nil},
		Grouping:          alert.Grouping{GroupBy: []string{"...", "host"}},
		Inhibit:           []alert.InhibitRule{{Target: []string{"a=b"}}},
		Maintenance:       windows,
		RunbookURL:        "{{.Target",
		DefaultEscalation: "ops",
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("got no error")
	}
	wantFields := []string{
		"deadlines.P7", "deadlines.P1", "rules.unreachable.classes[0]", "rules.slow.severity", "rules.capacity.threshold",
		"escalations.empty", "escalations.ops[0].after", "escalations.ops[0].receivers", "routes[0].match",
		"routes[0].escalation", "grouping.group_by", "inhibit[0].source_matchers", "maintenance[0].schedule",
		"maintenance[1].end", "maintenance[2].start, end", "maintenance[3].matchers", "runbook_url",
	}
	_, schedErr := alert.ParseSchedule("Someday 1-2")
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *alert.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("%v is not a *ConfigError", e)
			continue
		}
		got = append(got, ce.Field)
		if ce.Field == "maintenance[0].schedule" && ce.Reason != schedErr.Error() {
			t.Errorf("maintenance[0].schedule: got reason %q, want ParseSchedule's %q", ce.Reason, schedErr)
		}
	}
	if diff := cmp.Diff(sortedCopy(wantFields), sortedCopy(got)); diff != "" {
		t.Errorf("fields (-want +got):\n%s\n%v", diff, err)
	}
	if _, err := alert.New(context.Background(), alert.Config{}, alert.Deps{}); err == nil {
		t.Error("New without a sink: got no error")
	}
}

// exampleYAML is the shape of `alerting:` in the configuration file.
const exampleYAML = `
deadlines: {P0: 5m, P1: 15m, P2: 30m, P3: 1h}
rules:
  unreachable: {severity: P0}
  slow: {severity: P1, count: 3, for: 1m}
  capacity: {severity: P2, threshold: 0.8, for: 2m}
  anomaly: {severity: P3, window: 20, factor: 3, baseline: 1h}
  security: {severity: P1}
routes:
  - match: ["team=db", "severity=~P0|P1"]
    escalation: db-pager
escalations:
  default:
    - receivers: [noc-slack]
  db-pager:
    - receivers: [noc-slack, noc-pagerduty]
    - receivers: [sre-oncall]
    - receivers: [sre-lead]
      after: 10m
repeat_interval: 30m
grouping:
  group_by: [host, service]
  group_wait: 30s
  group_interval: 5m
inhibit:
  - source_matchers: ["class=unreachable", "target=~host:.+"]
    target_matchers: ["target!~host:.+"]
    equal: [host]
maintenance:
  - name: db-weekly
    schedule: "Sun 02:00-04:00 Asia/Shanghai"
    matchers: ["service=orders"]
  - name: dc-move
    start: 2025-03-01T22:00:00Z
    end: 2025-03-02T02:00:00Z
runbook_url: "https://wiki.example/runbooks/{{.Class}}?target={{urlquery .Target}}"
`

func TestConfigYAML(t *testing.T) {
	var c alert.Config
	if err := yaml.Unmarshal([]byte(exampleYAML), &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Rules.Capacity.For != 2*time.Minute || c.Escalations["db-pager"][2].After != 10*time.Minute ||
		!c.Maintenance[1].End.Equal(time.Date(2025, 3, 2, 2, 0, 0, 0, time.UTC)) || c.Rules.Anomaly.Window != 20 {
		t.Errorf("decoded %+v", c)
	}
	// The route sends a P0 of team db down its chain.
	h := newHarness(t, c)
	h.down(db, patrol.ClassRefused, "team=db", "service=orders")
	h.run(30 * time.Second)
	got := sent(h.sink.take())
	want := []string{"firing noc-pagerduty " + db + "/unreachable", "firing noc-slack " + db + "/unreachable"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// batchStore counts the batches an engine saves through alert.AlertBatchStore.
type batchStore struct {
	*alert.MemStore
	mu      sync.Mutex
	batches int
}

func (b *batchStore) SaveAlerts(ctx context.Context, save []alert.Record, del []string) error {
	b.mu.Lock()
	b.batches++
	b.mu.Unlock()
	for _, r := range save {
		if err := b.MemStore.SaveAlert(ctx, r); err != nil {
			return err
		}
	}
	for _, id := range del {
		if err := b.MemStore.DeleteAlert(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// TestOutageSavedInBatches: an outage of many targets is saved by the next Tick in a
// few batches, and a restarted engine finds every alert.
func TestOutageSavedInBatches(t *testing.T) {
	st := &batchStore{MemStore: alert.NewMemStore()}
	clk := &clock{t: t0}
	e, err := alert.New(context.Background(), chainConfig(), alert.Deps{Sink: &sink{}, Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2500
	for i := range n {
		if err := e.Observe(context.Background(), signal(fmt.Sprintf("tcp://10.0.%d.%d:5432", i/250, i%250), patrol.ClassRefused, patrol.StatusDown)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Tick(context.Background(), t0); err != nil {
		t.Fatal(err)
	}
	if st.batches == 0 || st.batches > 6 {
		t.Errorf("got %d batches for %d alerts, want a few", st.batches, n)
	}
	recs, err := st.LoadAlerts(context.Background())
	if err != nil || len(recs) != n {
		t.Fatalf("got %d saved alerts, %v; want %d", len(recs), err, n)
	}
	e2, err := alert.New(context.Background(), chainConfig(), alert.Deps{Sink: &sink{}, Store: st, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(e2.List(alert.Filter{})); got != n {
		t.Errorf("restarted engine: got %d open alerts, want %d", got, n)
	}
}
