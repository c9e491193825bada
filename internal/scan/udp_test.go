package scan

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// udpListener listens on a loopback UDP port; with echo set it answers every datagram,
// otherwise it reads and ignores them. It returns the port.
func udpListener(t *testing.T, network, addr string, echo bool) uint16 {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if echo {
				_, _ = c.WriteTo(append([]byte("re:"), buf[:n]...), from)
			}
		}
	}()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// closedUDPPort returns a loopback UDP port nothing listens on.
func closedUDPPort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := uint16(c.LocalAddr().(*net.UDPAddr).Port)
	c.Close()
	return p
}

func TestUDPScanStates(t *testing.T) {
	open := udpListener(t, "udp4", "127.0.0.1:0", true)
	silent := udpListener(t, "udp4", "127.0.0.1:0", false)
	closed := closedUDPPort(t)
	s := &Scanner{UDP: true, Timeout: 200 * time.Millisecond, Retries: 1}
	rep, err := s.Scan(context.Background(), []string{"127.0.0.1"}, PortList{open, silent, closed})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Method != MethodUDP || rep.Proto() != "udp" {
		t.Errorf("got method %q proto %q, want udp", rep.Method, rep.Proto())
	}
	h := rep.Hosts[0]
	got := map[uint16]PortResult{}
	for _, p := range h.Ports {
		got[p.Port] = p
	}
	if p := got[open]; p.State != Open || p.Reason != "udp-response" {
		t.Errorf("answering port %d: got %+v, want open (udp-response)", open, p)
	}
	if p := got[silent]; p.State != OpenFiltered || p.Reason != "no-response" {
		t.Errorf("silent port %d: got %+v, want open|filtered (no-response)", silent, p)
	}
	if _, listed := got[closed]; listed || h.Closed != 1 {
		t.Errorf("port %d with no listener: listed %v, %d closed; want it counted closed (ICMP port unreachable)", closed, got[closed], h.Closed)
	}
	// Silence was retried; the answers were not.
	if rep.Stats.Retries != 1 || rep.Stats.Probes != 4 {
		t.Errorf("got %d probes, %d retries; want 4 and 1 (only the silent port retried)", rep.Stats.Probes, rep.Stats.Retries)
	}

	var table, grep bytes.Buffer
	if err := WriteTable(&table, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteGreppable(&grep, rep, "portpatrol scan --udp"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/udp", "open|filtered", "a firewall that drops it", "datagrams"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if !strings.Contains(grep.String(), "/open|filtered/udp//") {
		t.Errorf("greppable output lacks the UDP port state:\n%s", grep.String())
	}
	t.Logf("\n%s", table.String())
}

func TestUDPScanIPv6AndServices(t *testing.T) {
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	c.Close()
	open := udpListener(t, "udp6", "[::1]:0", true)
	s := &Scanner{UDP: true, Timeout: 200 * time.Millisecond, Retries: -1}
	rep, err := s.Scan(context.Background(), []string{"::1"}, PortList{open, closedUDPPort(t)})
	if err != nil {
		t.Fatal(err)
	}
	if ps := rep.Hosts[0].Ports; len(ps) != 1 || ps[0].Port != open || ps[0].State != Open {
		t.Errorf("got %+v, want only port %d open", ps, open)
	}
	if serviceName("udp", 53) != "domain" || serviceName("udp", 11211) != "memcache" {
		t.Errorf("UDP service names: 53=%q 11211=%q", serviceName("udp", 53), serviceName("udp", 11211))
	}
}

func TestUDPAndSYNExclusive(t *testing.T) {
	s := &Scanner{UDP: true, SYN: unusedSYN{}}
	if _, err := s.Scan(context.Background(), []string{"127.0.0.1"}, PortList{1}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("got %v, want an error that UDP and SYN do not combine", err)
	}
}

// unusedSYN satisfies SYNSocket for a scan that must fail before sending anything.
type unusedSYN struct{}

func (unusedSYN) SourcePorts() []uint16 { return nil }
func (unusedSYN) Send([]netip.AddrPort, []uint16, []uint32) (int, error) {
	panic("a UDP scan sent a SYN")
}
func (unusedSYN) Read(time.Duration, func(netip.AddrPort, uint16, uint32, uint8)) (int, error) {
	panic("a UDP scan read SYN answers")
}
