package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// impactConfig pages "noc" at once and tells customers: acme through its status mail,
// everyone through the status webhook. Groups wait 30s, as by default.
func impactConfig() alert.Config {
	return alert.Config{
		Escalations: map[string][]alert.Step{"default": {{Receivers: []string{"noc"}}}},
		Grouping:    alert.Grouping{GroupBy: []string{alert.GroupByNothing}, GroupWait: 30 * time.Second, GroupInterval: time.Minute},
		Inhibit:     []alert.InhibitRule{},
		Impact: alert.Impact{
			Receivers: map[string][]string{"acme": {"acme-status-mail"}, alert.ImpactAll: {"status-webhook"}},
		},
	}
}

// impacts returns the impact notices among ns, as "receiver group [states]" lines
// with how many alerts each carries.
func impacts(ns []patrol.Notification) []string {
	var out []string
	for _, n := range ns {
		if n.Kind != patrol.NotifyImpact {
			continue
		}
		var states []string
		for _, a := range n.Alerts {
			states = append(states, string(a.State))
		}
		slices.Sort(states)
		states = slices.Compact(states)
		out = append(out, fmt.Sprintf("%s %s %d %s", n.Receiver, n.Group, len(n.Alerts), strings.Join(states, ",")))
	}
	slices.Sort(out)
	return out
}

