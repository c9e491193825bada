// Package audit checks hosts against a declared port policy: which ports may be open
// where, owned by whom and bound to which addresses, which must be open, and which
// exceptions have run out. It scans through a Scanner and, for this host, reads the
// local socket inventory through an Inventory; both are interfaces the caller wires up.
// Findings are typed data (kind, host, port, severity), so a CLI can print them, CI can
// gate on them and a scheduler can turn them into alerts.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Kind is the kind of a finding.
type Kind string

// The finding kinds.
const (
	// UnauthorisedOpen: an open port that no allow rule or active exception permits.
	UnauthorisedOpen Kind = "unauthorised_open"
	// RequiredClosed: a port the policy requires is not open.
	RequiredClosed Kind = "required_closed"
	// WrongOwner: an allowed port owned by another process or user than the rule says.
	WrongOwner Kind = "wrong_owner"
	// PublicBind: a service bound to an address its rule does not allow, beyond
	// loopback — typically an internal service (Redis, MySQL…) on a public address.
	PublicBind Kind = "public_bind"
	// ExceptionExpired: an exception for this host is past its expiry date.
	ExceptionExpired Kind = "exception_expired"
)

// Kinds lists every finding kind in a stable order.
var Kinds = []Kind{UnauthorisedOpen, RequiredClosed, WrongOwner, PublicBind, ExceptionExpired}

// DefaultSeverity returns the severity of each kind when the policy does not say:
// unauthorised open ports, wrong owners and public binds are P1; a required port that is
// closed is P0 (the door is gone); an expired exception is P3 (tidy the policy).
func DefaultSeverity() map[Kind]patrol.Severity {
	return map[Kind]patrol.Severity{
		UnauthorisedOpen: patrol.P1,
		RequiredClosed:   patrol.P0,
		WrongOwner:       patrol.P1,
		PublicBind:       patrol.P1,
		ExceptionExpired: patrol.P3,
	}
}

// Finding is one breach of the policy.
type Finding struct {
	Kind     Kind
	Severity patrol.Severity
	// Host is the target as the policy or command line named it ("local", "db1").
	Host string
	// Addr is the address scanned, when there was one.
	Addr netip.Addr
	// Port is the port concerned; 0 for findings about the host as a whole.
	Port    uint16
	Message string
	// Process, User and Bind describe the listener, when the inventory knows it.
	Process string
	User    string
	Bind    string
	// Rule is where in the policy the rule or exception concerned is ("policy.yaml:12:7").
	Rule string
}

// MarshalJSON renders the severity as "P1" and leaves out empty fields.
func (f Finding) MarshalJSON() ([]byte, error) {
	var addr string
	if f.Addr.IsValid() {
		addr = f.Addr.String()
	}
	return json.Marshal(struct {
		Kind     Kind   `json:"kind"`
		Severity string `json:"severity"`
		Host     string `json:"host"`
		Addr     string `json:"addr,omitempty"`
		Port     uint16 `json:"port,omitempty"`
		Message  string `json:"message"`
		Process  string `json:"process,omitempty"`
		User     string `json:"user,omitempty"`
		Bind     string `json:"bind,omitempty"`
		Rule     string `json:"rule,omitempty"`
	}{f.Kind, f.Severity.String(), f.Host, addr, f.Port, f.Message, f.Process, f.User, f.Bind, f.Rule})
}

// Key identifies the finding across runs, for deduplicating alerts:
// kind/host/port[/bind].
func (f Finding) Key() string {
	k := fmt.Sprintf("%s/%s/%d", f.Kind, f.Host, f.Port)
	if f.Bind != "" {
		k += "/" + f.Bind
	}
	return k
}

// Listener is one listening TCP socket of this host, as the inventory sees it.
type Listener struct {
	Addr netip.Addr `json:"addr"` // the bind address; 0.0.0.0 or :: for a wildcard bind
	Port uint16     `json:"port"`
	// Process is the owning process's name and PID its id; empty and 0 when unknown
	// (for instance, without permission to read another user's /proc entries).
	Process string `json:"process,omitempty"`
	PID     int    `json:"pid,omitempty"`
	// User is the owner's user name, or its uid in decimal when the name is unknown.
	User string `json:"user,omitempty"`
}

