package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/intrusion"
)

// Intrusion configures scan and brute-force detection from conntrack events and
// bans in portpatrol's own nftables table (see docs/security.md). The zero value is
// off; when on, bans are dry run unless dry_run is false. Zero thresholds and times
// mean the detector's and banner's defaults.
type Intrusion struct {
	Enabled bool `yaml:"enabled"`
	// DryRun decides and records bans without enforcing them; nil means true.
	DryRun *bool `yaml:"dry_run"`
	// NetNS is the network namespace whose flows are watched and whose traffic is
	// banned ("/run/netns/NAME"); empty means portpatrol's own.
	NetNS string `yaml:"netns"`

	FastWindow     time.Duration `yaml:"fast_window"`
	FastScore      int           `yaml:"fast_score"`
	SlowWindow     time.Duration `yaml:"slow_window"`
	SlowPorts      int           `yaml:"slow_ports"`
	HalfOpenWindow time.Duration `yaml:"half_open_window"`
	HalfOpen       int           `yaml:"half_open"`
	BruteWindow    time.Duration `yaml:"brute_window"`
	BruteAttempts  int           `yaml:"brute_attempts"`
	ShortLived     time.Duration `yaml:"short_lived"`
	AuthPorts      []uint16      `yaml:"auth_ports"`

	BanTime        time.Duration `yaml:"ban_time"`
	MaxBanTime     time.Duration `yaml:"max_ban_time"`
	RecidiveWindow time.Duration `yaml:"recidive_window"`
	MaxBansPerMin  int           `yaml:"max_bans_per_minute"`
	// Allowlist are addresses and networks ("10.0.0.0/8", "192.0.2.7") never tracked
	// or banned, besides loopback and this host's addresses.
	Allowlist []string `yaml:"allowlist"`
}

// IsDryRun reports whether bans are only decided: unless dry_run is false.
func (in Intrusion) IsDryRun() bool { return in.DryRun == nil || *in.DryRun }

// Detector returns the detector's configuration (the allowlist is the caller's).
func (in Intrusion) Detector() intrusion.Config {
	return intrusion.Config{FastWindow: in.FastWindow, FastScore: in.FastScore, SlowWindow: in.SlowWindow,
		SlowPorts: in.SlowPorts, HalfOpenWindow: in.HalfOpenWindow, HalfOpen: in.HalfOpen,
		BruteWindow: in.BruteWindow, BruteAttempts: in.BruteAttempts, ShortLived: in.ShortLived, AuthPorts: in.AuthPorts}
}

// IntrusionAllow returns intrusion.allowlist parsed, each entry named by its place in
// the file ("intrusion.allowlist[1] 10.9.0.0/16 at portpatrol.yaml:12"), so that a
// refused ban names the line that protects the address.
func (c *Config) IntrusionAllow() []intrusion.AllowRule { return c.intrusionAllow }

// resolveIntrusion checks the intrusion section.
func (c *Config) resolveIntrusion(at func(path, format string, args ...any), idx index) {
	in := c.Intrusion
	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"fast_window", in.FastWindow}, {"slow_window", in.SlowWindow}, {"half_open_window", in.HalfOpenWindow},
		{"brute_window", in.BruteWindow}, {"short_lived", in.ShortLived}, {"ban_time", in.BanTime},
		{"max_ban_time", in.MaxBanTime}, {"recidive_window", in.RecidiveWindow}} {
		if d.v < 0 {
			at("intrusion."+d.path, "must not be negative, got %s", d.v)
		}
	}
	for _, n := range []struct {
		path string
		v    int
	}{{"slow_ports", in.SlowPorts}, {"half_open", in.HalfOpen}, {"brute_attempts", in.BruteAttempts}, {"max_bans_per_minute", in.MaxBansPerMin}} {
		if n.v < 0 {
			at("intrusion."+n.path, "must not be negative, got %d", n.v)
		}
	}
	if in.FastScore < 0 || in.FastScore > intrusion.MaxFastScore {
		at("intrusion.fast_score", "must be between 1 and %d (a port below 1024 weighs 3, others 1), got %d; the default is 21", intrusion.MaxFastScore, in.FastScore)
	}
	if in.SlowPorts > 1000 {
		at("intrusion.slow_ports", "must be at most 1000, got %d; the default is 25", in.SlowPorts)
	}
	if in.MaxBanTime > 0 && in.BanTime > in.MaxBanTime {
		at("intrusion.max_ban_time", "%s is shorter than ban_time %s", in.MaxBanTime, in.BanTime)
	}
	for i, p := range in.AuthPorts {
		if p == 0 {
			at(fmt.Sprintf("intrusion.auth_ports[%d]", i), "port 0 is not a port; want 1-65535")
		}
	}
	if in.NetNS != "" && !filepath.IsAbs(in.NetNS) {
		at("intrusion.netns", "%q: want the path of a network namespace, such as /run/netns/NAME", in.NetNS)
	}
	c.intrusionAllow = nil
	for i, s := range in.Allowlist {
		path := fmt.Sprintf("intrusion.allowlist[%d]", i)
		p, err := parsePrefixOrAddr(s)
		if err != nil {
			at(path, "%q is not an address or a network (want e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32)", s)
			continue
		}
		n := idx.near(path)
		c.intrusionAllow = append(c.intrusionAllow, intrusion.AllowRule{Prefix: p,
			Rule: fmt.Sprintf("%s %s at %s:%d", path, p, c.File, n.Line)})
	}
}

func parsePrefixOrAddr(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
