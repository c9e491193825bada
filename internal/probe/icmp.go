package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// icmpSeq numbers echo requests, so that a late reply to an earlier probe of the same
// host is not taken for this one's. Shared by every probe of the process: a counter,
// not configuration.
var icmpSeq atomic.Uint32

// defaultICMPPayload is blackbox_exporter's payload size when none is set.
const defaultICMPPayload = 36

// newICMP builds the icmp prober: icmp://host sends one echo request and waits for
// its reply. It uses an unprivileged ICMP datagram socket where the kernel allows one
// (Linux net.ipv4.ping_group_range), else a raw socket (root or CAP_NET_RAW), as
// blackbox_exporter does; dont_fragment needs the raw socket. Options: ip=ip4|ip6.
func newICMP(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.ICMP
	if v, ok := q.string("ip"); ok {
		c.IPProtocol = v
	}
	switch c.IPProtocol {
	case "", "ip", "ip4", "ip6":
	default:
		return nil, fmt.Errorf("icmp.preferred_ip_protocol %q: want ip4 or ip6", c.IPProtocol)
	}
	if c.PayloadSize < 0 || c.PayloadSize > 65000 {
		return nil, fmt.Errorf("icmp.payload_size %d: want 0 to 65000", c.PayloadSize)
	}
	ttl := 0
	if c.TTL != nil {
		if *c.TTL < 0 || *c.TTL > 255 {
			return nil, fmt.Errorf("icmp.ttl %d: want 0 to 255 (0 is the system's default)", *c.TTL)
		}
		ttl = *c.TTL
	}
	var src net.IP
	if c.SourceIPAddress != "" {
		if src = net.ParseIP(c.SourceIPAddress); src == nil {
			return nil, fmt.Errorf("icmp.source_ip_address %q is not an IP address", c.SourceIPAddress)
		}
		switch {
		case c.IPProtocol == "ip6" && src.To4() != nil, c.IPProtocol == "ip4" && src.To4() == nil:
			return nil, fmt.Errorf("icmp.source_ip_address %s is not of preferred_ip_protocol %s", src, c.IPProtocol)
		}
	}
	if t.Port != 0 {
		return nil, errors.New("icmp pings a host, not a port; write icmp://HOST")
	}
	size := c.PayloadSize
	if size == 0 {
		size = defaultICMPPayload
	}
	network := c.IPProtocol
	if network == "" || network == "ip" {
		// A source address fixes the family; without one, either will do.
		switch {
		case src == nil:
			network = "ip"
		case src.To4() != nil:
			network = "ip4"
		default:
			network = "ip6"
		}
	}
	return func(ctx context.Context, res *patrol.Result) {
		ip := resolveICMP(ctx, env, network, t.Host, res)
		if ip == nil {
			return
		}
		res.RemoteAddr = ip.String()
		if err := env.allow(ip.String(), 0); err != nil {
			res.Fail(patrol.ClassError, "ping %s: %v", ip, err)
			return
		}
		echo(ctx, ip, src, size, ttl, c.DontFragment, res)
	}, nil
}

// resolveICMP returns the address to ping, recording the dns phase for a name.
func resolveICMP(ctx context.Context, env *Env, network, host string, res *patrol.Result) net.IP {
	if ip := net.ParseIP(strings.SplitN(host, "%", 2)[0]); ip != nil {
		if (network == "ip4" && ip.To4() == nil) || (network == "ip6" && ip.To4() != nil) {
			res.Fail(patrol.ClassError, "%s is not an %s address", host, network)
			return nil
		}
		return ip
	}
	t0 := time.Now()
	ips, err := env.resolver().LookupIP(ctx, network, host)
	res.AddPhase("dns", time.Since(t0))
	if err != nil {
		classifyInto(res, err, "resolve "+host)
		return nil
	}
	if len(ips) == 0 {
		res.Fail(patrol.ClassDNS, "resolve %s: no addresses", host)
		return nil
	}
	return ips[0]
}

// icmpConn is an open ICMP socket of either kind.
type icmpConn struct {
	pc  net.PacketConn
	v6  bool
	raw bool
}