// Inventory lists this host's listening TCP sockets.
type Inventory interface {
	Listeners(ctx context.Context) ([]Listener, error)
}

// HostScan is what a scan found on one address.
type HostScan struct {
	Addr     netip.Addr
	Open     []uint16
	Filtered []uint16 // no answer: neither open nor closed
}

// Scanner scans ports of one target (a host name, IP address or CIDR) and returns one
// HostScan per address.
type Scanner interface {
	Scan(ctx context.Context, target string, ports []uint16) ([]HostScan, error)
}

// OpenPort is an open port of an audited host and what the audit made of it.
type OpenPort struct {
	Port      uint16     `json:"port"`
	Listeners []Listener `json:"listeners,omitempty"`
	// Verdict is "allowed", "exception" or "unauthorised".
	Verdict string `json:"verdict"`
	// Rule is where the allow rule or exception that permits it is.
	Rule string `json:"rule,omitempty"`
}

// HostAudit is the audit of one address.
type HostAudit struct {
	Host string     `json:"host"`
	Addr netip.Addr `json:"addr"`
	// Inventory says whether the local socket inventory was used.
	Inventory bool       `json:"inventory"`
	Scanned   int        `json:"ports_scanned"`
	Open      []OpenPort `json:"open"`
	Required  []uint16   `json:"required,omitempty"`
	// Notes are things the audit could not check, such as an owner it could not read.
	Notes []string `json:"notes,omitempty"`
}

// Report is the outcome of an audit.
type Report struct {
	Policy   string      `json:"policy"`
	Time     time.Time   `json:"time"`
	Hosts    []HostAudit `json:"hosts"`
	Findings []Finding   `json:"findings"`
}

// TargetError reports a target the policy does not name.
type TargetError struct {
	Target string
	Reason string
}

func (e *TargetError) Error() string { return fmt.Sprintf("target %q: %s", e.Target, e.Reason) }

// localScanAddr is what the scanner is asked to scan for the local host.
const localScanAddr = "127.0.0.1"

// Run audits targets (host names, IPs, CIDRs, local or group:NAME) against p — all the
// hosts the policy names when targets is empty:
// it scans each, reads the inventory for this host (inv may be nil), and returns every
// finding, judged at now. A target the policy does not name fails with *TargetError
// before anything is scanned.
func Run(ctx context.Context, p *Policy, sc Scanner, inv Inventory, now time.Time, targets ...string) (*Report, error) {
	if len(targets) == 0 {
		targets = p.Targets()
	}
	targets = p.expandTargets(targets)
	for _, t := range targets {
		if !p.Names(t) {
			return nil, &TargetError{Target: t, Reason: "not named by the policy; an audit scans only what its policy names"}
		}
	}
	rep := &Report{Policy: p.File, Time: now, Findings: []Finding{}}
	var listeners []Listener
	var invErr error
	invRead := false
	for _, target := range targets {
		ports := p.portsFor(target)
		scanTarget := target
		if isLocalName(target) {
			scanTarget = localScanAddr
		}
		hs, err := sc.Scan(ctx, scanTarget, ports)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", target, err)
		}
		for _, h := range hs {
			var local []Listener
			useInv := inv != nil && h.Addr.IsLoopback()
			if useInv {
				if !invRead {
					listeners, invErr = inv.Listeners(ctx)
					invRead = true
				}
				if invErr == nil {
					local = listenersFor(listeners, h.Addr, isLocalName(target))
				}
			}
			ha, fs := p.auditHost(target, h, len(ports), local, useInv && invErr == nil, now)
			if useInv && invErr != nil {
				ha.Notes = append(ha.Notes, fmt.Sprintf("local socket inventory unavailable: %v", invErr))
			}
			rep.Hosts = append(rep.Hosts, ha)
			rep.Findings = append(rep.Findings, fs...)
		}
	}
	return rep, nil
}

// expandTargets replaces group:NAME targets with the group's members.
func (p *Policy) expandTargets(targets []string) []string {
	var out []string
	for _, t := range targets {
		members, ok := p.Groups[strings.TrimPrefix(t, "group:")]
		if !strings.HasPrefix(t, "group:") || !ok {
			out = append(out, t)
			continue
		}
		for _, m := range members {
			out = append(out, m.Text)
		}
	}
	return out
}

