package alert_test

import (
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// A slow alert is P1; impact_rules make it P0 on a tier=critical target and leave it
// P1 elsewhere, and a rule of another severity does not apply.
func TestImpactRulesRaiseSeverityByLabels(t *testing.T) {
	cfg := chainConfig()
	cfg.ImpactRules = []alert.ImpactRule{
		{Match: map[string]string{"tier": "critical"}, From: "P1", To: "P0"},
		{Match: map[string]string{"tier": "gold"}, From: "P2", To: "P1"},
	}
	for _, tc := range []struct {
		tier string
		want patrol.Severity
	}{{"critical", patrol.P0}, {"gold", patrol.P1}, {"bronze", patrol.P1}} {
		t.Run(tc.tier, func(t *testing.T) {
			h := newHarness(t, cfg)
			target := "tcp://10.0.0.5:5432"
			for range 3 {
				s := slowSig(target, 2*time.Second)
				s.Labels["tier"] = tc.tier
				h.observe(s)
				h.run(30 * time.Second)
			}
			a := h.one(alert.Filter{})
			if a.Class != patrol.AlertSlow || a.Severity != tc.want {
				t.Errorf("tier=%s: got %s %s, want slow %s", tc.tier, a.Class, a.Severity, tc.want)
			}
		})
	}
}

func TestImpactRulesValidate(t *testing.T) {
	for _, tc := range []struct {
		rule alert.ImpactRule
		want string
	}{
		{alert.ImpactRule{To: "P0"}, "impact_rules[0].match: name at least one label"},
		{alert.ImpactRule{Match: map[string]string{"tier": "critical"}, To: "P9"}, `impact_rules[0].to: want P0, P1, P2 or P3, got "P9"`},
		{alert.ImpactRule{Match: map[string]string{"tier": "critical"}, From: "P0", To: "P1"}, "impact_rules[0].from: P0 is not less urgent than to P1"},
	} {
		cfg := chainConfig()
		cfg.ImpactRules = []alert.ImpactRule{tc.rule}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.rule, err, tc.want)
		}
	}
}
