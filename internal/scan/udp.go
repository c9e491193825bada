package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// udpPayloads are the datagrams a UDP scan sends to ports whose service ignores an
// empty one: a request the service answers, so an open port says so.
var udpPayloads = map[uint16][]byte{
	// DNS: a query for the root's NS records, ID 0x7070, recursion desired.
	53: {0x70, 0x70, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01},
	// NTP: a version 4 client request.
	123: append([]byte{0x23}, make([]byte, 47)...),
	// memcached: the UDP frame header, then "stats\r\n".
	11211: []byte("\x00\x01\x00\x00\x00\x01\x00\x00stats\r\n"),
}

// runUDP scans UDP ports with one connected socket per port: a reply is open; an ICMP
// port unreachable, which the kernel reports on the socket as ECONNREFUSED, is closed;
// silence after every retry is open|filtered, because a listener that ignores the
// datagram and a firewall that drops it look the same. It returns the ports that were
// not closed.
func runUDP(ctx context.Context, cfg engineConfig, addrs []netip.Addr, ports PortList, done *atomic.Int64) ([]outcome, Stats, error) {
	var (
		mu   sync.Mutex
		outs []outcome
		st   Stats
		wg   sync.WaitGroup
	)
	conc := min(cfg.concurrency, 256)
	st.Concurrency = conc
	sem := make(chan struct{}, conc)
	pace := newPacer(cfg.rate)
	var probes, retries, transient atomic.Int64
loop:
	for hi, a := range addrs {
		for _, port := range ports {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break loop
			}
			wg.Add(1)
			go func(hi int, a netip.Addr, port uint16) {
				defer func() { <-sem; wg.Done(); done.Add(1) }()
				state, reason := udpPort(ctx, cfg, pace, netip.AddrPortFrom(a, port), &probes, &retries, &transient)
				if state == Closed {
					return
				}
				mu.Lock()
				outs = append(outs, outcome{host: int32(hi), port: port, state: state, reason: reason})
				mu.Unlock()
			}(hi, a, port)
		}
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, st, err
	}
	st.Probes, st.Retries, st.Transient = probes.Load(), retries.Load(), transient.Load()
	return outs, st, nil
}

// udpPort probes one port, retrying silence and local shortages.
func udpPort(ctx context.Context, cfg engineConfig, pace *pacer, ap netip.AddrPort, probes, retries, transient *atomic.Int64) (State, string) {
	wait := cfg.timeout
	payload := udpPayloads[ap.Port()]
	var lastLocal error
	for attempt := 0; attempt <= cfg.retries; attempt++ {
		if attempt > 0 {
			retries.Add(1)
		}
		if pace != nil {
			if d := time.Until(pace.take(1, time.Now())); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return Unknown, "canceled"
				}
			}
		}
		probes.Add(1)
		state, reason, err := udpAttempt(ctx, ap, payload, wait)
		if err != nil {
			transient.Add(1)
			lastLocal = err
			continue
		}
		if state != OpenFiltered {
			return state, reason
		}
		wait *= 2
	}
	if lastLocal != nil {
		return Unknown, lastLocal.Error()
	}
	return OpenFiltered, "no-response"
}

// udpAttempt sends one datagram and waits up to wait for the answer. err is a local
// problem (no socket, no port), never the port's state.
func udpAttempt(ctx context.Context, ap netip.AddrPort, payload []byte, wait time.Duration) (State, string, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return Unknown, "", err
	}
	defer c.Close()
	deadline := time.Now().Add(wait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(payload); err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return Closed, "port-unreach", nil
		}
		return Unknown, "", err
	}
	buf := make([]byte, 1500)
	_, err = c.Read(buf)
	var ne net.Error
	switch {
	case err == nil:
		return Open, "udp-response", nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return Closed, "port-unreach", nil
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Filtered, "host-unreach", nil
	case errors.As(err, &ne) && ne.Timeout():
		return OpenFiltered, "no-response", nil
	}
	return Unknown, "", err
}
