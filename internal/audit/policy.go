package audit

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"go.yaml.in/yaml/v3"
)

// Policy is a declared port policy: per host, group or network, the ports that may be
// open (and who must own them, on which bind address), the ports that must be open, and
// time-limited exceptions. Build one with Load or Parse; a Policy is read-only after
// that and safe for concurrent use.
type Policy struct {
	// File names where the policy came from, for messages.
	File string
	// Severity maps each finding kind to its severity.
	Severity map[Kind]patrol.Severity
	// Groups maps a group name to its members (selectors).
	Groups map[string][]Selector
	// Ports is the port list scanned on each host unless a host entry overrides it.
	Ports []PortRange
	// Hosts are the host entries in file order.
	Hosts []HostRules
	// Exceptions are the time-limited exceptions in file order.
	Exceptions []Exception
}

// Pos is a place in the policy file.
type Pos struct {
	Line, Col int
}

// PortRange is an inclusive range of ports; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether p lies in the range.
func (r PortRange) Contains(p uint16) bool { return r.Lo <= p && p <= r.Hi }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// SelectorKind says what a selector names.
type SelectorKind int

// The selector kinds.
const (
	SelectLocal SelectorKind = iota // "local": this host (also written localhost, 127.0.0.1, ::1)
	SelectName                      // a host name
	SelectAddr                      // one IP address
	SelectCIDR                      // a network
	SelectGroup                     // "group:NAME"
)

// Selector names hosts: "local", a host name, an IP, a CIDR or "group:NAME".
type Selector struct {
	Kind   SelectorKind
	Text   string
	Prefix netip.Prefix // for SelectAddr and SelectCIDR
}

func (s Selector) String() string { return s.Text }

// HostRules is one entry of the policy's hosts list.
type HostRules struct {
	Pos   Pos
	Match []Selector
	// Ports overrides the policy's scan ports for these hosts; nil means the default.
	Ports   []PortRange
	Allow   []AllowRule
	Require []PortRange
}

// The keywords an allow rule's bind list takes besides addresses and CIDRs.
const (
	BindLoopback = "loopback" // 127.0.0.0/8 and ::1
	BindAny      = "any"      // every address, wildcard binds included
)

// AllowRule permits ports to be open, optionally only when owned by a process or user
// and bound to certain addresses.
type AllowRule struct {
	Pos   Pos
	Ports []PortRange
	// Process, when set, is the owning process name (a glob such as "redis-*" works).
	Process string
	// User, when set, is the owning user name or numeric uid.
	User string
	// Bind lists where the port may be bound: "loopback", "any", IPs or CIDRs. Empty
	// means "loopback" for an internal service and "any" otherwise.
	Bind []string
	// Internal marks a service that must never bind beyond loopback. Nil means "if the
	// port is a well-known internal service's" (Redis, MySQL, PostgreSQL…).
	Internal *bool
}

// Exception permits what a finding would otherwise flag, for a host and port, until it
// expires.
type Exception struct {
	Pos     Pos
	Match   []Selector
	Ports   []PortRange
	Owner   string
	Reason  string
	Expires time.Time
	// Kinds limits the exception to these finding kinds; empty means all.
	Kinds []Kind
}

// Active reports whether the exception still applies at now.
func (e *Exception) Active(now time.Time) bool { return now.Before(e.Expires) }

// PolicyError is a problem at one place in a policy file.
type PolicyError struct {
	File string
	Pos  Pos
	// Path is the field path, such as hosts[0].allow[2].bind.
	Path string
	Msg  string
}

func (e *PolicyError) Error() string {
	loc := e.File
	if e.Pos.Line > 0 {
		loc = fmt.Sprintf("%s:%d:%d", e.File, e.Pos.Line, e.Pos.Col)
	}
	if e.Path == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Path, e.Msg)
}

// Load reads and validates a policy file.
func Load(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(file, data)
}

