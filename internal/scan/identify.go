package scan

import (
	"context"
	"net/netip"
	"sync"
)

// Identifier names the service listening on an open port, typically by running a
// protocol probe. It must return when ctx is done.
type Identifier interface {
	Identify(ctx context.Context, addr netip.AddrPort) Ident
}

// IdentifyOpen runs id on every open port of r, at most concurrency at a time (0 means
// 16), and stores what it says in the port's Ident.
func IdentifyOpen(ctx context.Context, r *Report, id Identifier, concurrency int) {
	if concurrency <= 0 {
		concurrency = 16
	}
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for hi := range r.Hosts {
		h := &r.Hosts[hi]
		for pi := range h.Ports {
			p := &h.Ports[pi]
			if p.State != Open {
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				ident := id.Identify(ctx, netip.AddrPortFrom(h.Addr, p.Port))
				p.Ident = &ident
			}()
		}
	}
	wg.Wait()
}
