package hostwatch

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// publicGroup is one public-bind alert: the listeners of one process that serve an
// internal service on every address. A process holding 950 such ports raises one
// alert, not 950.
type publicGroup struct {
	subject  string
	process  string
	pids     []int
	services []string
	ls       []*listener // sorted by protocol and port
	shown    string      // the ports the active alert names; "" when not active
}

// publicSubject is the subject of l's public-bind alert: "host:<host> process:<name>"
// for a known process, stable while its ports change, or the bind
// ("tcp://0.0.0.0:6379") when the process is unknown.
func (w *Watch) publicSubject(l *listener) string {
	if p := l.process(); p != "" {
		return "host:" + w.cfg.Host + " process:" + p
	}
	return l.key.id()
}

// judgePublicGroups raises, updates and clears the public-bind alerts, one per
// process: raised when a process first serves an internal service on a public
// address, raised again with the new ports when they change, cleared when none is
// left. The caller holds w.mu.
func (w *Watch) judgePublicGroups(now time.Time, evs *[]patrol.Finding) {
	groups := map[string]*publicGroup{}
	for _, l := range w.ls {
		if l.public == "" || len(l.socks) == 0 {
			continue
		}
		s := w.publicSubject(l)
		g := groups[s]
		if g == nil {
			g = &publicGroup{subject: s, process: l.process()}
			groups[s] = g
		}
		g.ls = append(g.ls, l)
		if pid := l.pid(); pid != 0 && !slices.Contains(g.pids, pid) {
			g.pids = append(g.pids, pid)
		}
		if !slices.Contains(g.services, l.public) {
			g.services = append(g.services, l.public)
		}
	}
	if w.publics == nil {
		w.publics = map[string]string{}
	}
	for _, s := range slices.Sorted(maps.Keys(groups)) {
		g := groups[s]
		slices.SortFunc(g.ls, func(a, b *listener) int {
			return cmp.Or(cmp.Compare(a.key.proto, b.key.proto), a.key.bind.Compare(b.key.bind))
		})
		slices.Sort(g.pids)
		slices.Sort(g.services)
		ports := g.ports()
		if w.publics[s] == ports {
			continue
		}
		w.publics[s] = ports
		*evs = append(*evs, w.publicEvent(g, now))
	}
	for _, s := range slices.Sorted(maps.Keys(w.publics)) {
		if groups[s] != nil {
			continue
		}
		delete(w.publics, s)
		e := patrol.Finding{Class: patrol.AlertConfig, Rule: RulePublicBind, Subject: s, At: now, Labels: w.publicLabels()}
		if p, ok := strings.CutPrefix(s, "host:"+w.cfg.Host+" process:"); ok {
			e.Labels["process"] = p
			e.Summary = fmt.Sprintf("%s no longer serves internal services on a public address", p)
		} else {
			e.Summary = fmt.Sprintf("%s no longer on a public address", s)
		}
		e.Description = "None of its listeners serves an internal service on every address of the host any more: bound elsewhere, or gone."
		*evs = append(*evs, e)
	}
}

func (w *Watch) publicLabels() map[string]string {
	labels := map[string]string{"source": "hostwatch"}
	if w.cfg.Host != "" {
		labels["host"] = w.cfg.Host
	}
	return labels
}

// ports is the group's ports by protocol, collapsed into ranges: "tcp 6379,
// 20000–20949; udp 5353".
func (g *publicGroup) ports() string {
	byProto := map[inventory.Proto][]uint16{}
	for _, l := range g.ls {
		byProto[l.key.proto] = append(byProto[l.key.proto], l.key.bind.Port())
	}
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(byProto)) {
		parts = append(parts, string(p)+" "+patrol.PortRanges(byProto[p]))
	}
	return strings.Join(parts, "; ")
}

// who is "redis-server (pid 4242)", "redis-server (pid 1, 2)", or "its process".
func (g *publicGroup) who() string {
	if g.process == "" {
		return "its process"
	}
	if len(g.pids) == 0 {
		return g.process
	}
	pids := make([]string, len(g.pids))
	for i, p := range g.pids {
		pids[i] = strconv.Itoa(p)
	}
	return fmt.Sprintf("%s (pid %s)", g.process, strings.Join(pids, ", "))
}

func (w *Watch) publicEvent(g *publicGroup, now time.Time) patrol.Finding {
	svc := strings.Join(g.services, ", ")
	first := g.ls[0]
	// The same labels however many ports: the alert stays one while its ports change.
	e := patrol.Finding{Class: patrol.AlertConfig, Rule: RulePublicBind, Subject: g.subject, Active: true, At: now, Labels: w.publicLabels()}
	if g.process != "" {
		e.Labels["process"] = g.process
	}
	if len(g.ls) == 1 {
		e.Summary = fmt.Sprintf("%s listens on a public address: %s", svc, w.name(first))
		e.Description = fmt.Sprintf("%s is usually meant for internal networks only, but %s listens on %s, every address of the host.",
			svc, w.owned(first, false), first.key.bind)
	} else {
		e.Summary = fmt.Sprintf("%s listens on public addresses: %d ports of %s, %s", svc, len(g.ls), g.who(), g.ports())
		binds := make([]string, 0, 3)
		for _, l := range g.ls[:min(3, len(g.ls))] {
			binds = append(binds, l.key.bind.String())
		}
		more := ""
		if len(g.ls) > 3 {
			more = fmt.Sprintf(" and %d more", len(g.ls)-3)
		}
		e.Description = fmt.Sprintf("%s is usually meant for internal networks only, but %s listens on every address of the host on %d ports (%s%s), one alert for them all.",
			svc, g.who(), len(g.ls), strings.Join(binds, ", "), more)
	}
	e.Labels["service"] = svc
	e.Description += " Bind it to 127.0.0.1 or a private address, or make sure a firewall keeps the ports closed from outside."
	return e
}