// Parse validates a policy; file names it in errors. Every problem found is reported,
// each as a *PolicyError with its line, column and field path, joined with errors.Join.
func Parse(file string, data []byte) (*Policy, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, &PolicyError{File: file, Pos: yamlErrPos(err), Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	d := &decoder{file: file}
	p := &Policy{File: file, Severity: DefaultSeverity(), Groups: map[string][]Selector{}, Ports: []PortRange{{1, 65535}}}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &PolicyError{File: file, Msg: "empty policy; it needs at least a hosts list"}
	}
	doc := root.Content[0]
	var groupNodes = map[string]*yaml.Node{}
	d.mapping(doc, "", fields{
		"severity": func(n *yaml.Node, at string) {
			d.mapping(n, at, nil, func(k *yaml.Node, v *yaml.Node, at string) {
				kind := Kind(k.Value)
				if !slices.Contains(Kinds, kind) {
					d.errorf(k, at, "unknown finding kind %q; valid: %s", k.Value, kindList())
					return
				}
				sev, err := patrol.ParseSeverity(d.str(v, at))
				if err != nil {
					d.errorf(v, at, "%v", err)
					return
				}
				p.Severity[kind] = sev
			})
		},
		"groups": func(n *yaml.Node, at string) {
			d.mapping(n, at, nil, func(k *yaml.Node, v *yaml.Node, at string) {
				if !validGroupName(k.Value) {
					d.errorf(k, at, "group name %q: use letters, digits, '-', '_' and '.'", k.Value)
					return
				}
				groupNodes[k.Value] = v
			})
		},
		"scan": func(n *yaml.Node, at string) {
			d.mapping(n, at, fields{
				"ports": func(n *yaml.Node, at string) { p.Ports = d.ports(n, at) },
			}, nil)
		},
		"hosts": func(n *yaml.Node, at string) {
			d.seq(n, at, func(n *yaml.Node, at string) { p.Hosts = append(p.Hosts, d.hostRules(n, at)) })
		},
		"exceptions": func(n *yaml.Node, at string) {
			d.seq(n, at, func(n *yaml.Node, at string) { p.Exceptions = append(p.Exceptions, d.exception(n, at)) })
		},
	}, nil)
	// Groups are resolved last, so that order in the file does not matter; a group may
	// not name another group.
	for name, n := range groupNodes {
		sels := d.selectors(n, "groups."+name)
		for _, s := range sels {
			if s.Kind == SelectGroup {
				d.errorf(n, "groups."+name, "a group may not contain another group (%s)", s.Text)
			}
		}
		p.Groups[name] = sels
	}
	check := func(sels []Selector, n Pos, at string) {
		for _, s := range sels {
			if s.Kind == SelectGroup {
				if _, ok := p.Groups[strings.TrimPrefix(s.Text, "group:")]; !ok {
					d.errs = append(d.errs, &PolicyError{File: file, Pos: n, Path: at, Msg: fmt.Sprintf("unknown group %q", s.Text)})
				}
			}
		}
	}
	for i, h := range p.Hosts {
		check(h.Match, h.Pos, fmt.Sprintf("hosts[%d].match", i))
	}
	for i, e := range p.Exceptions {
		check(e.Match, e.Pos, fmt.Sprintf("exceptions[%d].match", i))
	}
	if len(p.Hosts) == 0 && len(d.errs) == 0 {
		d.errs = append(d.errs, &PolicyError{File: file, Pos: Pos{doc.Line, doc.Column}, Msg: "no hosts: the policy must name at least one host entry"})
	}
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	return p, nil
}

func validGroupName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

func (d *decoder) hostRules(n *yaml.Node, at string) HostRules {
	h := HostRules{Pos: Pos{n.Line, n.Column}}
	d.mapping(n, at, fields{
		"match":   func(n *yaml.Node, at string) { h.Match = d.selectors(n, at) },
		"ports":   func(n *yaml.Node, at string) { h.Ports = d.ports(n, at) },
		"require": func(n *yaml.Node, at string) { h.Require = d.ports(n, at) },
		"allow": func(n *yaml.Node, at string) {
			d.seq(n, at, func(n *yaml.Node, at string) { h.Allow = append(h.Allow, d.allowRule(n, at)) })
		},
	}, nil)
	if n.Kind == yaml.MappingNode && len(h.Match) == 0 {
		d.errorf(n, at, "missing match: name the hosts (local, a host name, an IP, a CIDR or group:NAME)")
	}
	return h
}

func (d *decoder) allowRule(n *yaml.Node, at string) AllowRule {
	r := AllowRule{Pos: Pos{n.Line, n.Column}}
	if n.Kind == yaml.ScalarNode {
		// Shorthand: "- 22" or "- 8000-8099".
		r.Ports = d.ports(n, at)
		return r
	}
	d.mapping(n, at, fields{
		"port":    func(n *yaml.Node, at string) { r.Ports = d.ports(n, at) },
		"process": func(n *yaml.Node, at string) { r.Process = d.glob(n, at) },
		"user":    func(n *yaml.Node, at string) { r.User = d.str(n, at) },
		"bind": func(n *yaml.Node, at string) {
			for _, s := range d.strList(n, at) {
				if s == BindLoopback || s == BindAny {
					r.Bind = append(r.Bind, s)
					continue
				}
				if _, err := parsePrefix(s); err != nil {
					d.errorf(n, at, "%q: want loopback, any, an IP address or a CIDR", s)
					continue
				}
				r.Bind = append(r.Bind, s)
			}
		},
		"internal": func(n *yaml.Node, at string) {
			b, ok := d.bool(n, at)
			if ok {
				r.Internal = &b
			}
		},
	}, nil)
	if n.Kind == yaml.MappingNode && len(r.Ports) == 0 {
		d.errorf(n, at, "missing port")
	}
	return r
}

