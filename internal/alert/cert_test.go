package alert_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

const web = "https://shop.example/"

// certSig is a usable result whose leaf certificate expires at notAfter.
func certSig(now, notAfter time.Time) alert.Signal {
	s := signal(web, patrol.ClassOK, patrol.StatusUp)
	s.At = now
	s.Result.TLS = &patrol.TLSInfo{Version: "TLS 1.3", Subject: "shop.example", SAN: "shop.example",
		Issuer: "Example CA R3", NotAfter: notAfter}
	return s
}

// certAlerts lists the cert_expiry alerts as "severity state".
func certAlerts(h *harness) []string {
	var out []string
	for _, a := range h.e.List(alert.Filter{States: patrol.AlertStates}) {
		if a.Class == patrol.AlertCertExpiry {
			out = append(out, a.Severity.String()+" "+string(a.State))
		}
	}
	return out
}

// TestCertExpiryThresholds checks the severity each time left before expiry gives.
func TestCertExpiryThresholds(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name  string
		rule  alert.CertExpiryRule
		left  time.Duration
		want  []string
		words string
	}{
		{name: "far off", left: 60 * day},
		{name: "just over warn", left: 21*day + time.Minute},
		{name: "within warn", left: 20 * day, want: []string{"P3 firing"}, words: "expires in 20 days, on "},
		{name: "at critical", left: 7 * day, want: []string{"P2 firing"}, words: "expires in 7 days"},
		{name: "five days", left: 5*day - 3*time.Second, want: []string{"P2 firing"}, words: "expires in 5 days"},
		{name: "hours", left: 30 * time.Hour, want: []string{"P2 firing"}, words: "expires in 30 hours"},
		{name: "expired and accepted", left: -2 * day, want: []string{"P2 firing"}, words: "expired 2 days ago"},
		{name: "configured warn", rule: alert.CertExpiryRule{Warn: 40 * day, Critical: 30 * day}, left: 35 * day,
			want: []string{"P3 firing"}},
		{name: "configured critical", rule: alert.CertExpiryRule{Warn: 40 * day, Critical: 30 * day}, left: 25 * day,
			want: []string{"P2 firing"}},
		{name: "disabled", rule: alert.CertExpiryRule{Rule: alert.Rule{Disabled: true}}, left: day},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := chainConfig()
			cfg.Rules.CertExpiry = tt.rule
			h := newHarness(t, cfg)
			h.observe(certSig(h.now(), h.now().Add(tt.left)))
			if diff := cmp.Diff(tt.want, certAlerts(h), cmpEmpty); diff != "" {
				t.Fatalf("alerts (-want +got):\n%s", diff)
			}
			if tt.words == "" {
				return
			}
			a := h.one(alert.Filter{})
			if !strings.Contains(a.Summary, tt.words) || !strings.Contains(a.Summary, `"shop.example"`) ||
				!strings.Contains(a.Summary, `issued by "Example CA R3"`) {
				t.Errorf("got summary %q, want the certificate, its issuer and %q", a.Summary, tt.words)
			}
			if a.Rule != "cert_expiry" || a.Target != web {
				t.Errorf("got rule %q target %q, want cert_expiry on %s", a.Rule, a.Target, web)
			}
		})
	}
}

