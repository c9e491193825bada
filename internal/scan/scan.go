// Package scan is portpatrol's TCP port scanner. It turns targets (host names, IP
// addresses, CIDRs) and a port list into the set of open ports, refusing before it
// sends anything when a target lies outside the allowed networks. On Linux it drives
// non-blocking sockets through epoll from one goroutine per core, reusing a socket
// after each refused connect, so a full scan of a loopback host costs little more than
// the kernel's own work; elsewhere it falls back to net.Dialer. Errors that mean "could
// not tell" — out of file descriptors, no ephemeral port, a timeout while the scan is
// pushing hard — are retried with backoff and less concurrency, and are never reported
// as closed. Given a SYNSocket (raw sockets: root or CAP_NET_RAW) it runs a SYN scan
// instead, as nmap -sS does: no connection is ever completed.
package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// State is what a scan learned about one port.
type State uint8

// The port states, as nmap names them.
const (
	Closed   State = iota // the host answered with a reset: nothing listens there
	Open                  // a connection was established
	Filtered              // no answer after every retry, or the network said unreachable
	Unknown               // could not tell: local resources ran out on every retry
	// OpenFiltered is a UDP port that never answered: a listener that ignores the
	// datagram and a firewall that drops it look the same.
	OpenFiltered
)

var stateNames = [...]string{"closed", "open", "filtered", "unknown", "open|filtered"}

// String returns "open", "closed", "filtered" or "unknown".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// MarshalText renders the state's name.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown port state %q", b)
}

// Ident is what a protocol probe learned about the service on an open port.
type Ident struct {
	// Service is the protocol that answered ("redis", "ssh", "http"), or "unknown" when
	// no probe could confirm one.
	Service string `json:"service"`
	// Class is the probe's result class ("ok", "protocol", "auth"…).
	Class string `json:"class"`
	// Detail is a short human summary: a banner, a server version, or why the guess
	// was not confirmed.
	Detail string `json:"detail,omitempty"`
}

// PortResult is the state of one port of one host.
type PortResult struct {
	Port  uint16 `json:"port"`
	State State  `json:"state"`
	// Service is the port's usual service name from portpatrol's table.
	Service string `json:"service,omitempty"`
	// Reason says why the state was given: "syn-ack", "no-response", "EMFILE after 8 tries".
	Reason string `json:"reason,omitempty"`
	Ident  *Ident `json:"ident,omitempty"`
}

// HostResult is the outcome for one address: every port that is not closed, and how
// many were closed.
type HostResult struct {
	Host
	Ports  []PortResult `json:"ports"`
	Closed int          `json:"closed"`
}

// Open returns the open ports, in order.
func (h *HostResult) Open() []uint16 {
	var out []uint16
	for _, p := range h.Ports {
		if p.State == Open {
			out = append(out, p.Port)
		}
	}
	return out
}

// Stats describes how a scan went.
type Stats struct {
	// Probes counts connect attempts, retries included.
	Probes int64 `json:"probes"`
	// Retries counts attempts repeated after a timeout or a local resource error.
	Retries int64 `json:"retries"`
	// Transient counts local resource errors (EMFILE, EADDRNOTAVAIL, EAGAIN…).
	Transient int64 `json:"transient_errors"`
	// Concurrency is the in-flight limit the scan ended with.
	Concurrency int `json:"concurrency"`
}

// Report is the result of a scan.
type Report struct {
	// Method is how the ports were scanned: MethodConnect or MethodSYN.
	Method  string        `json:"method,omitempty"`
	Start   time.Time     `json:"start"`
	Elapsed time.Duration `json:"-"`
	// Ports is the port list every host was scanned on.
	Ports PortList     `json:"-"`
	Hosts []HostResult `json:"hosts"`
	Stats Stats        `json:"stats"`
}

// MarshalJSON adds the elapsed seconds and the port list as text.
func (r *Report) MarshalJSON() ([]byte, error) {
	type plain Report
	return json.Marshal(struct {
		*plain
		ElapsedSeconds float64 `json:"elapsed_seconds"`
		Ports          string  `json:"ports"`
		PortCount      int     `json:"port_count"`
	}{(*plain)(r), r.Elapsed.Seconds(), r.Ports.String(), len(r.Ports)})
}

// The scan methods of Report.Method, as nmap's -oG names them.
const (
	MethodConnect = "connect"
	MethodSYN     = "syn"
	MethodUDP     = "udp"
)