// listenersFor picks the listeners reachable at addr: those bound to it or to the
// wildcard. For the local host as a whole, every listener counts.
func listenersFor(all []Listener, addr netip.Addr, wholeHost bool) []Listener {
	var out []Listener
	for _, l := range all {
		if wholeHost || l.Addr == addr || l.Addr.IsUnspecified() {
			out = append(out, l)
		}
	}
	return out
}

// Targets returns the hosts the policy names, groups expanded, in file order and
// without repeats.
func (p *Policy) Targets() []string {
	var out []string
	seen := map[string]bool{}
	add := func(s Selector) {
		t := s.Text
		if s.Kind == SelectLocal {
			t = "local"
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	for _, h := range p.Hosts {
		for _, s := range h.Match {
			if s.Kind == SelectGroup {
				for _, m := range p.Groups[strings.TrimPrefix(s.Text, "group:")] {
					add(m)
				}
				continue
			}
			add(s)
		}
	}
	return out
}

// Names reports whether the policy's host entries name target: the same name, an
// address or network inside one of its selectors, or this host by any of its names.
func (p *Policy) Names(target string) bool {
	tsel, err := ParseSelector(target)
	if err != nil {
		return false
	}
	for _, h := range p.Hosts {
		for _, s := range p.expand(h.Match) {
			if covers(s, tsel) {
				return true
			}
		}
	}
	return false
}

func covers(s, t Selector) bool {
	switch {
	case s.Kind == SelectLocal:
		return t.Kind == SelectLocal
	case s.Kind == SelectName:
		return t.Kind == SelectName && s.Text == t.Text
	case (s.Kind == SelectAddr || s.Kind == SelectCIDR) && (t.Kind == SelectAddr || t.Kind == SelectCIDR):
		return s.Prefix.Bits() <= t.Prefix.Bits() && s.Prefix.Contains(t.Prefix.Addr())
	}
	return false
}

func (p *Policy) expand(sels []Selector) []Selector {
	var out []Selector
	for _, s := range sels {
		if s.Kind == SelectGroup {
			out = append(out, p.Groups[strings.TrimPrefix(s.Text, "group:")]...)
			continue
		}
		out = append(out, s)
	}
	return out
}

// matches reports whether selectors name the host scanned at addr for target.
func (p *Policy) matches(sels []Selector, target string, addr netip.Addr) bool {
	local := isLocalName(target)
	tsel, _ := ParseSelector(target)
	for _, s := range p.expand(sels) {
		switch s.Kind {
		case SelectLocal:
			if local {
				return true
			}
		case SelectName:
			if tsel.Kind == SelectName && tsel.Text == s.Text {
				return true
			}
		case SelectAddr, SelectCIDR:
			if addr.IsValid() && s.Prefix.Contains(addr) {
				return true
			}
		}
	}
	return false
}

// portsFor returns the ports to scan on target: the first matching host entry's ports,
// or else the policy's, plus every required port.
func (p *Policy) portsFor(target string) []uint16 {
	tsel, _ := ParseSelector(target)
	addr := tsel.Prefix.Addr()
	ranges := p.Ports
	overridden := false
	var required []PortRange
	for _, h := range p.Hosts {
		if !p.matches(h.Match, target, addr) {
			continue
		}
		if h.Ports != nil && !overridden {
			ranges, overridden = h.Ports, true
		}
		required = append(required, h.Require...)
	}
	var set [65536]bool
	for _, r := range append(slices.Clone(ranges), required...) {
		for q := int(r.Lo); q <= int(r.Hi); q++ {
			set[q] = true
		}
	}
	var out []uint16
	for q := 1; q < len(set); q++ {
		if set[q] {
			out = append(out, uint16(q))
		}
	}
	return out
}

func (p *Policy) pos(at Pos) string { return fmt.Sprintf("%s:%d:%d", p.File, at.Line, at.Col) }

// auditHost judges one scanned address.
func (p *Policy) auditHost(target string, h HostScan, scanned int, listeners []Listener, inv bool, now time.Time) (HostAudit, []Finding) {
	ha := HostAudit{Host: target, Addr: h.Addr, Inventory: inv, Scanned: scanned, Open: []OpenPort{}}
	var rules []*HostRules
	for i := range p.Hosts {
		if p.matches(p.Hosts[i].Match, target, h.Addr) {
			rules = append(rules, &p.Hosts[i])
		}
	}
	var excs []*Exception
	for i := range p.Exceptions {
		if p.matches(p.Exceptions[i].Match, target, h.Addr) {
			excs = append(excs, &p.Exceptions[i])
		}
	}
	var findings []Finding
	add := func(f Finding) {
		f.Host, f.Addr, f.Severity = target, h.Addr, p.Severity[f.Kind]
		findings = append(findings, f)
	}
	excused := func(kind Kind, port uint16) *Exception {
		for _, e := range excs {
			if e.Active(now) && inRanges(e.Ports, port) && (len(e.Kinds) == 0 || slices.Contains(e.Kinds, kind)) {
				return e
			}
		}
		return nil
	}
	expiredFor := func(port uint16) *Exception {
		for _, e := range excs {
			if !e.Active(now) && inRanges(e.Ports, port) {
				return e
			}
		}
		return nil
	}

	// Open ports: from the scan, and for the host as a whole from the inventory too.
	byPort := map[uint16][]Listener{}
	for _, l := range listeners {
		byPort[l.Port] = append(byPort[l.Port], l)
	}
	open := slices.Clone(h.Open)
	if isLocalName(target) {
		for port := range byPort {
			open = append(open, port)
		}
	}
	slices.Sort(open)
	open = slices.Compact(open)

	for _, port := range open {
		op := OpenPort{Port: port, Listeners: byPort[port]}
		rule := findAllow(rules, port)
		if rule == nil {
			if e := excused(UnauthorisedOpen, port); e != nil {
				op.Verdict, op.Rule = "exception", p.pos(e.Pos)
				ha.Open = append(ha.Open, op)
				continue
			}
			op.Verdict = "unauthorised"
			msg := fmt.Sprintf("port %d is open but no allow rule permits it", port)
			if e := expiredFor(port); e != nil {
				msg += fmt.Sprintf(" (the exception for %s expired %s)", e.Owner, e.Expires.Format(time.DateOnly))
			}
			f := Finding{Kind: UnauthorisedOpen, Port: port, Message: msg}
			if ls := byPort[port]; len(ls) > 0 {
				f.Process, f.User, f.Bind = ls[0].Process, ls[0].User, bindString(ls[0])
			}
			add(f)
			ha.Open = append(ha.Open, op)
			continue
		}
		op.Verdict, op.Rule = "allowed", p.pos(rule.Pos)
		ha.Open = append(ha.Open, op)
		ls := byPort[port]
		if (rule.Process != "" || rule.User != "") && len(ls) == 0 {
			if inv {
				ha.Notes = append(ha.Notes, fmt.Sprintf("port %d: no listener in the local inventory; owner not checked", port))
			} else {
				ha.Notes = append(ha.Notes, fmt.Sprintf("port %d: owner not checked (no local inventory for %s)", port, target))
			}
		}
		for _, l := range ls {
			if msg, unknown := ownerMismatch(rule, l); unknown != "" {
				ha.Notes = append(ha.Notes, fmt.Sprintf("port %d: %s", port, unknown))
			} else if msg != "" && excused(WrongOwner, port) == nil {
				add(Finding{Kind: WrongOwner, Port: port, Message: msg, Process: l.Process, User: l.User, Bind: bindString(l), Rule: p.pos(rule.Pos)})
			}
			if !bindAllowed(rule, port, l.Addr) && !l.Addr.IsLoopback() && excused(PublicBind, port) == nil {
				what := fmt.Sprintf("port %d", port)
				if svc, ok := internalService(port); ok {
					what = fmt.Sprintf("%s (port %d)", svc.Desc, port)
				}
				add(Finding{Kind: PublicBind, Port: port, Process: l.Process, User: l.User, Bind: bindString(l), Rule: p.pos(rule.Pos),
					Message: fmt.Sprintf("%s is bound to %s; the policy allows %s", what, bindString(l), strings.Join(effectiveBind(rule, port), ", "))})
			}
		}
	}

	// Required ports.
	for _, r := range rules {
		for _, rr := range r.Require {
			for q := int(rr.Lo); q <= int(rr.Hi); q++ {
				port := uint16(q)
				if slices.Contains(ha.Required, port) {
					continue
				}
				ha.Required = append(ha.Required, port)
				if slices.Contains(open, port) || excused(RequiredClosed, port) != nil {
					continue
				}
				msg := fmt.Sprintf("port %d is required but closed", port)
				if slices.Contains(h.Filtered, port) {
					msg = fmt.Sprintf("port %d is required but did not answer (filtered)", port)
				}
				add(Finding{Kind: RequiredClosed, Port: port, Message: msg, Rule: p.pos(r.Pos)})
			}
		}
	}
	slices.Sort(ha.Required)

	// Expired exceptions, once each.
	for _, e := range excs {
		if e.Active(now) {
			continue
		}
		var ports []string
		for _, r := range e.Ports {
			ports = append(ports, r.String())
		}
		port := uint16(0)
		if len(e.Ports) == 1 && e.Ports[0].Lo == e.Ports[0].Hi {
			port = e.Ports[0].Lo
		}
		add(Finding{Kind: ExceptionExpired, Port: port, Rule: p.pos(e.Pos),
			Message: fmt.Sprintf("exception for port %s (owner %s, reason %q) expired %s", strings.Join(ports, ","), e.Owner, e.Reason, e.Expires.Format(time.DateOnly))})
	}
	slices.SortStableFunc(findings, func(a, b Finding) int { return int(a.Port) - int(b.Port) })
	return ha, findings
}

func inRanges(rs []PortRange, p uint16) bool {
	for _, r := range rs {
		if r.Contains(p) {
			return true
		}
	}
	return false
}

func findAllow(rules []*HostRules, port uint16) *AllowRule {
	for _, h := range rules {
		for i := range h.Allow {
			if inRanges(h.Allow[i].Ports, port) {
				return &h.Allow[i]
			}
		}
	}
	return nil
}

// ownerMismatch compares a listener's owner with a rule's. It returns a message for a
// mismatch, or in unknown what could not be checked.
func ownerMismatch(r *AllowRule, l Listener) (msg, unknown string) {
	var bad []string
	if r.Process != "" {
		if l.Process == "" {
			return "", fmt.Sprintf("owning process unknown (the rule wants %s); run as root to see every process", r.Process)
		}
		if ok, _ := path.Match(r.Process, l.Process); !ok {
			bad = append(bad, fmt.Sprintf("process %s, want %s", l.Process, r.Process))
		}
	}
	if r.User != "" {
		if l.User == "" {
			return "", fmt.Sprintf("owning user unknown (the rule wants %s)", r.User)
		}
		if l.User != r.User {
			bad = append(bad, fmt.Sprintf("user %s, want %s", l.User, r.User))
		}
	}
	if len(bad) == 0 {
		return "", ""
	}
	return fmt.Sprintf("port %d is owned by the wrong %s", l.Port, strings.Join(bad, " and ")), ""
}

// internalService returns the well-known service on a TCP port when it must never
// listen beyond loopback unless a rule says so.
func internalService(port uint16) (patrol.Service, bool) {
	svc, ok := patrol.ServiceByPort("tcp", port)
	return svc, ok && svc.Internal
}

// internal reports whether the rule's service must stay on loopback.
func internal(r *AllowRule, port uint16) bool {
	if r.Internal != nil {
		return *r.Internal
	}
	_, ok := internalService(port)
	return ok
}

func effectiveBind(r *AllowRule, port uint16) []string {
	if len(r.Bind) > 0 {
		return r.Bind
	}
	if internal(r, port) {
		return []string{BindLoopback}
	}
	return []string{BindAny}
}

// bindAllowed reports whether a listener's bind address satisfies the rule.
func bindAllowed(r *AllowRule, port uint16, a netip.Addr) bool {
	for _, b := range effectiveBind(r, port) {
		switch b {
		case BindAny:
			return true
		case BindLoopback:
			if a.IsLoopback() {
				return true
			}
		default:
			if pre, err := parsePrefix(b); err == nil && !a.IsUnspecified() && pre.Contains(a.Unmap()) {
				return true
			}
		}
	}
	return false
}

func bindString(l Listener) string {
	if !l.Addr.IsValid() {
		return ""
	}
	return netip.AddrPortFrom(l.Addr, l.Port).String()
}

// Count returns how many findings there are of each severity, "P0".."P3".
func (r *Report) Count() map[string]int {
	m := map[string]int{}
	for _, f := range r.Findings {
		m[f.Severity.String()]++
	}
	return m
}