// TestCertExpiryEscalatesInPlace follows one certificate from 22 days before expiry to
// its renewal: one incident, P3 then P2 with an escalation notice, then resolved.
func TestCertExpiryEscalatesInPlace(t *testing.T) {
	h := newHarness(t, chainConfig())
	notAfter := h.now().Add(22 * 24 * time.Hour)
	probe := func() { h.observe(certSig(h.now(), notAfter)) }

	probe()
	if got := certAlerts(h); len(got) != 0 {
		t.Fatalf("22 days out: got %v, want no alert", got)
	}
	h.run(24*time.Hour + time.Minute)
	probe()
	h.run(time.Second)
	if diff := cmp.Diff([]string{"firing noc " + web + "/cert_expiry"}, sent(h.sink.take())); diff != "" {
		t.Fatalf("21 days out (-want +got):\n%s", diff)
	}
	first := h.one(alert.Filter{})
	if first.Severity != patrol.P3 || !first.Deadline.Equal(h.now().Add(-time.Second).Add(time.Hour)) {
		t.Fatalf("got %s due %s, want P3 due in an hour", first.Severity, first.Deadline)
	}
	if err := h.e.Ack(context.Background(), first.ID, "alice", "renewal ticket filed"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	h.sink.take()

	// Days pass; the renewal did not happen.
	h.run(14 * 24 * time.Hour)
	h.sink.take()
	probe()
	h.run(time.Second)
	a := h.one(alert.Filter{})
	if a.ID != first.ID || a.Severity != patrol.P2 || a.State != patrol.AlertAcknowledged {
		t.Errorf("acknowledged, 7 days out: got %s %s %s, want %s P2 acknowledged", a.ID, a.Severity, a.State, first.ID)
	}
	if got := sent(h.sink.take()); len(got) != 0 {
		t.Errorf("acknowledged: got %v, want no page for the raise", got)
	}

	// The same, unacknowledged: the raise is an escalation notice to everyone told.
	cfg := chainConfig()
	cfg.RepeatInterval = -1 // reminders are not what this is about
	h2 := newHarness(t, cfg)
	h2.run(time.Minute)
	h2.observe(certSig(h2.now(), h2.now().Add(10*24*time.Hour)))
	h2.run(time.Second)
	h2.sink.take()
	p3 := h2.one(alert.Filter{})
	h2.run(p3.Deadline.Sub(h2.now()) - time.Minute) // just before the P3 would escalate
	h2.observe(certSig(h2.now(), h2.now().Add(6*24*time.Hour)))
	h2.run(time.Second)
	raise := h2.sink.take()
	if diff := cmp.Diff([]string{"escalation noc " + web + "/cert_expiry"}, sent(raise)); diff != "" {
		t.Errorf("raise (-want +got):\n%s", diff)
	} else if got := raise[0].Alerts[0]; got.Severity != patrol.P2 || !strings.Contains(got.Summary, "expires in 6 days") {
		t.Errorf("raise notice carries %s %q, want P2 expiring in 6 days", got.Severity, got.Summary)
	}
	p2 := h2.one(alert.Filter{})
	if p2.ID != p3.ID || p2.Severity != patrol.P2 || p2.EscalationStep != 0 {
		t.Errorf("got %s %s step %d, want %s P2 step 0", p2.ID, p2.Severity, p2.EscalationStep, p3.ID)
	}
	if want := h2.now().Add(-time.Second).Add(30 * time.Minute); !p2.Deadline.Equal(want) {
		t.Errorf("got deadline %s, want %s: the P2's 30 minutes from the raise", p2.Deadline, want)
	}
	// The raise is sent once, and the chain goes on at the P2's pace.
	h2.run(30 * time.Minute)
	if diff := cmp.Diff([]string{"escalation sre-oncall " + web + "/cert_expiry"}, sent(h2.sink.take())); diff != "" {
		t.Errorf("after the P2 deadline (-want +got):\n%s", diff)
	}

	// Renewed: a certificate valid for 90 days resolves the incident.
	h2.observe(certSig(h2.now(), h2.now().Add(90*24*time.Hour)))
	h2.run(time.Second)
	want := []string{"resolved noc " + web + "/cert_expiry", "resolved sre-oncall " + web + "/cert_expiry"}
	if diff := cmp.Diff(want, sent(h2.sink.take())); diff != "" {
		t.Errorf("renewed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"P2 resolved"}, certAlerts(h2)); diff != "" {
		t.Errorf("renewed: alerts (-want +got):\n%s", diff)
	}
}

// TestCertExpiryWithoutTLS checks what a result without a certificate says: a usable
// one means the target no longer presents TLS; a failed one says nothing.
func TestCertExpiryWithoutTLS(t *testing.T) {
	h := newHarness(t, chainConfig())
	h.observe(certSig(h.now(), h.now().Add(3*24*time.Hour)))
	h.run(time.Second)
	h.down(web, patrol.ClassTimeout)
	h.run(time.Second)
	// Still open, muted by the target's P0.
	if diff := cmp.Diff([]string{"P2 silenced"}, certAlerts(h)); diff != "" {
		t.Errorf("after a timeout (-want +got):\n%s", diff)
	}
	h.up(web)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"P2 resolved"}, certAlerts(h)); diff != "" {
		t.Errorf("after a result without TLS (-want +got):\n%s", diff)
	}
}

