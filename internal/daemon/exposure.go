package daemon

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// exposureGroup is the findings of one audit that make one alert: those of one kind, on
// one host, about one process, under one policy rule.
type exposureGroup struct {
	host, kind, process, rule string
	pids                      []int
	findings                  []audit.Finding
}

// groupFindings gathers a report's findings into one alert per host, kind, process and
// policy rule, so a process holding 950 unauthorised ports raises one alert, not 950.
// A finding whose process is unknown (a remote host, an owner not readable) groups with
// the others of its host, kind and rule. The groups come in the report's order.
func groupFindings(rep *audit.Report) []*exposureGroup {
	pids := map[string]int{} // "host/port" → pid, from the inventory
	for _, h := range rep.Hosts {
		for _, op := range h.Open {
			for _, l := range op.Listeners {
				if l.PID != 0 {
					pids[h.Host+"/"+strconv.Itoa(int(op.Port))] = l.PID
				}
			}
		}
	}
	var out []*exposureGroup
	idx := map[string]*exposureGroup{}
	for _, f := range rep.Findings {
		k := strings.Join([]string{f.Host, string(f.Kind), f.Process, f.Rule}, "\x00")
		g := idx[k]
		if g == nil {
			g = &exposureGroup{host: f.Host, kind: string(f.Kind), process: f.Process, rule: f.Rule}
			idx[k] = g
			out = append(out, g)
		}
		g.findings = append(g.findings, f)
		if pid := pids[f.Host+"/"+strconv.Itoa(int(f.Port))]; pid != 0 && !slices.Contains(g.pids, pid) {
			g.pids = append(g.pids, pid)
		}
	}
	return out
}

// key identifies the group's alert across runs.
func (g *exposureGroup) key() string {
	if len(g.findings) == 1 && g.process == "" {
		return g.findings[0].Key()
	}
	return strings.Join([]string{g.kind, g.host, "process:" + g.process, g.rule}, "/")
}

// subject is the alert's subject: the host and port for a lone finding of an unknown
// process, otherwise the host and the process, stable while the ports change.
func (g *exposureGroup) subject() string {
	f := g.findings[0]
	if len(g.findings) == 1 && g.process == "" {
		if f.Port == 0 {
			return "host:" + f.Host
		}
		return fmt.Sprintf("%s:%d", f.Host, f.Port)
	}
	who := g.process
	if who == "" {
		who = "unknown process"
	}
	return g.host + " " + who
}

// who names the group's process: "redis-server (pid 4242)", "pid 4242", "an unknown
// process".
func (g *exposureGroup) who() string {
	pids := make([]string, len(g.pids))
	for i, p := range g.pids {
		pids[i] = strconv.Itoa(p)
	}
	switch {
	case g.process != "" && len(pids) > 0:
		return fmt.Sprintf("%s (pid %s)", g.process, strings.Join(pids, ", "))
	case g.process != "":
		return g.process
	case len(pids) > 0:
		return "pid " + strings.Join(pids, ", ")
	}
	return "an unknown process"
}

// finding is the group's alert: a lone finding as it is; several as one, with their
// ports collapsed into ranges ("950 ports of pid 4242, 20000–20949") and the most
// urgent severity.
func (g *exposureGroup) finding(name string, at time.Time, hostLabel func(string) string) patrol.Finding {
	af := auditFinding(name, g.findings[0], at)
	af.Subject = g.subject()
	af.Labels["host"] = hostLabel(g.host)
	if g.process != "" {
		af.Labels["process"] = g.process
	}
	if len(g.findings) == 1 {
		return af
	}
	delete(af.Labels, "port")
	sev := g.findings[0].Severity
	var ports []uint16
	for _, f := range g.findings {
		sev = min(sev, f.Severity)
		if f.Port != 0 {
			ports = append(ports, f.Port)
		}
	}
	af.Severity = sev.String()
	af.Summary = fmt.Sprintf("%s on %s: %d ports of %s, %s", g.kind, g.host, len(ports), g.who(), patrol.PortRanges(ports))
	var d strings.Builder
	fmt.Fprintf(&d, "%d findings of kind %s on %s, one alert for them all", len(g.findings), g.kind, g.host)
	if g.rule != "" {
		fmt.Fprintf(&d, " (policy rule at %s)", g.rule)
	}
	fmt.Fprintf(&d, ". The first: %s", g.findings[0].Message)
	af.Description = d.String()
	return af
}
