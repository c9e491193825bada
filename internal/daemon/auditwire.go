package daemon

import (
	"context"
	"os/user"
	"strconv"

	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/scan"
)

// AuditScanner lets an audit scan through the scanner. It is safe for concurrent use
// when the scanner is.
type AuditScanner struct{ Scanner *scan.Scanner }

var _ audit.Scanner = AuditScanner{}

// Scan implements audit.Scanner.
func (a AuditScanner) Scan(ctx context.Context, target string, ports []uint16) ([]audit.HostScan, error) {
	rep, err := a.Scanner.Scan(ctx, []string{target}, scan.PortList(ports))
	if err != nil {
		return nil, err
	}
	out := make([]audit.HostScan, 0, len(rep.Hosts))
	for _, h := range rep.Hosts {
		hs := audit.HostScan{Addr: h.Addr}
		for _, p := range h.Ports {
			switch p.State {
			case scan.Open:
				hs.Open = append(hs.Open, p.Port)
			case scan.Filtered, scan.Unknown:
				hs.Filtered = append(hs.Filtered, p.Port)
			}
		}
		out = append(out, hs)
	}
	return out, nil
}

// userName names a uid, or returns it in decimal.
func userName(uid uint32) string {
	id := strconv.Itoa(int(uid))
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// AuditInventory gives an audit this host's TCP listeners and their owners. It is
// safe for concurrent use.
type AuditInventory struct{ Inventory *inventory.Inventory }

var _ audit.Inventory = AuditInventory{}

// Listeners implements audit.Inventory.
func (l AuditInventory) Listeners(ctx context.Context) ([]audit.Listener, error) {
	socks, err := l.Inventory.Listeners(ctx, inventory.Filter{Proto: inventory.TCP, Owners: true})
	if err != nil {
		return nil, err
	}
	out := make([]audit.Listener, 0, len(socks))
	for _, s := range socks {
		ln := audit.Listener{Addr: s.Local.Addr().Unmap(), Port: s.Local.Port(), User: userName(s.UID)}
		if s.Owner != nil {
			ln.Process, ln.PID = s.Owner.Command, s.Owner.PID
			if s.Owner.User != "" {
				ln.User = s.Owner.User
			}
		}
		out = append(out, ln)
	}
	return out, nil
}