// TestCertExpiryUnderUnreachable checks an expired certificate the probe refuses: the
// target is unreachable (P0), and that P0 mutes the expiry alert of the same target.
func TestCertExpiryUnderUnreachable(t *testing.T) {
	h := newHarness(t, chainConfig())
	s := certSig(h.now(), h.now().Add(-time.Hour))
	s.Status, s.Result.Class, s.Result.Error = patrol.StatusDown, patrol.ClassTLS, `certificate "shop.example" expired 1h0m0s ago`
	h.observe(s)
	h.run(time.Second)
	if diff := cmp.Diff([]string{"firing noc " + web + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, a := range h.e.List(alert.Filter{}) {
		if a.Class == patrol.AlertCertExpiry && (a.State != patrol.AlertSilenced || a.Severity != patrol.P2) {
			t.Errorf("got expiry alert %s %s, want P2 silenced under the P0", a.Severity, a.State)
		}
	}
	if got := len(h.e.List(alert.Filter{})); got != 2 {
		t.Errorf("got %d alerts, want the P0 and the muted expiry alert", got)
	}
}

func TestCertExpiryConfig(t *testing.T) {
	var c alert.Config
	if err := yaml.Unmarshal([]byte("rules:\n  cert_expiry: {warn: 720h, critical: 48h, disabled: false}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Rules.CertExpiry.Warn != 720*time.Hour || c.Rules.CertExpiry.Critical != 48*time.Hour {
		t.Errorf("decoded %+v, want warn 720h critical 48h", c.Rules.CertExpiry)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid config: got %v", err)
	}
	tests := []struct {
		rule  alert.CertExpiryRule
		field string
	}{
		{alert.CertExpiryRule{Warn: -time.Hour}, "rules.cert_expiry.warn"},
		{alert.CertExpiryRule{Critical: -time.Hour}, "rules.cert_expiry.critical"},
		{alert.CertExpiryRule{Warn: 48 * time.Hour, Critical: 48 * time.Hour}, "rules.cert_expiry.critical"},
		{alert.CertExpiryRule{Warn: 72 * time.Hour}, "rules.cert_expiry.critical"}, // default critical 168h
		{alert.CertExpiryRule{Critical: 600 * time.Hour}, "rules.cert_expiry.critical"},
		{alert.CertExpiryRule{Rule: alert.Rule{Severity: "P1"}}, "rules.cert_expiry.severity"},
		{alert.CertExpiryRule{Rule: alert.Rule{Count: 2}}, "rules.cert_expiry.count"},
	}
	for _, tt := range tests {
		err := alert.Config{Rules: alert.Rules{CertExpiry: tt.rule}}.Validate()
		var ce *alert.ConfigError
		if !errors.As(err, &ce) || ce.Field != tt.field {
			t.Errorf("%+v: got %v, want a ConfigError on %s", tt.rule, err, tt.field)
		}
	}
}

// TestCertExpiryRaiseSurvivesRestart checks that a raise notice owed when the engine
// stops is sent once after it starts again.
func TestCertExpiryRaiseSurvivesRestart(t *testing.T) {
	cfg := chainConfig()
	cfg.Grouping.GroupWait, cfg.Grouping.GroupInterval = 10*time.Second, 10*time.Second
	h := newHarness(t, cfg)
	h.observe(certSig(h.now(), h.now().Add(10*24*time.Hour)))
	h.run(11 * time.Second)
	h.sink.take()
	h.run(time.Minute)
	h.observe(certSig(h.now(), h.now().Add(6*24*time.Hour)))
	h.run(time.Second) // owed, waiting in its group
	if got := sent(h.sink.take()); len(got) != 0 {
		t.Fatalf("before group_interval: got %v, want nothing yet", got)
	}
	h.start()
	h.run(time.Minute)
	if diff := cmp.Diff([]string{"escalation noc " + web + "/cert_expiry"}, sent(h.sink.take())); diff != "" {
		t.Errorf("after a restart (-want +got):\n%s", diff)
	}
	if a := h.one(alert.Filter{}); a.Severity != patrol.P2 {
		t.Errorf("got %s, want P2", a.Severity)
	}
}
