package inventory

import (
	"context"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// Holder is a listener with what holds it: its owner's resources and its connections.
type Holder struct {
	Socket
	// Resources are the owner's limits and usage; nil when the owner is unknown or
	// could not be read.
	Resources *Resources `json:"resources,omitempty"`
	// Connections are the established, half-open (SYN-RECV) and CLOSE-WAIT TCP
	// connections on the listener's address and port.
	Connections []Socket `json:"connections"`
}

// Holders returns the listeners on port (TCP and UDP) that cover addr (any address
// when addr is the zero Addr), each with its owner, resources and connections.
func (i *Inventory) Holders(ctx context.Context, addr netip.Addr, port uint16) ([]Holder, error) {
	socks, err := i.Listeners(ctx, Filter{Port: port, Owners: true, Established: true, Traffic: true})
	if err != nil {
		return nil, err
	}
	conns, err := i.Sockets(ctx, Filter{Proto: TCP, Port: port,
		States: StatesOf(StateEstablished, StateSynRecv, StateCloseWait), Traffic: true})
	if err != nil {
		return nil, err
	}
	var hs []Holder
	for _, s := range socks {
		if addr.IsValid() && !s.Covers(addr) {
			continue
		}
		h := Holder{Socket: s, Connections: []Socket{}}
		if s.Owner != nil {
			if r, err := i.Resources(s.Owner.PID); err == nil {
				h.Resources = &r
			}
		}
		if s.Proto == TCP {
			for _, c := range conns {
				if c.IPv6 == s.IPv6 && (s.Local.Addr().IsUnspecified() || c.Local.Addr() == s.Local.Addr()) {
					h.Connections = append(h.Connections, c)
				}
			}
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// OwnedBy reports whether s's owner matches process (a part of its command name, or
// of its executable's base name) and user (a user name or uid); an empty criterion
// matches anything. A socket of unknown owner matches only when both are empty.
func (s *Socket) OwnedBy(process, user string) bool {
	if process == "" && user == "" {
		return true
	}
	o := s.Owner
	if o == nil {
		return false
	}
	if process != "" {
		hit := strings.Contains(o.Command, process)
		if !hit && len(o.Cmdline) > 0 {
			hit = strings.Contains(filepath.Base(o.Cmdline[0]), process)
		}
		if !hit {
			return false
		}
	}
	return user == "" || o.User == user || strconv.FormatUint(uint64(o.UID), 10) == user
}
