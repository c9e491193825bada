package config

import (
	"strings"
	"testing"
)

// Bad impact rules are refused with the file, line and column of the value at fault.
func TestImpactRulesErrorsCarryFileLine(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"no match", "alerting:\n  impact_rules:\n    - {to: P0}\n",
			"bad.yaml:3:7: alerting.impact_rules[0].match: name at least one label"},
		{"bad to", "alerting:\n  impact_rules:\n    - {match: {tier: critical}, from: P1, to: P7}\n",
			`bad.yaml:3:47: alerting.impact_rules[0].to: want P0, P1, P2 or P3, got "P7"`},
		{"lowers", "alerting:\n  impact_rules:\n    - match: {tier: critical}\n      from: P0\n      to: P1\n",
			"bad.yaml:4:13: alerting.impact_rules[0].from: P0 is not less urgent than to P1: impact rules only raise"},
		{"unknown field", "alerting:\n  impact_rules:\n    - {match: {tier: critical}, raise: P0}\n",
			`alerting.impact_rules[0].raise: unknown field "raise"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error\n  %v\nwant one containing\n  %s", err, tt.want)
			}
		})
	}
	c, err := Parse([]byte("alerting:\n  impact_rules:\n    - {match: {tier: critical}, from: P1, to: P0}\n"), "good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Alerting.ImpactRules; len(got) != 1 || got[0].To != "P0" || got[0].Match["tier"] != "critical" {
		t.Errorf("got %+v, want the rule parsed", got)
	}
}
