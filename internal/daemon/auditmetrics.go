package daemon

import (
	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/prometheus/client_golang/prometheus"
)

// auditCollector exports the findings of each scheduled audit's latest run. Labels are
// the audit's name, the finding kind and its severity under the audit's policy: a fixed
// set per audit (one series per kind), never a port or a host.
type auditCollector struct{ d *Daemon }

var (
	auditFindingsDesc = prometheus.NewDesc("portpatrol_audit_findings",
		"Findings of a scheduled audit's latest run (open now), by audit, kind and severity; 0 for a kind it did not find. Absent until the audit first completes.",
		[]string{"audit", "kind", "severity"}, nil)
	auditLastRunDesc = prometheus.NewDesc("portpatrol_audit_last_success_timestamp_seconds",
		"When a scheduled audit last completed, in Unix seconds.", []string{"audit"}, nil)
)

func (c auditCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- auditFindingsDesc
	ch <- auditLastRunDesc
}

func (c auditCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.d.gen.Load()
	if g == nil {
		return
	}
	for _, r := range g.audits {
		rep := r.latest()
		if rep == nil {
			continue
		}
		n := map[audit.Kind]int{}
		for _, f := range rep.Findings {
			n[f.Kind]++
		}
		sevs := audit.DefaultSeverity()
		if r.cfg.Policy != nil {
			sevs = r.cfg.Policy.Severity
		}
		for _, k := range audit.Kinds {
			sev := sevs[k].String()
			ch <- prometheus.MustNewConstMetric(auditFindingsDesc, prometheus.GaugeValue, float64(n[k]), r.cfg.Name, string(k), sev)
		}
		ch <- prometheus.MustNewConstMetric(auditLastRunDesc, prometheus.GaugeValue, float64(rep.Time.UnixNano())/1e9, r.cfg.Name)
	}
}