// Defaults of a zero Scanner.
const (
	DefaultConcurrency = 4096
	DefaultTimeout     = time.Second
	DefaultRetries     = 1
	// DefaultSYNWindow is the most SYNs a SYN scan leaves unanswered at once: fewer
	// than the raw socket's receive buffer holds, so no reply is dropped there.
	DefaultSYNWindow = 1024
	// minConcurrency is the floor adaptive concurrency never goes below.
	minConcurrency = 8
	// maxTransient bounds retries of one port after local resource errors.
	maxTransient = 8
)

// Scanner scans TCP ports with connect(). The zero value scans the loopback networks
// with the defaults. A Scanner is safe for concurrent use; each Scan is independent.
type Scanner struct {
	// Concurrency caps connects in flight (waiting for an answer); 0 means
	// DefaultConcurrency. The cap adapts: it halves when the system runs short of
	// descriptors or ports and grows back as connects succeed. It is also held below
	// half the process's open-file limit. In a SYN scan it caps the SYNs not yet
	// answered; 0 means DefaultSYNWindow.
	Concurrency int
	// Rate caps connect attempts (in a SYN scan: SYNs sent, retries included) per
	// second; 0 means no cap.
	Rate float64
	// Timeout is how long one attempt waits for an answer; 0 means DefaultTimeout. Each
	// retry waits twice as long as the one before.
	Timeout time.Duration
	// Retries is how many more attempts a port that did not answer gets; 0 means
	// DefaultRetries, a negative value means none.
	Retries int
	// Workers is the number of scanning goroutines; 0 means GOMAXPROCS.
	Workers int
	// Allow lists the networks that may be scanned; nil means DefaultAllow.
	Allow []netip.Prefix
	// MaxHosts bounds the addresses a scan expands to; 0 means DefaultMaxHosts.
	MaxHosts int
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Progress, when set, is called about five times a second with the ports done and
	// the total, and once more at the end.
	Progress func(done, total int64)
	// Now is the clock for Report.Start; nil means time.Now.
	Now func() time.Time
	// SYN, when set, makes the scan a SYN scan through it (Linux only): a SYN to each
	// port, SYN-ACK for open, RST for closed, no connection made. The caller opens
	// and closes it; nil means a connect scan.
	SYN SYNSocket
	// UDP makes the scan a UDP scan: a datagram to each port (a request the service
	// answers for DNS, NTP and memcached, empty otherwise), a reply for open, an ICMP
	// port unreachable for closed, silence for open|filtered. It cannot be combined
	// with SYN.
	UDP bool
}

// Proto returns the transport the report's ports are on: "udp" or "tcp".
func (r *Report) Proto() string {
	if r.Method == MethodUDP {
		return "udp"
	}
	return "tcp"
}

// SYNSocket sends TCP SYNs from raw sockets and reads the answers sent back to its
// source ports: what a SYN scan needs. *probe.SYNSocket, the probes' half-open
// machinery, implements it; opening one needs root or CAP_NET_RAW.
type SYNSocket interface {
	// SourcePorts returns the ports SYNs may be sent from; the kernel must answer a
	// SYN-ACK to them with a reset (no socket may accept on them).
	SourcePorts() []uint16
	// Send sends SYNs, the i-th to dst[i] from sport[i] with sequence number seq[i],
	// and returns how many went out before an error.
	Send(dst []netip.AddrPort, sport []uint16, seq []uint32) (int, error)
	// Read calls fn for each SYN-ACK and RST queued, waiting up to wait for the first.
	Read(wait time.Duration, fn func(from netip.AddrPort, sport uint16, ack uint32, flags uint8)) (int, error)
}

// Scan resolves specs, checks them against the allow list and scans ports on each.
// Targets outside the allow list fail with *NotAllowedError, bad ones with
// *TargetError, before any connect.
func (s *Scanner) Scan(ctx context.Context, specs []string, ports PortList) (*Report, error) {
	hosts, err := Resolve(ctx, s.Resolver, specs, s.Allow, s.MaxHosts)
	if err != nil {
		return nil, err
	}
	return s.ScanHosts(ctx, hosts, ports)
}