// openICMP opens an unprivileged datagram socket, or a raw one when that is refused
// or when dontFragment asks for it.
func openICMP(v6 bool, src net.IP, ttl int, dontFragment bool) (*icmpConn, error) {
	dgram, raw, laddr := "udp4", "ip4:icmp", "0.0.0.0"
	if v6 {
		dgram, raw, laddr = "udp6", "ip6:ipv6-icmp", "::"
	}
	if src != nil {
		laddr = src.String()
	}
	c := &icmpConn{v6: v6}
	var err error
	if !dontFragment || v6 {
		var pc *icmp.PacketConn
		if pc, err = icmp.ListenPacket(dgram, laddr); err == nil {
			c.pc = pc
			if ttl > 0 {
				if v6 {
					err = pc.IPv6PacketConn().SetHopLimit(ttl)
				} else {
					err = pc.IPv4PacketConn().SetTTL(ttl)
				}
			}
			if err != nil {
				pc.Close()
				return nil, fmt.Errorf("set ttl: %w", err)
			}
			return c, nil
		}
	}
	dgramErr := err
	pc, err := net.ListenPacket(raw, laddr)
	if err != nil {
		if dgramErr != nil {
			return nil, fmt.Errorf("open ICMP socket: unprivileged: %v; raw: %w (allow the process's group in net.ipv4.ping_group_range, or grant CAP_NET_RAW)", dgramErr, err)
		}
		return nil, fmt.Errorf("open raw ICMP socket (dont_fragment needs root or CAP_NET_RAW): %w", err)
	}
	c.pc, c.raw = pc, true
	if ttl > 0 {
		if v6 {
			err = ipv6.NewPacketConn(pc).SetHopLimit(ttl)
		} else {
			err = ipv4.NewPacketConn(pc).SetTTL(ttl)
		}
		if err != nil {
			pc.Close()
			return nil, fmt.Errorf("set ttl: %w", err)
		}
	}
	if dontFragment && !v6 {
		if err := setDontFragment(pc); err != nil {
			pc.Close()
			return nil, fmt.Errorf("set dont_fragment: %w", err)
		}
	}
	return c, nil
}

// echo sends one echo request to ip and fills res from the answer: ok with the
// round trip, refused for an ICMP error about it (unreachable, TTL exceeded), or
// timeout.
func echo(ctx context.Context, ip, src net.IP, size, ttl int, dontFragment bool, res *patrol.Result) {
	v6 := ip.To4() == nil
	t0 := time.Now()
	c, err := openICMP(v6, src, ttl, dontFragment)
	if err != nil {
		res.Fail(patrol.ClassError, "ping %s: %v", ip, err)
		return
	}
	defer c.pc.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.pc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	res.AddPhase("setup", time.Since(t0))

	payload := make([]byte, size)
	_, _ = rand.Read(payload) // never fails; a random payload tells our reply from others
	id := int(payload[0])<<8 | int(payload[1%len(payload)])
	if size < 2 {
		id = os.Getpid() & 0xffff
	}
	seq := int(icmpSeq.Add(1) & 0xffff)
	var typ icmp.Type = ipv4.ICMPTypeEcho
	proto := 1
	if v6 {
		typ, proto = ipv6.ICMPTypeEchoRequest, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: payload}}
	wire, err := msg.Marshal(nil) // ICMPv6 checksums are the kernel's
	if err != nil {
		res.Fail(patrol.ClassError, "ping %s: %v", ip, err)
		return
	}
	var dst net.Addr = &net.IPAddr{IP: ip}
	if !c.raw {
		dst = &net.UDPAddr{IP: ip}
	}
	if d, ok := ctx.Deadline(); ok {
		_ = c.pc.SetDeadline(d)
	}
	sent := time.Now()
	if _, err := c.pc.WriteTo(wire, dst); err != nil {
		classifyInto(res, err, "ping "+ip.String())
		return
	}
	buf := make([]byte, 1500+size)
	for {
		n, from, err := c.pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || isTimeout(err) {
				res.AddPhase("echo", time.Since(sent))
				res.Fail(patrol.ClassTimeout, "ping %s: no echo reply within %s", ip, round(time.Since(t0)))
				return
			}
			classifyInto(res, err, "ping "+ip.String())
			return
		}
		rm, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue // not ICMP we can read: someone else's traffic on a raw socket
		}
		switch body := rm.Body.(type) {
		case *icmp.Echo:
			// A datagram socket's ID is its port, set by the kernel: match on the
			// sequence number and payload there.
			if (rm.Type != ipv4.ICMPTypeEchoReply && rm.Type != ipv6.ICMPTypeEchoReply) ||
				body.Seq != seq || !bytes.Equal(body.Data, payload) || (c.raw && body.ID != id) {
				continue
			}
			res.AddPhase("echo", time.Since(sent))
			res.RemoteAddr = ip.String()
			return
		case *icmp.DstUnreach:
			if ours(body.Data, v6, seq) {
				res.AddPhase("echo", time.Since(sent))
				res.Fail(patrol.ClassRefused, "ping %s: destination unreachable (code %d) from %s", ip, rm.Code, addrIP(from))
				return
			}
		case *icmp.TimeExceeded:
			if ours(body.Data, v6, seq) {
				res.AddPhase("echo", time.Since(sent))
				res.Fail(patrol.ClassRefused, "ping %s: time to live exceeded at %s", ip, addrIP(from))
				return
			}
		}
	}
}

// ours reports whether the quoted datagram of an ICMP error is our echo request: its
// IP header, then the echo's type, code, checksum, ID and sequence.
func ours(quoted []byte, v6 bool, seq int) bool {
	hl := 40
	if !v6 {
		if len(quoted) < 1 {
			return false
		}
		hl = int(quoted[0]&0x0f) * 4
	}
	if len(quoted) < hl+8 {
		return false
	}
	e := quoted[hl:]
	return int(e[6])<<8|int(e[7]) == seq
}

func addrIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.IPAddr:
		return a.IP.String()
	case *net.UDPAddr:
		return a.IP.String()
	case nil:
		return "?"
	}
	return a.String()
}