// noInternals fails when an impact notice, as JSON or rendered, names a target, an
// address, an error or a rule.
func noInternals(t *testing.T, ns []patrol.Notification, internals ...string) {
	t.Helper()
	tpl, err := render.New(render.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Kind != patrol.NotifyImpact {
			continue
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := tpl.Render(n)
		if err != nil {
			t.Fatalf("render %s: %v", n.Key, err)
		}
		for _, s := range internals {
			for what, text := range map[string]string{"notification": string(b), "title": msg.Title, "body": msg.Body} {
				if strings.Contains(text, s) {
					t.Errorf("impact %s to %s: %s contains %q:\n%s", n.Key, n.Receiver, what, s, text)
				}
			}
		}
	}
}

// TestImpactOneNoticePerAudience: three ports of acme go down together → one notice to
// each of acme's receivers with all three; their return → one resolved notice each.
// Another customer is told through "*" only, in a notice of its own; an alert without
// the label, and the on-call page, tell no customer.
func TestImpactOneNoticePerAudience(t *testing.T) {
	h := newHarness(t, impactConfig())
	ports := []string{"tcp://10.1.2.3:6379", "tcp://10.1.2.3:6380", "tcp://10.1.2.4:443"}
	for _, p := range ports {
		h.down(p, patrol.ClassRefused, "customer=acme", "service=cache")
	}
	h.down("tcp://10.9.9.9:5432", patrol.ClassRefused, "customer=beta")
	h.down("tcp://10.7.7.7:22", patrol.ClassRefused, "team=infra")
	h.run(29 * time.Second)
	if got := impacts(h.sink.take()); len(got) != 0 {
		t.Fatalf("before group_wait got %v", got)
	}
	h.run(time.Second)
	got := h.sink.take()
	want := []string{
		"acme-status-mail customer=acme 3 firing",
		"status-webhook customer=acme 3 firing",
		"status-webhook customer=beta 1 firing",
	}
	if diff := cmp.Diff(want, impacts(got)); diff != "" {
		t.Errorf("impact notices (-want +got):\n%s", diff)
	}
	if n := len(got) - len(want); n != 5 {
		t.Errorf("got %d pages besides the impact notices, want 5 (one per alert to noc)", n)
	}
	noInternals(t, got, "10.1.2.3", "10.1.2.4", "10.9.9.9", "6379", "connection refused", "unreachable@", "tcp://")
	firstKeys := map[string]bool{}
	for _, n := range got {
		if n.Kind == patrol.NotifyImpact {
			firstKeys[n.Key] = true
		}
	}

	// Who heard of internals is unchanged: the customers are not in Told, so the
	// on-call resolve does not go to them.
	a := h.one(alert.Filter{Target: ports[0]})
	if diff := cmp.Diff([]string{"noc"}, a.Told); diff != "" {
		t.Errorf("Told (-want +got):\n%s", diff)
	}
	rec, _ := h.e.Get(a.ID)
	if rec.ImpactAudience != "customer=acme" || !slices.Equal(rec.ImpactTold, []string{"acme-status-mail", "status-webhook"}) {
		t.Errorf("got audience %q told %v, want customer=acme told both", rec.ImpactAudience, rec.ImpactTold)
	}

	h.run(10 * time.Minute)
	if got := impacts(h.sink.take()); len(got) != 0 {
		t.Errorf("while down got more notices %v", got)
	}
	for _, p := range ports {
		h.up(p, "customer=acme", "service=cache")
	}
	h.run(31 * time.Second)
	got = h.sink.take()
	want = []string{"acme-status-mail customer=acme 3 resolved", "status-webhook customer=acme 3 resolved"}
	if diff := cmp.Diff(want, impacts(got)); diff != "" {
		t.Errorf("resolved impact notices (-want +got):\n%s", diff)
	}
	for _, n := range got {
		if n.Kind == patrol.NotifyResolved && n.Receiver != "noc" {
			t.Errorf("on-call resolve went to %s", n.Receiver)
		}
		if n.Kind == patrol.NotifyImpact && firstKeys[n.Key] {
			t.Errorf("resolved impact notice reuses key %s", n.Key)
		}
	}
	noInternals(t, got, "10.1.2.3", "6379", "tcp://")
	for k, c := range h.sink.keys {
		if c > 1 {
			t.Errorf("key %s sent %d times", k, c)
		}
	}
}

// TestImpactHeldBack: severities not listed, silences, maintenance windows and flapping
// hold the notice back; acknowledging does not. A notice held back until the alert
// resolves is never sent, nor is its resolve.
func TestImpactHeldBack(t *testing.T) {
	const db = "tcp://10.1.2.3:6379"
	t.Run("severity", func(t *testing.T) {
		h := newHarness(t, impactConfig())
		err := h.e.ObserveFinding(context.Background(), patrol.Finding{Class: patrol.AlertConfig, Subject: db,
			Summary: "public bind", Labels: map[string]string{"customer": "acme"}, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		h.run(time.Minute)
		if got := impacts(h.sink.take()); len(got) != 0 {
			t.Errorf("P2 got %v, want no impact notice", got)
		}
	})
	t.Run("silence", func(t *testing.T) {
		h := newHarness(t, impactConfig())
		m, _ := patrol.ParseMatcher("customer=acme")
		sl, err := h.e.CreateSilence(context.Background(), patrol.Silence{Matchers: patrol.Matchers{m}, Author: "ops",
			Comment: "known", EndsAt: t0.Add(10 * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		h.down(db, patrol.ClassRefused, "customer=acme")
		h.run(5 * time.Minute)
		if got := impacts(h.sink.take()); len(got) != 0 {
			t.Fatalf("silenced got %v", got)
		}
		// The status page tells silences and maintenance windows from inhibition by
		// these words.
		if a := h.one(alert.Filter{}); !strings.HasPrefix(a.MutedBy, "silence "+sl.ID+" ") {
			t.Errorf("muted by %q, want it to begin with %q", a.MutedBy, "silence "+sl.ID)
		}
		// Still down when the silence is expired: now customers hear of it.
		if err := h.e.ExpireSilence(context.Background(), sl.ID, "ops"); err != nil {
			t.Fatal(err)
		}
		h.run(31 * time.Second)
		want := []string{"acme-status-mail customer=acme 1 firing", "status-webhook customer=acme 1 firing"}
		if diff := cmp.Diff(want, impacts(h.sink.take())); diff != "" {
			t.Errorf("after the silence (-want +got):\n%s", diff)
		}
	})
	t.Run("silenced before the notice went out", func(t *testing.T) {
		h := newHarness(t, impactConfig())
		h.down(db, patrol.ClassRefused, "customer=acme")
		h.run(10 * time.Second)
		m, _ := patrol.ParseMatcher("target=" + db)
		if _, err := h.e.CreateSilence(context.Background(), patrol.Silence{Matchers: patrol.Matchers{m}, Author: "ops",
			Comment: "known", EndsAt: t0.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		h.run(5 * time.Minute)
		h.up(db, "customer=acme")
		h.run(5 * time.Minute)
		if got := impacts(h.sink.take()); len(got) != 0 {
			t.Errorf("got %v, want none: the notice was taken back before it was sent", got)
		}
	})
	t.Run("maintenance", func(t *testing.T) {
		cfg := impactConfig()
		cfg.Maintenance = []alert.Window{{Name: "upgrade", Start: t0, End: t0.Add(time.Hour), Matchers: []string{"customer=acme"}}}
		h := newHarness(t, cfg)
		h.down(db, patrol.ClassRefused, "customer=acme")
		h.run(10 * time.Minute)
		h.up(db, "customer=acme")
		h.run(10 * time.Minute)
		if got := impacts(h.sink.take()); len(got) != 0 {
			t.Errorf("in maintenance got %v", got)
		}
	})
	t.Run("resolved within group_wait", func(t *testing.T) {
		h := newHarness(t, impactConfig())
		h.down(db, patrol.ClassRefused, "customer=acme")
		h.run(10 * time.Second)
		h.up(db, "customer=acme")
		h.run(5 * time.Minute)
		if got := impacts(h.sink.take()); len(got) != 0 {
			t.Errorf("got %v, want none", got)
		}
	})
	t.Run("flapping", func(t *testing.T) {
		h := newHarness(t, impactConfig())
		sig := signal(db, patrol.ClassRefused, patrol.StatusDown, "customer=acme")
		sig.Flapping = true
		h.observe(sig)
		h.run(5 * time.Minute)
		if got := impacts(h.sink.take()); len(got) != 0 {
			t.Errorf("flapping got %v", got)
		}
	})
	t.Run("acknowledged", func(t *testing.T) {
		h := newHarness(t, impactConfig())
		h.down(db, patrol.ClassRefused, "customer=acme")
		h.run(time.Second)
		if err := h.e.Ack(context.Background(), h.one(alert.Filter{}).ID, "alice", "on it"); err != nil {
			t.Fatal(err)
		}
		h.run(30 * time.Second)
		if got := impacts(h.sink.take()); len(got) != 2 {
			t.Errorf("acknowledged got %v, want the notice to both receivers", got)
		}
	})
	t.Run("inhibited", func(t *testing.T) {
		cfg := impactConfig()
		cfg.Inhibit = nil // the defaults: a P0 mutes the P1–P3 of its target
		h := newHarness(t, cfg)
		for _, f := range []patrol.Finding{
			{Class: patrol.AlertUnreachable, Subject: db, Summary: "down", Labels: map[string]string{"customer": "acme"}, Active: true},
			{Class: patrol.AlertSecurity, Subject: db, Summary: "scan", Labels: map[string]string{"customer": "acme"}, Active: true},
		} {
			if err := h.e.ObserveFinding(context.Background(), f); err != nil {
				t.Fatal(err)
			}
		}
		h.run(31 * time.Second)
		want := []string{"acme-status-mail customer=acme 2 firing", "status-webhook customer=acme 2 firing"}
		if diff := cmp.Diff(want, impacts(h.sink.take())); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}

// TestImpactRestart: an impact notice owed when the daemon dies is sent once after the
// restart, and a notice sent before a restart still gets its resolve after it.
func TestImpactRestart(t *testing.T) {
	const db = "tcp://10.1.2.3:6379"
	h := newHarness(t, impactConfig())
	h.down(db, patrol.ClassRefused, "customer=acme")
	h.run(10 * time.Second)
	h.start() // the group waits group_wait again from the restart
	h.run(31 * time.Second)
	want := []string{"acme-status-mail customer=acme 1 firing", "status-webhook customer=acme 1 firing"}
	if diff := cmp.Diff(want, impacts(h.sink.take())); diff != "" {
		t.Errorf("after the first restart (-want +got):\n%s", diff)
	}
	h.start()
	h.run(10 * time.Minute)
	if got := impacts(h.sink.take()); len(got) != 0 {
		t.Errorf("after the second restart got %v again", got)
	}
	h.up(db, "customer=acme")
	h.run(time.Minute)
	want = []string{"acme-status-mail customer=acme 1 resolved", "status-webhook customer=acme 1 resolved"}
	if diff := cmp.Diff(want, impacts(h.sink.take())); diff != "" {
		t.Errorf("resolve after the restart (-want +got):\n%s", diff)
	}
}

// TestImpactLabel: label picks what names the audience, severities which alerts count.
func TestImpactLabel(t *testing.T) {
	cfg := impactConfig()
	cfg.Impact = alert.Impact{Label: "service", Severities: []string{"P0"}, Receivers: map[string][]string{"checkout": {"shop-status"}}}
	h := newHarness(t, cfg)
	h.down("tcp://10.1.2.3:443", patrol.ClassRefused, "service=checkout", "customer=acme")
	h.down("tcp://10.1.2.3:80", patrol.ClassRefused, "service=blog")
	h.run(31 * time.Second)
	got := h.sink.take()
	if diff := cmp.Diff([]string{"shop-status service=checkout 1 firing"}, impacts(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, n := range got {
		if n.Kind != patrol.NotifyImpact {
			continue
		}
		if diff := cmp.Diff(map[string]string{"service": "checkout"}, n.Alerts[0].Labels); diff != "" {
			t.Errorf("impact alert labels (-want +got):\n%s", diff)
		}
	}
}

func TestImpactConfig(t *testing.T) {
	for _, tc := range []struct {
		name   string
		impact alert.Impact
		fields []string
	}{
		{"zero is off", alert.Impact{}, nil},
		{"label without receivers", alert.Impact{Label: "customer"}, []string{"impact.receivers"}},
		{"bad label", alert.Impact{Label: "cust-omer", Receivers: map[string][]string{"a": {"r"}}}, []string{"impact.label"}},
		{"internal label", alert.Impact{Label: "target", Receivers: map[string][]string{"a": {"r"}}}, []string{"impact.label"}},
		{"bad severity", alert.Impact{Severities: []string{"P0", "P9"}, Receivers: map[string][]string{"a": {"r"}}}, []string{"impact.severities[1]"}},
		{"no severities", alert.Impact{Severities: []string{}, Receivers: map[string][]string{"a": {"r"}}}, []string{"impact.severities"}},
		{"empty receivers", alert.Impact{Receivers: map[string][]string{"acme": {}}}, []string{"impact.receivers.acme"}},
		{"empty receiver name", alert.Impact{Receivers: map[string][]string{"acme": {"ok", " "}}}, []string{"impact.receivers.acme[1]"}},
		{"empty audience", alert.Impact{Receivers: map[string][]string{"": {"r"}}}, []string{"impact.receivers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := alert.Config{Impact: tc.impact}.Validate()
			var fields []string
			for _, e := range unwrapAll(err) {
				var ce *alert.ConfigError
				if errors.As(e, &ce) {
					fields = append(fields, ce.Field)
				}
			}
			if diff := cmp.Diff(tc.fields, fields); diff != "" {
				t.Errorf("fields at fault (-want +got):\n%s\nerror: %v", diff, err)
			}
		})
	}
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
		return out
	}
	return []error{err}
}
