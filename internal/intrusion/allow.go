package intrusion

import (
	"fmt"
	"net"
	"net/netip"
)

// AllowRule is one allowlist entry: a prefix and the rule that put it there, named
// in refusals ("config intrusion.allowlist[2] (monitoring)", "loopback",
// "host address on eth0").
type AllowRule struct {
	Prefix netip.Prefix
	Rule   string
}

// Allowlist holds the addresses that are never tracked and never banned. The zero
// value allows nothing; use NewAllowlist for the defaults. Safe for concurrent reads
// once built.
type Allowlist struct {
	rules []AllowRule
}

// NewAllowlist returns an allowlist of loopback (127.0.0.0/8, ::1), IPv4-mapped
// loopback, the given host addresses, and the configured rules.
func NewAllowlist(host []netip.Addr, rules []AllowRule) *Allowlist {
	a := &Allowlist{}
	a.rules = append(a.rules,
		AllowRule{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
		AllowRule{netip.MustParsePrefix("::1/128"), "loopback"},
		AllowRule{netip.MustParsePrefix("::ffff:127.0.0.0/104"), "loopback"},
	)
	for _, h := range host {
		h = h.Unmap()
		a.rules = append(a.rules, AllowRule{netip.PrefixFrom(h, h.BitLen()), "host address " + h.String()})
	}
	for _, r := range rules {
		r.Prefix = r.Prefix.Masked()
		a.rules = append(a.rules, r)
	}
	return a
}

// Match returns the rule that protects addr, if any.
func (a *Allowlist) Match(addr netip.Addr) (string, bool) {
	if a == nil {
		return "", false
	}
	addr = addr.Unmap()
	for i := range a.rules {
		if a.rules[i].Prefix.Contains(addr) {
			return a.rules[i].Rule, true
		}
	}
	return "", false
}

// Rules returns a copy of the allowlist's rules.
func (a *Allowlist) Rules() []AllowRule {
	if a == nil {
		return nil
	}
	return append([]AllowRule(nil), a.rules...)
}

// HostAddrs returns the addresses of this host's (this network namespace's)
// interfaces.
func HostAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("interface addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}
