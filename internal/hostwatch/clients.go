package hostwatch

import (
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/portpatrol/portpatrol/internal/inventory"
)

// ClientWindow is how far back Clients looks.
const ClientWindow = 5 * time.Minute

// clientSweep is how often samples older than ClientWindow are dropped, and how long
// an unchanged count is kept as one sample.
const clientSweep = 10 * time.Second

// clientSample is one detail dump's count of a listener's established connections.
type clientSample struct {
	at time.Time
	n  int
}

// Clients is what a listener served before it failed, from the detail dumps.
type Clients struct {
	// Established is the count of established connections at the last detail dump
	// that saw the listener, taken At.
	Established int
	At          time.Time
	// Peak is the largest count over the last ClientWindow.
	Peak int
	// Distinct counts the distinct client addresses the detail dumps saw over the last
	// ClientWindow (at most inventory.MaxClients).
	Distinct int
}

// sampleClients records the established count of a detail dump that saw l; a dump
// without l records nothing, so the last sample is from before it failed. The caller
// holds w.mu.
func (w *Watch) sampleClients(l *listener, now time.Time) {
	if len(l.socks) == 0 {
		return
	}
	if w.clients == nil {
		w.clients = map[string][]clientSample{}
	}
	t := l.key.target()
	if ss := w.clients[t]; len(ss) > 0 && ss[len(ss)-1].n == l.established && now.Sub(ss[len(ss)-1].at) < clientSweep {
		// The same count a moment ago: only its time moves, so Clients still reports
		// when it was last seen and a listener's samples stay few.
		ss[len(ss)-1].at = now
	} else {
		w.clients[t] = append(w.clients[t], clientSample{at: now, n: l.established})
	}
	if w.clientAddrs == nil {
		w.clientAddrs = map[string]map[netip.Addr]time.Time{}
	}
	seen := w.clientAddrs[t]
	for n := range l.socks {
		if l.socks[n].Clients == nil {
			continue
		}
		if seen == nil {
			seen = map[netip.Addr]time.Time{}
			w.clientAddrs[t] = seen
		}
		for _, a := range *l.socks[n].Clients {
			if _, ok := seen[a]; ok || len(seen) < inventory.MaxClients {
				seen[a] = now
			}
		}
	}
	// The samples of every target are swept once every clientSweep, not on each
	// listener's sample: on a host of many listeners a sweep per sample made each
	// tick cost listeners × samples, and the watch fell behind holding its lock.
	if now.Sub(w.clientsSwept) < clientSweep {
		return
	}
	w.clientsSwept = now
	for k, m := range w.clientAddrs {
		maps.DeleteFunc(m, func(_ netip.Addr, at time.Time) bool { return now.Sub(at) > ClientWindow })
		if len(m) == 0 {
			delete(w.clientAddrs, k)
		}
	}
	for k, ss := range w.clients {
		cut := 0
		for cut < len(ss) && now.Sub(ss[cut].at) > ClientWindow {
			cut++
		}
		if cut == len(ss) {
			delete(w.clients, k)
		} else if cut > 0 {
			w.clients[k] = slices.Delete(ss, 0, cut)
		}
	}
}

// Clients returns what the listener probed as target (see Listener.Target) served
// before it failed: its established connections at the last detail dump that saw it,
// and their peak over the last ClientWindow. False when the watch has no detail dump
// of such a listener in that window. Listeners on the same target (one per address
// family, or SO_REUSEPORT) are sampled one by one; the latest sample wins.
func (w *Watch) Clients(target string) (Clients, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.cfg.Now()
	var out Clients
	found := false
	for _, s := range w.clients[target] {
		if now.Sub(s.at) > ClientWindow {
			continue
		}
		found = true
		out.Peak = max(out.Peak, s.n)
		if !s.at.Before(out.At) {
			out.At, out.Established = s.at, s.n
		}
	}
	for _, at := range w.clientAddrs[target] {
		if now.Sub(at) <= ClientWindow {
			out.Distinct++
		}
	}
	return out, found
}
