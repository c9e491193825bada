package config

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
)

// maxSocketPath is the longest path a Unix socket can be bound to on Linux.
const maxSocketPath = 107

// APISocket is api.socket resolved: a relative path is taken relative to the
// configuration file's directory; "" (the data directory's socket) and SocketOff are
// returned as they are.
func (c *Config) APISocket() string {
	s := c.API.Socket
	if s == "" || s == SocketOff || filepath.IsAbs(s) || c.File == "" {
		return s
	}
	return filepath.Join(filepath.Dir(c.File), s)
}

// checkAPI validates the api section's Host allowlist and limits.
func (c *Config) checkAPI(at func(path, format string, args ...any)) {
	for i, h := range c.API.Hosts {
		p := fmt.Sprintf("api.hosts[%d]", i)
		switch {
		case h == "*":
			if len(c.API.Hosts) > 1 {
				at(p, `"*" allows every Host header; give it alone or list the names`)
			}
		case h == "" || strings.ContainsAny(h, " \t/@?#*"):
			at(p, "%q is not a host name or IP address (e.g. portpatrol.example.com, 10.0.0.5)", h)
		case strings.Contains(h, ":"):
			// Only an IPv6 address has a colon; a name with a port does not belong here.
			if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")); err != nil {
				at(p, "%q: give the host without a port or scheme (e.g. portpatrol.example.com)", h)
			}
		}
	}
	if s := c.APISocket(); s != "" && s != SocketOff {
		if len(s) > maxSocketPath {
			at("api.socket", "%q is %d bytes long; a Unix socket path may have at most %d (choose a shorter path, or %q for none)", s, len(s), maxSocketPath, SocketOff)
		}
	}
	if c.API.MaxInflightPerClient < 0 {
		at("api.max_inflight_per_client", "must not be negative, got %d", c.API.MaxInflightPerClient)
	}
}