func (d *decoder) exception(n *yaml.Node, at string) Exception {
	e := Exception{Pos: Pos{n.Line, n.Column}}
	var sawExpiry bool
	d.mapping(n, at, fields{
		"match":  func(n *yaml.Node, at string) { e.Match = d.selectors(n, at) },
		"port":   func(n *yaml.Node, at string) { e.Ports = d.ports(n, at) },
		"owner":  func(n *yaml.Node, at string) { e.Owner = d.str(n, at) },
		"reason": func(n *yaml.Node, at string) { e.Reason = d.str(n, at) },
		"expires": func(n *yaml.Node, at string) {
			sawExpiry = true
			s := d.str(n, at)
			if t, err := time.Parse(time.DateOnly, s); err == nil {
				e.Expires = t
				return
			}
			if t, err := time.Parse(time.RFC3339, s); err == nil {
				e.Expires = t
				return
			}
			d.errorf(n, at, "%q is not a date (2026-12-31) or an RFC 3339 time", s)
		},
		"kinds": func(n *yaml.Node, at string) {
			for _, s := range d.strList(n, at) {
				if !slices.Contains(Kinds, Kind(s)) {
					d.errorf(n, at, "unknown finding kind %q; valid: %s", s, kindList())
					continue
				}
				e.Kinds = append(e.Kinds, Kind(s))
			}
		},
	}, nil)
	if n.Kind != yaml.MappingNode {
		return e
	}
	for _, f := range []struct {
		name string
		ok   bool
	}{{"match", len(e.Match) > 0}, {"port", len(e.Ports) > 0}, {"owner", e.Owner != ""}, {"reason", e.Reason != ""}, {"expires", sawExpiry}} {
		if !f.ok {
			d.errorf(n, at, "missing %s: an exception needs match, port, owner, reason and expires", f.name)
		}
	}
	return e
}

// decoder walks a YAML tree, collecting every error with its position and path.
type decoder struct {
	file string
	errs []error
}

type fields map[string]func(n *yaml.Node, at string)

func (d *decoder) errorf(n *yaml.Node, at, format string, args ...any) {
	d.errs = append(d.errs, &PolicyError{File: d.file, Pos: Pos{n.Line, n.Column}, Path: at, Msg: fmt.Sprintf(format, args...)})
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

// mapping checks that n is a mapping and hands each value to its field's function, or
// to each when fields is nil (free-form keys). Unknown and repeated keys are errors.
func (d *decoder) mapping(n *yaml.Node, at string, fs fields, each func(k, v *yaml.Node, at string)) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		if n.Tag == "!!null" {
			return
		}
		d.errorf(n, at, "want a mapping (key: value lines), got %s", describe(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" {
			d.errorf(k, at, "merge keys (<<) are not supported")
			continue
		}
		if seen[k.Value] {
			d.errorf(k, join(at, k.Value), "repeated key")
			continue
		}
		seen[k.Value] = true
		if fs == nil {
			each(k, v, join(at, k.Value))
			continue
		}
		f, ok := fs[k.Value]
		if !ok {
			valid := make([]string, 0, len(fs))
			for name := range fs {
				valid = append(valid, name)
			}
			slices.Sort(valid)
			d.errorf(k, join(at, k.Value), "unknown field; valid here: %s", strings.Join(valid, ", "))
			continue
		}
		f(v, join(at, k.Value))
	}
}

func (d *decoder) seq(n *yaml.Node, at string, each func(n *yaml.Node, at string)) {
	if n.Kind != yaml.SequenceNode {
		if n.Tag == "!!null" {
			return
		}
		d.errorf(n, at, "want a list, got %s", describe(n))
		return
	}
	for i, c := range n.Content {
		each(c, fmt.Sprintf("%s[%d]", at, i))
	}
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func (d *decoder) str(n *yaml.Node, at string) string {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errorf(n, at, "want a single value, got %s", describe(n))
		return ""
	}
	return strings.TrimSpace(n.Value)
}

