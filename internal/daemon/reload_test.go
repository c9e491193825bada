package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// parse loads a configuration from body, failing the test when it does not load.
func parse(t *testing.T, body string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(body), filepath.Join(t.TempDir(), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// receiverConfig is a configuration with no probes and one webhook receiver, whose
// outbox polls every second of fake time.
func receiverConfig(url string) string {
	return fmt.Sprintf(`host_watch: {disabled: true}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 1s, backoff_max: 2s, poll_interval: 1s}
  receivers: [{name: default, type: webhook, url: %s}]
`, url)
}

// hostDown is a P0 finding about a host, raised (active) or cleared.
func hostDown(active bool) patrol.Finding {
	return patrol.Finding{Class: patrol.AlertUnreachable, Rule: "host_down", Subject: "host:db1", Severity: "P0",
		Summary: "db1 is down", Labels: map[string]string{"host": "db1"}, Active: active}
}

// advanceUntil moves the fake clock a second at a time until ok holds, giving the
// daemon's workers a moment of real time after each step to act on the tick.
func advanceUntil(t *testing.T, clock *notifytest.Clock, what string, ok func() bool) {
	t.Helper()
	for range 60 {
		if ok() {
			return
		}
		clock.Advance(time.Second)
		for range 20 {
			if ok() {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Fatalf("never saw %s within 60s of fake time", what)
}

// A reload that changes the receivers swaps the dispatcher and the engine together:
// the open incident carries over (not paged again), and its resolve goes to the
// receiver as now configured. Time is fake: the alert ticks and the outbox's polls
// happen when the test advances the clock.
func TestReloadSwapsReceiversOnFakeTime(t *testing.T) {
	a, b := testsvc.NewWebhook(t), testsvc.NewWebhook(t)
	clock := notifytest.NewClock(time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	d, err := New(Config{Config: parse(t, receiverConfig(a.URL)), DataDir: t.TempDir(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	ctx := t.Context()
	if err := d.observeFinding(ctx, hostDown(true)); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clock, "the page at the first receiver", func() bool { return len(a.Messages()) == 1 })

	before := d.gen.Load()
	if err := d.Reload(parse(t, receiverConfig(b.URL))); err != nil {
		t.Fatal(err)
	}
	after := d.gen.Load()
	if after.notifier == before.notifier || after.deps.Sink == before.deps.Sink {
		t.Fatal("the reload kept the old dispatcher")
	}
	clock.Advance(5 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := len(b.Messages()); n != 0 {
		t.Fatalf("the new receiver got %d messages before anything changed: the open incident was paged again", n)
	}
	if err := d.observeFinding(ctx, hostDown(false)); err != nil {
		t.Fatal(err)
	}
	advanceUntil(t, clock, "the resolve at the new receiver", func() bool { return len(b.Messages()) == 1 })
	if got := testsvc.Statuses(b.Messages()); got != "resolved" {
		t.Errorf("new receiver got %q, want the resolve", got)
	}
	if got := testsvc.Statuses(a.Messages()); got != "firing" {
		t.Errorf("old receiver got %q, want only the firing message", got)
	}
}

// A reload that fails anywhere changes nothing: not the configuration, not the
// dispatcher or the engine's dependencies, not the engine, not the scheduled targets —
// even when its alerting part built fine before a probe failed to.
func TestFailedReloadChangesNothing(t *testing.T) {
	a := testsvc.NewWebhook(t)
	open := testsvc.Listen(t)
	cfg := parse(t, receiverConfig(a.URL)+fmt.Sprintf("targets: [{url: %s}]\n", open))
	d, err := New(Config{Config: cfg, DataDir: t.TempDir(), Clock: notifytest.NewClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	gen, eng := d.gen.Load(), d.engine()
	scheduled := len(d.sched.Snapshot())

	bad := parse(t, receiverConfig("http://127.0.0.1:1/other")+fmt.Sprintf("targets: [{url: %s}]\n", open))
	// A check no probe can build, as a configuration loaded by an older or newer
	// portpatrol might carry.
	bad.Checks = append(bad.Checks, config.Check{Target: patrol.Target{ID: "nope://x:1", Scheme: "nope", Host: "x", Port: 1,
		Interval: time.Second, Timeout: time.Second}})
	err = d.Reload(bad)
	if err == nil {
		t.Fatal("a reload with a probe that cannot build succeeded")
	}
	if d.gen.Load() != gen {
		t.Error("the failed reload replaced the running generation")
	}
	if d.engine() != eng {
		t.Error("the failed reload replaced the alert engine")
	}
	if g := d.gen.Load(); g.cfg != cfg || g.deps.Sink != gen.deps.Sink {
		t.Error("the failed reload mixed its configuration or sink into the running one")
	}
	if got := len(d.sched.Snapshot()); got != scheduled {
		t.Errorf("scheduled targets: got %d after the failed reload, want %d", got, scheduled)
	}
	if !strings.Contains(err.Error(), "nope") {
		t.Errorf("the error %q does not name the target that failed", err)
	}
}

// A replica that becomes leader rebuilds its engine from the shared store with the
// running generation's configuration, so it takes over the incidents the previous
// leader stored, including those opened after it started; it stops alerting when it
// steps down.
func TestLeaderTakesOverIncidentsFromTheStore(t *testing.T) {
	body := "host_watch: {disabled: true}\n"
	leader, err := New(Config{Config: parse(t, body), DataDir: t.TempDir(), Clock: notifytest.NewClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { leader.Close() })
	// The follower shares the leader's store, as replicas share PostgreSQL; it starts
	// before the incident exists.
	follower, err := New(Config{Config: parse(t, body), Store: leader.db, Clock: notifytest.NewClock(time.Now())})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { follower.Close() })
	follower.stepDown()
	ctx := t.Context()
	if err := leader.observeFinding(ctx, hostDown(true)); err != nil {
		t.Fatal(err)
	}
	if err := leader.engine().Tick(ctx, time.Now()); err != nil { // saves to the store
		t.Fatal(err)
	}
	subject := alert.Filter{Target: "host:db1"}
	if len(leader.engine().List(subject)) == 0 {
		t.Fatal("the leader has no incident")
	}
	if err := follower.observeFinding(ctx, hostDown(true)); err != nil {
		t.Fatal(err)
	}
	if n := len(follower.engine().List(subject)); n != 0 {
		t.Fatalf("the follower raised %d alerts while following", n)
	}
	follower.lead(ctx, &kubeWiring{d: follower, tracker: kube.NewTracker()})
	got := follower.engine().List(subject)
	if !follower.leading.Load() || len(got) == 0 {
		t.Fatal("the new leader did not take over the stored incident")
	}
	follower.stepDown()
	if follower.leading.Load() {
		t.Error("still leading after stepping down")
	}
}

// Close releases the probes' shared environment: after it, a half-open check can no
// longer be built on it.
func TestCloseClosesTheProbeEnv(t *testing.T) {
	env := new(probe.Env)
	if err := env.HalfOpenSupported(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("half-open checks unavailable under CI: %v", err)
		}
		t.Skipf("half-open checks need CAP_NET_RAW: %v", err)
	}
	d, err := New(Config{Config: parse(t, "host_watch: {disabled: true}\n"), DataDir: t.TempDir(), ProbeEnv: env})
	if err != nil {
		t.Fatal(err)
	}
	target, err := patrol.ParseTarget("tcp://127.0.0.1:1?handshake=half")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := probe.New(target, probe.Module{}, env); err != nil {
		t.Fatalf("before Close: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := probe.New(target, probe.Module{}, env); err == nil || !strings.Contains(err.Error(), "open probe environment") {
		t.Errorf("after Close: got %v, want the environment refused as closed", err)
	}
}
