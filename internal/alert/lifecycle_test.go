package alert_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

const db = "tcp://db1:5432"

func slowSig(target string, d time.Duration) alert.Signal {
	s := signal(target, patrol.ClassSlow, patrol.StatusUp)
	s.Result.Duration = d
	return s
}

func capSig(target string, used, limit int64) alert.Signal {
	s := signal(target, patrol.ClassOK, patrol.StatusUp)
	s.Result.Capacity = &patrol.Capacity{What: "clients", Used: used, Limit: limit}
	return s
}

// TestRules checks which results open alerts, at which severity, and that `for` and
// consecutive counts keep a single bad result from paging.
func TestRules(t *testing.T) {
	type at struct {
		after time.Duration // since the previous step
		sig   alert.Signal
	}
	tests := []struct {
		name  string
		rules alert.Rules
		steps []at
		wait  time.Duration
		want  []string // "rule severity state"
		sent  []string
	}{
		{
			name:  "down and refused is P0 at once",
			steps: []at{{0, signal(db, patrol.ClassRefused, patrol.StatusDown)}},
			want:  []string{"unreachable P0 firing"},
			sent:  []string{"firing noc " + db + "/unreachable"},
		},
		{
			name:  "a failure the scheduler has not confirmed does not alert",
			steps: []at{{0, signal(db, patrol.ClassTimeout, patrol.StatusUp)}, {time.Second, signal(db, patrol.ClassTimeout, patrol.StatusUnknown)}},
		},
		{
			name:  "down for a class outside the rule does not alert",
			steps: []at{{0, signal(db, patrol.ClassAuth, patrol.StatusDown)}},
		},
		{
			name:  "unreachable classes are configurable",
			rules: alert.Rules{Unreachable: alert.Rule{Classes: []patrol.Class{patrol.ClassAuth}}},
			steps: []at{{0, signal(db, patrol.ClassAuth, patrol.StatusDown)}},
			want:  []string{"unreachable P0 firing"},
			sent:  []string{"firing noc " + db + "/unreachable"},
		},
		{
			name: "two slow results are not three",
			steps: []at{{0, slowSig(db, 2*time.Second)}, {30 * time.Second, slowSig(db, 2*time.Second)},
				{30 * time.Second, signal(db, patrol.ClassOK, patrol.StatusUp)}, {30 * time.Second, slowSig(db, 2*time.Second)}},
		},
		{
			name:  "three slow results in a row are P1",
			steps: []at{{0, slowSig(db, 2*time.Second)}, {30 * time.Second, slowSig(db, 2*time.Second)}, {30 * time.Second, slowSig(db, 2*time.Second)}},
			want:  []string{"slow P1 firing"},
			sent:  []string{"firing noc " + db + "/slow"},
		},
		{
			name:  "slow with a for duration stays pending and clears without a word",
			rules: alert.Rules{Slow: alert.Rule{Count: 1, For: 2 * time.Minute}},
			steps: []at{{0, slowSig(db, 2*time.Second)}, {time.Minute, signal(db, patrol.ClassOK, patrol.StatusUp)}},
		},
		{
			name:  "slow with a for duration fires once it has held",
			rules: alert.Rules{Slow: alert.Rule{Count: 1, For: 2 * time.Minute, Severity: "P2"}},
			steps: []at{{0, slowSig(db, 2*time.Second)}, {time.Minute, slowSig(db, 2*time.Second)}},
			wait:  time.Minute,
			want:  []string{"slow P2 firing"},
			sent:  []string{"firing noc " + db + "/slow"},
		},
		{
			name:  "capacity over 0.8 is pending for a minute",
			steps: []at{{0, capSig(db, 85, 100)}},
			wait:  30 * time.Second,
			want:  []string{"capacity P2 pending"},
		},
		{
			name:  "capacity over 0.8 for a minute is P2",
			steps: []at{{0, capSig(db, 85, 100)}, {30 * time.Second, capSig(db, 90, 100)}},
			wait:  31 * time.Second,
			want:  []string{"capacity P2 firing"},
			sent:  []string{"firing noc " + db + "/capacity"},
		},
		{
			name:  "capacity under the threshold does not alert",
			steps: []at{{0, capSig(db, 70, 100)}},
			wait:  2 * time.Minute,
		},
		{
			name:  "a configured threshold",
			rules: alert.Rules{Capacity: alert.Rule{Threshold: 0.5, For: time.Second}},
			steps: []at{{0, capSig(db, 70, 100)}},
			wait:  2 * time.Second,
			want:  []string{"capacity P2 firing"},
			sent:  []string{"firing noc " + db + "/capacity"},
		},
		{
			name:  "overloaded is near the limit too",
			steps: []at{{0, signal(db, patrol.ClassOverloaded, patrol.StatusDown)}},
			wait:  time.Minute,
			want:  []string{"capacity P2 firing"},
			sent:  []string{"firing noc " + db + "/capacity"},
		},
		{
			name:  "a disabled rule",
			rules: alert.Rules{Unreachable: alert.Rule{Disabled: true}},
			steps: []at{{0, signal(db, patrol.ClassRefused, patrol.StatusDown)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := alert.Config{Rules: tt.rules, Grouping: alert.Grouping{GroupWait: -1},
				Escalations: map[string][]alert.Step{"default": {{Receivers: []string{"noc"}}}}}
			h := newHarness(t, cfg)
			for _, s := range tt.steps {
				h.run(s.after)
				s.sig.At = h.now()
				h.observe(s.sig)
			}
			h.run(tt.wait)
			var got []string
			for _, a := range h.e.List(alert.Filter{}) {
				got = append(got, fmt.Sprintf("%s %s %s", a.Rule, a.Severity, a.State))
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("alerts (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.sent, sent(h.sink.take()), cmpEmpty); diff != "" {
				t.Errorf("sent (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices alike.
var cmpEmpty = cmp.Transformer("empty", func(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
})

// TestEscalation follows a P0 through its chain: the first step at once, the next
// when each deadline passes, reminders to everyone told, and an ack that stops it all.
func TestEscalation(t *testing.T) {
	h := newHarness(t, chainConfig())
	h.down(db, patrol.ClassRefused, "service=orders", "team=db")
	type want struct {
		after time.Duration
		sent  []string
	}
	all := "noc,sre-oncall,sre-lead"
	steps := []want{
		{0, []string{"firing noc " + db + "/unreachable"}},
		{5*time.Minute - time.Second, nil},
		{time.Second, []string{"escalation sre-oncall " + db + "/unreachable"}},
		{5 * time.Minute, []string{"escalation sre-lead " + db + "/unreachable"}},
		// No fourth step; reminders run from the last escalation.
		{20*time.Minute - time.Second, nil},
		{time.Second, each("reminder", all)},
	}
	for i, s := range steps {
		h.run(s.after)
		if diff := cmp.Diff(s.sent, sent(h.sink.take()), cmpEmpty); diff != "" {
			t.Fatalf("step %d at %s (-want +got):\n%s", i, h.now().Sub(t0), diff)
		}
	}
	a := h.one(alert.Filter{})
	if a.State != patrol.AlertFiring || a.EscalationStep != 2 || a.Severity != patrol.P0 {
		t.Errorf("got state %s step %d severity %s, want firing 2 P0", a.State, a.EscalationStep, a.Severity)
	}
	if diff := cmp.Diff([]string{"noc", "sre-oncall", "sre-lead"}, a.Told); diff != "" {
		t.Errorf("told (-want +got):\n%s", diff)
	}
	if a.Labels["service"] != "orders" || a.Labels["team"] != "db" {
		t.Errorf("got labels %v, want the target's", a.Labels)
	}
	if len(a.Evidence) != 1 || a.Evidence[0].Class != patrol.ClassRefused {
		t.Errorf("got evidence %v, want the refused result", a.Evidence)
	}

	if err := h.e.Ack(context.Background(), a.ID, "alice", "restarting postgres"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	if diff := cmp.Diff(each("acknowledged", all), sent(h.sink.take())); diff != "" {
		t.Errorf("ack notices (-want +got):\n%s", diff)
	}
	h.run(3 * time.Hour)
	if got := sent(h.sink.take()); len(got) != 0 {
		t.Errorf("after ack got %v, want nothing", got)
	}
	h.up(db)
	h.run(time.Second)
	if diff := cmp.Diff(each("resolved", all), sent(h.sink.take())); diff != "" {
		t.Errorf("resolve notices (-want +got):\n%s", diff)
	}
	r, ok := h.e.Get(a.ID)
	if !ok || r.Alert.State != patrol.AlertResolved || r.Alert.ResolvedBy != "auto" || r.Alert.AckedBy != "alice" {
		t.Errorf("got %+v, want resolved by auto, acked by alice", r.Alert)
	}
	if len(r.Notes) != 1 || r.Notes[0].Text != "restarting postgres" {
		t.Errorf("got notes %+v, want the ack comment", r.Notes)
	}
	if err := h.e.Ack(context.Background(), a.ID, "bob", ""); !errors.Is(err, alert.ErrResolved) {
		t.Errorf("ack of a resolved alert: got %v, want ErrResolved", err)
	}
}

func each(kind, receivers string) []string {
	var out []string
	for r := range strings.SplitSeq(receivers, ",") {
		out = append(out, fmt.Sprintf("%s %s %s/unreachable", kind, r, db))
	}
	slices.Sort(out)
	return out
}

// TestDeadlinesAndSteps checks configured deadlines and step delays.
func TestDeadlinesAndSteps(t *testing.T) {
	cfg := chainConfig()
	cfg.Deadlines = map[string]time.Duration{"p0": 2 * time.Minute}
	cfg.Escalations["default"][2].After = 10 * time.Minute
	cfg.RepeatInterval = -1
	h := newHarness(t, cfg)
	h.down(db, patrol.ClassTimeout)
	h.run(0)
	a := h.one(alert.Filter{})
	if want := t0.Add(2 * time.Minute); !a.Deadline.Equal(want) {
		t.Errorf("got deadline %s, want %s", a.Deadline, want)
	}
	h.sink.take()
	var times []string
	for range 60 {
		h.run(time.Minute)
		for _, l := range sent(h.sink.take()) {
			times = append(times, fmt.Sprintf("%s %s", h.now().Sub(t0), l))
		}
	}
	want := []string{
		"2m0s escalation sre-oncall " + db + "/unreachable",
		"12m0s escalation sre-lead " + db + "/unreachable",
	}
	if diff := cmp.Diff(want, times); diff != "" {
		t.Errorf("escalations (-want +got):\n%s", diff)
	}
}

// TestManualResolve tells everyone told, names who resolved it, and a condition that
// still holds opens a new incident.
func TestManualResolve(t *testing.T) {
	h := newHarness(t, chainConfig())
	h.down(db, patrol.ClassRefused)
	h.run(5 * time.Minute)
	h.sink.take()
	a := h.one(alert.Filter{})
	if err := h.e.Resolve(context.Background(), a.ID, "bob", "false alarm, firewall change"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	if diff := cmp.Diff(each("resolved", "noc,sre-oncall"), sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r, _ := h.e.Get(a.ID)
	if r.Alert.ResolvedBy != "bob" {
		t.Errorf("got resolved by %q, want bob", r.Alert.ResolvedBy)
	}
	h.down(db, patrol.ClassRefused)
	h.run(time.Second)
	b := h.one(alert.Filter{})
	if b.ID == a.ID || b.Fingerprint != a.Fingerprint {
		t.Errorf("got %s (%s), want a new ID with fingerprint %s", b.ID, b.Fingerprint, a.Fingerprint)
	}
	if err := h.e.Resolve(context.Background(), "nope", "bob", ""); !errors.Is(err, alert.ErrNotFound) {
		t.Errorf("got %v, want ErrNotFound", err)
	}
}

// TestResolvedBeforeTold: an alert that clears before its group is sent was never
// news to anyone, so nobody hears of it.
func TestResolvedBeforeTold(t *testing.T) {
	h := newHarness(t, alert.Config{})
	h.down(db, patrol.ClassRefused)
	h.run(10 * time.Second)
	h.up(db)
	h.run(time.Hour)
	if got := sent(h.sink.take()); len(got) != 0 {
		t.Errorf("got %v, want nothing", got)
	}
	if got := h.e.List(alert.Filter{States: []patrol.AlertState{patrol.AlertResolved}}); len(got) != 0 {
		t.Errorf("got %d resolved alerts kept, want none", len(got))
	}
}

// TestRunbook renders the runbook link from the target and its labels.
func TestRunbook(t *testing.T) {
	cfg := alert.Config{
		RunbookURL: "https://wiki.example/rb/{{.Class}}?t={{urlquery .Target}}&svc={{.Labels.service}}&team={{.Labels.team}}",
		Rules:      alert.Rules{Slow: alert.Rule{Count: 1, RunbookURL: "https://wiki.example/slow/{{.Labels.service}}"}},
	}
	h := newHarness(t, cfg)
	h.down(db, patrol.ClassRefused, "service=orders")
	h.observe(slowSig("tcp://web:80", time.Second))
	got := map[string]string{}
	for _, a := range h.e.List(alert.Filter{}) {
		got[a.Target] = a.RunbookURL
	}
	want := map[string]string{
		db:             "https://wiki.example/rb/unreachable?t=tcp%3A%2F%2Fdb1%3A5432&svc=orders&team=",
		"tcp://web:80": "https://wiki.example/slow/",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFlapping: the scheduler says flapping → one flapping notice, no pages, however
// often it flaps; when it settles up, everyone told hears it is resolved.
func TestFlapping(t *testing.T) {
	h := newHarness(t, chainConfig())
	flap := func(state patrol.Status) {
		class := patrol.ClassOK
		if state == patrol.StatusDown {
			class = patrol.ClassTimeout
		}
		s := signal(db, class, state)
		s.Flapping = true
		h.observe(s)
	}
	flap(patrol.StatusDown)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"flapping noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for i := range 100 {
		if i%2 == 0 {
			flap(patrol.StatusUp)
		} else {
			flap(patrol.StatusDown)
		}
		h.run(30 * time.Second)
	}
	if got := sent(h.sink.take()); len(got) != 0 {
		t.Errorf("while flapping got %v, want nothing", got)
	}
	a := h.one(alert.Filter{})
	if a.State != patrol.AlertFlapping {
		t.Errorf("got state %s, want flapping", a.State)
	}
	h.up(db)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"resolved noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFlappingSettlesDown: when flapping ends with the target down, it pages as
// any outage does.
func TestFlappingSettlesDown(t *testing.T) {
	h := newHarness(t, chainConfig())
	s := signal(db, patrol.ClassTimeout, patrol.StatusDown)
	s.Flapping = true
	h.observe(s)
	h.run(time.Second)
	h.sink.take()
	h.down(db, patrol.ClassTimeout)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"firing noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestSinkFailure: a refused batch is offered again with the same keys.
func TestSinkFailure(t *testing.T) {
	h := newHarness(t, chainConfig())
	h.sink.fail = errors.New("outbox full")
	h.down(db, patrol.ClassRefused)
	err := h.e.Tick(context.Background(), h.now())
	if err == nil || !strings.Contains(err.Error(), "outbox full") {
		t.Fatalf("got %v, want the sink's error", err)
	}
	h.sink.fail = nil
	h.run(10 * time.Second)
	got := h.sink.take()
	if len(got) != 1 || got[0].Kind != patrol.NotifyFiring {
		t.Fatalf("got %v, want the firing notice once", sent(got))
	}
	a := h.one(alert.Filter{})
	if want := a.ID + "/firing/0/noc"; got[0].Key != want {
		t.Errorf("got key %q, want %q", got[0].Key, want)
	}
	if st := h.e.Stats(); st.SinkErrors != 1 || st.Notifications != 1 {
		t.Errorf("got stats %+v, want 1 sink error, 1 notification", st)
	}
}

// TestFindings raises and clears security and configuration findings and anomalies.
func TestFindings(t *testing.T) {
	h := newHarness(t, alert.Config{Grouping: alert.Grouping{GroupWait: -1}})
	ctx := context.Background()
	f := patrol.Finding{Class: patrol.AlertSecurity, Rule: "unauthorised_port", Subject: "tcp://10.0.0.5:6379",
		Summary: "port 6379 open on 10.0.0.5 but not in the policy", Labels: map[string]string{"env": "prod"}, Active: true}
	if err := h.e.ObserveFinding(ctx, f); err != nil {
		t.Fatal(err)
	}
	pub := patrol.Finding{Class: patrol.AlertConfig, Rule: "public_bind", Subject: "host:10.0.0.5", Severity: "P0",
		Summary: "redis bound to 0.0.0.0", Active: true}
	if err := h.e.ObserveFinding(ctx, pub); err != nil {
		t.Fatal(err)
	}
	an := alert.Anomaly{Target: db, Metric: "connections", Score: 7.5, Why: "connections 3× the usual for a Monday 09:00", Active: true}
	if err := h.e.ObserveAnomaly(ctx, an); err != nil {
		t.Fatal(err)
	}
	h.run(5 * time.Minute)
	var got []string
	for _, a := range h.e.List(alert.Filter{}) {
		got = append(got, fmt.Sprintf("%s %s %s %s host=%s", a.Severity, a.Rule, a.Target, a.State, a.Labels["host"]))
	}
	want := []string{
		"P0 public_bind host:10.0.0.5 firing host=10.0.0.5",
		"P1 unauthorised_port tcp://10.0.0.5:6379 firing host=",
		"P3 anomaly:connections " + db + " firing host=",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	a := h.one(alert.Filter{Severities: []patrol.Severity{patrol.P3}})
	if a.Description != an.Why {
		t.Errorf("got description %q, want %q", a.Description, an.Why)
	}
	f.Active = false
	if err := h.e.ObserveFinding(ctx, f); err != nil {
		t.Fatal(err)
	}
	if got := h.e.List(alert.Filter{Matchers: mustMatchers(t, "alertname=unauthorised_port")}); len(got) != 0 {
		t.Errorf("got %d, want the finding cleared", len(got))
	}
	if err := h.e.ObserveFinding(ctx, patrol.Finding{Class: "weird", Subject: "x", Active: true}); err == nil {
		t.Error("unknown class: got no error")
	}
	if err := h.e.ObserveFinding(ctx, patrol.Finding{Class: patrol.AlertSecurity, Subject: "x", Severity: "P9", Active: true}); err == nil {
		t.Error("bad severity: got no error")
	}
}

// TestVanishedListener: the listener watch reports a vanished listener as a finding of
// class unreachable; it is the same incident as the probes' and a probe that is up
// again resolves it.
func TestVanishedListener(t *testing.T) {
	h := newHarness(t, chainConfig())
	ctx := context.Background()
	err := h.e.ObserveFinding(ctx, patrol.Finding{Class: patrol.AlertUnreachable, Subject: db, Summary: "listener on :5432 gone (postgres pid 812 exited)", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	h.down(db, patrol.ClassRefused)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"firing noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	h.up(db)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"resolved noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestAnomalyRule: the p95 of the latest durations over 3× the median of the hour.
func TestAnomalyRule(t *testing.T) {
	h := newHarness(t, alert.Config{Rules: alert.Rules{Anomaly: alert.AnomalyRule{Rule: alert.Rule{For: time.Second}, Window: 10}}})
	ok := func(d time.Duration) {
		s := signal(db, patrol.ClassOK, patrol.StatusUp)
		s.Result.Duration = d
		s.At = h.now()
		h.observe(s)
		h.run(10 * time.Second)
	}
	for range 60 {
		ok(20 * time.Millisecond)
	}
	if got := h.e.List(alert.Filter{}); len(got) != 0 {
		t.Fatalf("steady: got %v, want none", got)
	}
	for range 5 {
		ok(200 * time.Millisecond)
	}
	a := h.one(alert.Filter{})
	if a.Rule != "anomaly" || a.Severity != patrol.P3 || a.State != patrol.AlertFiring {
		t.Errorf("got %s %s %s, want anomaly P3 firing", a.Rule, a.Severity, a.State)
	}
	if !strings.Contains(a.Description, "median of 20ms") {
		t.Errorf("got description %q, want it to say why", a.Description)
	}
	for range 20 {
		ok(20 * time.Millisecond)
	}
	if got := h.e.List(alert.Filter{}); len(got) != 0 {
		t.Errorf("recovered: got %v, want none", got)
	}
}

func mustMatchers(t *testing.T, ss ...string) patrol.Matchers {
	t.Helper()
	ms, err := patrol.ParseMatchers(ss)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}