func (d *decoder) bool(n *yaml.Node, at string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		var b bool
		if err := n.Decode(&b); err == nil {
			return b, true
		}
	}
	d.errorf(n, at, "want true or false, got %s", describe(n))
	return false, false
}

func (d *decoder) glob(n *yaml.Node, at string) string {
	s := d.str(n, at)
	if _, err := path.Match(s, ""); err != nil {
		d.errorf(n, at, "bad pattern %q: %v", s, err)
	}
	return s
}

// strList accepts one value or a list of values.
func (d *decoder) strList(n *yaml.Node, at string) []string {
	if n.Kind == yaml.ScalarNode {
		if s := d.str(n, at); s != "" {
			return []string{s}
		}
		return nil
	}
	var out []string
	d.seq(n, at, func(c *yaml.Node, at string) {
		if s := d.str(c, at); s != "" {
			out = append(out, s)
		}
	})
	return out
}

func (d *decoder) selectors(n *yaml.Node, at string) []Selector {
	var out []Selector
	items := d.strList(n, at)
	for _, s := range items {
		sel, err := ParseSelector(s)
		if err != nil {
			d.errorf(n, at, "%v", err)
			continue
		}
		out = append(out, sel)
	}
	return out
}

// ports accepts a port (22), a range ("8000-8099", "-" for all), a comma-separated
// list, or a YAML list of those.
func (d *decoder) ports(n *yaml.Node, at string) []PortRange {
	var out []PortRange
	for _, s := range d.strList(n, at) {
		rs, err := ParsePortRanges(s)
		if err != nil {
			d.errorf(n, at, "%v", err)
			continue
		}
		out = append(out, rs...)
	}
	return out
}

// ParseSelector parses a host selector: "local" (this host; "localhost", "127.0.0.1"
// and "::1" mean it too), "group:NAME", an IP address, a CIDR or a host name.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Selector{}, fmt.Errorf("empty host selector")
	case isLocalName(s):
		return Selector{Kind: SelectLocal, Text: s}, nil
	case strings.HasPrefix(s, "group:"):
		if !validGroupName(strings.TrimPrefix(s, "group:")) {
			return Selector{}, fmt.Errorf("bad group reference %q", s)
		}
		return Selector{Kind: SelectGroup, Text: s}, nil
	case strings.Contains(s, "/"):
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Selector{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/24", s)
		}
		return Selector{Kind: SelectCIDR, Text: s, Prefix: p.Masked()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return Selector{Kind: SelectAddr, Text: s, Prefix: netip.PrefixFrom(a, a.BitLen())}, nil
	}
	if !validHostName(s) {
		return Selector{}, fmt.Errorf("%q is not a host name, an IP address, a CIDR or group:NAME", s)
	}
	return Selector{Kind: SelectName, Text: strings.ToLower(s)}, nil
}

func validHostName(s string) bool {
	if len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// isLocalName reports the names that mean this host.
func isLocalName(s string) bool {
	switch strings.ToLower(s) {
	case "local", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}

// ParsePortRanges parses "22", "8000-8099", "-" (all ports), "-1024", "60000-" or a
// comma-separated list of those.
func ParsePortRanges(s string) ([]PortRange, error) {
	var out []PortRange
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty port list")
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		lo, hi := 1, 65535
		var err error
		if i := strings.IndexByte(item, '-'); i >= 0 {
			a, b := strings.TrimSpace(item[:i]), strings.TrimSpace(item[i+1:])
			if a != "" {
				if lo, err = portNum(a); err != nil {
					return nil, err
				}
			}
			if b != "" {
				if hi, err = portNum(b); err != nil {
					return nil, err
				}
			}
			if lo > hi {
				return nil, fmt.Errorf("port range %q runs backwards", item)
			}
		} else {
			if lo, err = portNum(item); err != nil {
				return nil, err
			}
			hi = lo
		}
		out = append(out, PortRange{uint16(lo), uint16(hi)})
	}
	return out, nil
}

func portNum(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%q is not a port 1-65535", s)
	}
	return n, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// yamlErrPos digs the line out of a yaml.v3 syntax error ("yaml: line 3: …").
func yamlErrPos(err error) Pos {
	msg := err.Error()
	if i := strings.Index(msg, "line "); i >= 0 {
		rest := msg[i+5:]
		j := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				return Pos{Line: n, Col: 1}
			}
		}
	}
	return Pos{}
}

func kindList() string {
	s := make([]string, len(Kinds))
	for i, k := range Kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}
