package scan

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// DefaultAllow is the allow list when none is given: the loopback networks.
var DefaultAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// DefaultMaxHosts bounds how many addresses a scan may expand to when Scanner.MaxHosts
// is zero: a /16 of IPv4.
const DefaultMaxHosts = 1 << 16

// Host is one address to scan, with the target spec and host name it came from.
type Host struct {
	// Spec is the target as written: "localhost", "127.0.0.1", "127.0.0.0/30".
	Spec string `json:"target"`
	// Name is the host name that was resolved, empty for IP and CIDR targets.
	Name string     `json:"name,omitempty"`
	Addr netip.Addr `json:"addr"`
}

// NotAllowedError reports a target outside the allowed networks. The scanner returns it
// before it sends a single packet.
type NotAllowedError struct {
	Target string
	// Addr is the resolved address or the target's network that lies outside.
	Addr  string
	Allow []netip.Prefix
}

func (e *NotAllowedError) Error() string {
	allow := make([]string, len(e.Allow))
	for i, p := range e.Allow {
		allow[i] = p.String()
	}
	what := e.Target
	if e.Addr != "" && e.Addr != e.Target {
		what = fmt.Sprintf("%s (%s)", e.Target, e.Addr)
	}
	return fmt.Sprintf("refusing to scan %s: outside the allowed networks %s (widen with --allow CIDR)",
		what, strings.Join(allow, ", "))
}

// TargetError reports a target that cannot be parsed or resolved.
type TargetError struct {
	Target string
	Err    error
}

func (e *TargetError) Error() string { return fmt.Sprintf("target %q: %v", e.Target, e.Err) }

func (e *TargetError) Unwrap() error { return e.Err }

// allowed reports whether every address of p lies inside one prefix of allow.
func allowed(p netip.Prefix, allow []netip.Prefix) bool {
	for _, a := range allow {
		if a.Addr().Is4() == p.Addr().Is4() && a.Bits() <= p.Bits() && a.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

// Resolve turns target specs (host names, IPs and CIDRs) into the addresses to scan and
// checks every one against allow (nil means DefaultAllow) before anything is sent to
// them. A host name scans its first IPv4 address, or its first address when it has no
// IPv4 one; a CIDR scans every address in it, at most maxHosts in all (0 means
// DefaultMaxHosts). Host names are resolved with r (nil means net.DefaultResolver).
func Resolve(ctx context.Context, r *net.Resolver, specs []string, allow []netip.Prefix, maxHosts int) ([]Host, error) {
	if allow == nil {
		allow = DefaultAllow
	}
	if maxHosts <= 0 {
		maxHosts = DefaultMaxHosts
	}
	if r == nil {
		r = net.DefaultResolver
	}
	if len(specs) == 0 {
		return nil, &TargetError{Err: fmt.Errorf("no targets")}
	}
	// First pass: parse and check everything, so that a bad or forbidden target stops
	// the scan before a single connect.
	type planned struct {
		spec   string
		name   string
		prefix netip.Prefix
	}
	var plan []planned
	total := 0
	for _, spec := range specs {
		s := strings.TrimSpace(spec)
		if s == "" {
			return nil, &TargetError{Target: spec, Err: fmt.Errorf("empty target")}
		}
		var pl planned
		pl.spec = s
		switch {
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, &TargetError{Target: s, Err: fmt.Errorf("not a CIDR such as 127.0.0.0/24: %w", err)}
			}
			pl.prefix = p.Masked()
		default:
			if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
				pl.prefix = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
				break
			}
			addrs, err := r.LookupNetIP(ctx, "ip", s)
			if err != nil {
				return nil, &TargetError{Target: s, Err: err}
			}
			a, ok := pickAddr(addrs)
			if !ok {
				return nil, &TargetError{Target: s, Err: fmt.Errorf("no addresses")}
			}
			pl.name = s
			pl.prefix = netip.PrefixFrom(a, a.BitLen())
		}
		if !allowed(pl.prefix, allow) {
			addr := pl.prefix.String()
			if pl.prefix.IsSingleIP() {
				addr = pl.prefix.Addr().String()
			}
			return nil, &NotAllowedError{Target: s, Addr: addr, Allow: allow}
		}
		hostBits := pl.prefix.Addr().BitLen() - pl.prefix.Bits()
		if hostBits > 30 || total+(1<<hostBits) > maxHosts {
			return nil, &TargetError{Target: s, Err: fmt.Errorf("expands to more than %d addresses in all; scan smaller networks", maxHosts)}
		}
		total += 1 << hostBits
		plan = append(plan, pl)
	}
	hosts := make([]Host, 0, total)
	seen := make(map[netip.Addr]bool, total)
	for _, pl := range plan {
		for a := pl.prefix.Addr(); pl.prefix.Contains(a); a = a.Next() {
			if !seen[a] {
				seen[a] = true
				hosts = append(hosts, Host{Spec: pl.spec, Name: pl.name, Addr: a})
			}
			if !a.Next().IsValid() {
				break
			}
		}
	}
	return hosts, nil
}

func pickAddr(addrs []netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), true
		}
	}
	if len(addrs) > 0 {
		return addrs[0], true
	}
	return netip.Addr{}, false
}

// ParseAllow parses CIDRs (or single addresses) for an allow list.
func ParseAllow(specs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(specs))
	for _, s := range specs {
		for part := range strings.SplitSeq(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if p, err := netip.ParsePrefix(part); err == nil {
				out = append(out, p.Masked())
				continue
			}
			a, err := netip.ParseAddr(part)
			if err != nil {
				return nil, fmt.Errorf("allow %q: not a CIDR or an IP address", part)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out, nil
}