// ScanHosts scans ports on hosts that Resolve returned. It checks them against the
// allow list again.
func (s *Scanner) ScanHosts(ctx context.Context, hosts []Host, ports PortList) (*Report, error) {
	allow := s.Allow
	if allow == nil {
		allow = DefaultAllow
	}
	for _, h := range hosts {
		if !allowed(netip.PrefixFrom(h.Addr, h.Addr.BitLen()), allow) {
			return nil, &NotAllowedError{Target: h.Spec, Addr: h.Addr.String(), Allow: allow}
		}
	}
	if len(ports) == 0 {
		return nil, fmt.Errorf("no ports to scan")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	cfg := s.config()
	rep := &Report{Method: MethodConnect, Start: now(), Ports: ports}
	start := time.Now()
	addrs := make([]netip.Addr, len(hosts))
	for i, h := range hosts {
		addrs[i] = h.Addr
	}
	total := int64(len(hosts)) * int64(len(ports))
	var done atomic.Int64
	stopProgress := s.startProgress(&done, total)
	var outs []outcome
	var st Stats
	var err error
	if s.UDP && s.SYN != nil {
		stopProgress()
		return nil, fmt.Errorf("a scan is either UDP or SYN, not both")
	}
	if s.UDP {
		rep.Method = MethodUDP
		outs, st, err = runUDP(ctx, cfg, addrs, ports, &done)
	} else if s.SYN != nil {
		if s.Concurrency <= 0 {
			cfg.concurrency = DefaultSYNWindow
		}
		rep.Method = MethodSYN
		outs, st, err = runSYN(ctx, cfg, s.SYN, addrs, ports, &done)
	} else {
		outs, st, err = runEngine(ctx, cfg, addrs, ports, &done)
	}
	stopProgress()
	if err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	rep.Stats = st
	byHost := make([][]PortResult, len(hosts))
	for _, o := range outs {
		byHost[o.host] = append(byHost[o.host], PortResult{Port: o.port, State: o.state, Reason: o.reason})
	}
	rep.Hosts = make([]HostResult, len(hosts))
	for i, h := range hosts {
		pr := byHost[i]
		slices.SortFunc(pr, func(a, b PortResult) int { return int(a.Port) - int(b.Port) })
		for j := range pr {
			pr[j].Service = serviceName(rep.Proto(), pr[j].Port)
		}
		rep.Hosts[i] = HostResult{Host: h, Ports: pr, Closed: len(ports) - len(pr)}
	}
	return rep, nil
}

func (s *Scanner) startProgress(done *atomic.Int64, total int64) (stop func()) {
	if s.Progress == nil {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				s.Progress(done.Load(), total)
				return
			case <-t.C:
				s.Progress(done.Load(), total)
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// engineConfig is a Scanner with its defaults applied.
type engineConfig struct {
	concurrency int
	rate        float64
	timeout     time.Duration
	retries     int
	workers     int
}

func (s *Scanner) config() engineConfig {
	c := engineConfig{concurrency: s.Concurrency, rate: s.Rate, timeout: s.Timeout, retries: s.Retries, workers: s.Workers}
	if c.concurrency <= 0 {
		c.concurrency = DefaultConcurrency
	}
	if lim := fileLimit(); lim > 0 && c.concurrency > lim/2 {
		c.concurrency = max(lim/2, minConcurrency)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.retries == 0:
		c.retries = DefaultRetries
	case c.retries < 0:
		c.retries = 0
	}
	if c.workers <= 0 {
		c.workers = runtime.GOMAXPROCS(0)
	}
	return c
}

// outcome is the engine's answer for one port that was not closed.
type outcome struct {
	host   int32
	port   uint16
	state  State
	reason string
}

// pacer hands out connect slots at a fixed rate. Safe for concurrent use.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	next     time.Time
}

func newPacer(rate float64) *pacer {
	if rate <= 0 {
		return nil
	}
	return &pacer{interval: time.Duration(float64(time.Second) / rate)}
}

// pacerSlack is how far behind its schedule the pacer may fall and still catch up:
// sleeps that overshoot (a loaded machine wakes late) are made up by the slots that
// follow, so the rate over a scan stays exact; a longer stall is not made up with a
// burst.
const pacerSlack = 100 * time.Millisecond

// take reserves n slots and returns when the first may be used.
func (p *pacer) take(n int, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next.IsZero() {
		p.next = now
	}
	if late := now.Add(-pacerSlack); p.next.Before(late) {
		p.next = late
	}
	at := p.next
	p.next = p.next.Add(time.Duration(n) * p.interval)
	return at
}

// batch is how many slots a worker takes at once: about 5 ms worth.
func (p *pacer) batch() int {
	return max(1, int(5*time.Millisecond/p.interval))
}
