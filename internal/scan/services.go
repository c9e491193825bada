package scan

import (
	"slices"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// topPorts is the TCP ports of the well-known services table (patrol.Services) in its
// order, most common first, then the rest of the privileged range 1–1023.
func topPorts() []uint16 {
	svcs := patrol.Services()
	seen := make(map[uint16]bool, len(svcs)+1024)
	out := make([]uint16, 0, len(svcs)+1024)
	for _, s := range svcs {
		if s.Proto == "tcp" && !seen[s.Port] {
			seen[s.Port] = true
			out = append(out, s.Port)
		}
	}
	// The rest of the privileged range, in order: system services live there.
	for p := uint16(1); p < 1024; p++ {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Top returns the n most common service ports, sorted by port number. n larger than the
// list returns the whole list (the well-known TCP services plus the privileged range,
// well over 1,000 ports).
func Top(n int) PortList {
	all := topPorts()
	n = min(max(n, 0), len(all))
	l := slices.Clone(PortList(all[:n]))
	slices.Sort(l)
	return l
}

// serviceName returns the usual service name for a port of proto ("tcp" or "udp"), or
// "" when the well-known services table has none.
func serviceName(proto string, port uint16) string {
	s, _ := patrol.ServiceByPort(proto, port)
	return s.Name
}
