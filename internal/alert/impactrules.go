package alert

import (
	"fmt"
	"maps"
	"slices"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// ImpactRule raises the severity of the alerts whose labels say the business impact
// is larger: a `tier=critical` service's P1 becomes a P0. Rules only raise; the most
// urgent severity of the matching rules wins.
type ImpactRule struct {
	// Match lists labels an alert must all have; at least one.
	Match map[string]string `yaml:"match"`
	// From is the severity raised ("P1"); empty means any severity less urgent than To.
	From string `yaml:"from"`
	// To is the severity it becomes ("P0"); required, and more urgent than From.
	To string `yaml:"to"`
}

// impactRule is a compiled ImpactRule.
type impactRule struct {
	match   map[string]string
	from    patrol.Severity
	anyFrom bool
	to      patrol.Severity
}

// impactRules compiles Config.ImpactRules.
func (k *compiler) impactRules() {
	for i, r := range k.c.ImpactRules {
		f := fmt.Sprintf("impact_rules[%d]", i)
		ir := impactRule{match: maps.Clone(r.Match), anyFrom: r.From == ""}
		ok := true
		if len(r.Match) == 0 {
			k.bad(f+".match", "name at least one label, such as {tier: critical}")
			ok = false
		}
		for _, name := range slices.Sorted(maps.Keys(r.Match)) {
			if name == "" {
				k.bad(f+".match", "empty label name")
				ok = false
			}
		}
		to, err := patrol.ParseSeverity(r.To)
		if err != nil {
			k.bad(f+".to", "want P0, P1, P2 or P3, got %q", r.To)
			ok = false
		}
		ir.to = to
		if !ir.anyFrom {
			from, err := patrol.ParseSeverity(r.From)
			switch {
			case err != nil:
				k.bad(f+".from", "want P0, P1, P2 or P3, got %q", r.From)
				ok = false
			case ok && from <= to:
				k.bad(f+".from", "%s is not less urgent than to %s: impact rules only raise", from, to)
				ok = false
			}
			ir.from = from
		}
		if ok {
			k.s.impactRules = append(k.s.impactRules, ir)
		}
	}
}

// raise returns the severity of an alert of sev with labels after the impact rules.
func (s *settings) raise(sev patrol.Severity, labels map[string]string) patrol.Severity {
	out := sev
	for _, r := range s.impactRules {
		if r.anyFrom && sev <= r.to || !r.anyFrom && sev != r.from || r.to >= out {
			continue
		}
		match := true
		for k, v := range r.match {
			if labels[k] != v {
				match = false
				break
			}
		}
		if match {
			out = r.to
		}
	}
	return out
}
