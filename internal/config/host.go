package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/portpatrol/portpatrol/internal/hostwatch"
)

// HostWatchIgnore is host_watch.ignore as written: listeners never to learn. Ports are
// numbers or ranges ("9222", "20000-20999"); processes are command names or executable
// base names; cgroups are paths or path.Match patterns, matching what lies below them
// too. The defaults (hostwatch.DefaultIgnoredPorts and DefaultIgnoredProcesses) apply
// as well unless NoDefaults is set.
type HostWatchIgnore struct {
	Ports     []string `yaml:"ports"`
	Processes []string `yaml:"processes"`
	Cgroups   []string `yaml:"cgroups"`
	// EphemeralAfter is how long a listener on a port of the kernel's ephemeral range
	// must live to be learned (default 1h; negative: like any other port).
	EphemeralAfter time.Duration `yaml:"ephemeral_after"`
	// NoDefaults drops the default ports and processes.
	NoDefaults bool `yaml:"no_defaults"`
}

// DefaultForgetAfter is how long a learned listener stays gone, its process exited, before
// it is retired.
const DefaultForgetAfter = 24 * time.Hour

// DefaultEphemeralAfter is how long a listener on an ephemeral port must live to be
// learned.
const DefaultEphemeralAfter = time.Hour

// resolveHost resolves host_name and the host watch's settings.
func (c *Config) resolveHost(at func(path, format string, args ...any)) {
	c.HostName = strings.TrimSpace(c.Source.HostName)
	if c.Source.HostName != "" {
		if msg := hostNameProblem(c.Source.HostName); msg != "" {
			at("host_name", "%q: %s", c.Source.HostName, msg)
		}
	}
	if c.HostName == "" {
		c.HostName, _ = os.Hostname()
	}
	c.osHostName, _ = os.Hostname()
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				c.localAddrs = append(c.localAddrs, p.Addr().Unmap())
			}
		}
	}

	hw := c.Source.HostWatch
	c.HostWatch = hw
	if hw.ForgetAfter < 0 {
		at("host_watch.forget_after", "must not be negative, got %s", hw.ForgetAfter)
	}
	if c.HostWatch.ForgetAfter <= 0 {
		c.HostWatch.ForgetAfter = DefaultForgetAfter
	}
	ig := hostwatch.Ignore{EphemeralAfter: hw.Ignore.EphemeralAfter}
	if ig.EphemeralAfter == 0 {
		ig.EphemeralAfter = DefaultEphemeralAfter
	}
	ports, procs := hw.Ignore.Ports, hw.Ignore.Processes
	if !hw.Ignore.NoDefaults {
		ports = append(slices.Clone(hostwatch.DefaultIgnoredPorts), ports...)
		procs = append(slices.Clone(hostwatch.DefaultIgnoredProcesses), procs...)
	}
	for i, p := range hw.Ignore.Ports {
		if _, err := hostwatch.ParsePortRange(p); err != nil {
			at(fmt.Sprintf("host_watch.ignore.ports[%d]", i), "%v", err)
		}
	}
	for _, p := range ports {
		if r, err := hostwatch.ParsePortRange(p); err == nil {
			ig.Ports = append(ig.Ports, r)
		}
	}
	for i, p := range hw.Ignore.Processes {
		if strings.TrimSpace(p) == "" || strings.Contains(p, "/") {
			at(fmt.Sprintf("host_watch.ignore.processes[%d]", i), "%q: want a command name such as chrome (no path)", p)
		}
	}
	ig.Processes = procs
	for i, p := range hw.Ignore.Cgroups {
		if !strings.HasPrefix(p, "/") {
			at(fmt.Sprintf("host_watch.ignore.cgroups[%d]", i), "%q: want a cgroup path such as /system.slice/foo.service or a pattern such as /user.slice/*/app-*.scope", p)
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			at(fmt.Sprintf("host_watch.ignore.cgroups[%d]", i), "%q: %v", p, err)
			continue
		}
		ig.Cgroups = append(ig.Cgroups, p)
	}
	c.HostWatchIgnore = ig
}

// hostNameProblem says what is wrong with a host_name, or "".
func hostNameProblem(s string) string {
	if len(s) > 253 {
		return "longer than 253 characters"
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "must not hold spaces or control characters; want a name such as web-1 or web-1.example.com"
		}
	}
	return ""
}

// HostLabel returns the host label of host: HostName when host is this host (loopback,
// an unspecified address, an address of one of its interfaces, localhost, "local" as
// the audits say, or its own name), host otherwise. Every alert source labels this
// host with it, so grouping and inhibition see one machine.
func (c *Config) HostLabel(host string) string {
	if host == "" || c.HostName == "" {
		return host
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	switch {
	case h == "local" || h == "localhost" || strings.HasSuffix(h, ".localhost"),
		strings.EqualFold(h, c.HostName), c.osHostName != "" && strings.EqualFold(h, c.osHostName):
		return c.HostName
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	if err != nil {
		return host
	}
	a = a.WithZone("").Unmap()
	if a.IsLoopback() || a.IsUnspecified() || slices.Contains(c.localAddrs, a) {
		return c.HostName
	}
	return host
}
