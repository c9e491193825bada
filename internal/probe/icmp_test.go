package probe

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// icmpAvailable skips t when this process can open neither kind of ICMP socket.
func icmpAvailable(t *testing.T, v6 bool) {
	t.Helper()
	c, err := openICMP(v6, nil, 0, false)
	if err != nil {
		t.Skipf("no ICMP socket here: %v", err)
	}
	c.pc.Close()
}

func TestICMPLoopback(t *testing.T) {
	leakCheck(t)
	ttl := 5
	for _, tc := range []struct {
		name   string
		target string
		m      ICMPModule
		v6     bool
		remote string
	}{
		{name: "ipv4", target: "icmp://127.0.0.1", remote: "127.0.0.1"},
		{name: "ipv6", target: "icmp://[::1]", v6: true, remote: "::1"},
		{name: "ipv4 payload ttl source", target: "icmp://127.0.0.1", remote: "127.0.0.1",
			m: ICMPModule{PayloadSize: 1200, TTL: &ttl, SourceIPAddress: "127.0.0.1", IPProtocol: "ip4"}},
		{name: "ipv6 hop limit", target: "icmp://[::1]", v6: true, remote: "::1", m: ICMPModule{TTL: &ttl, IPProtocol: "ip6"}},
		{name: "ipv4 dont fragment", target: "icmp://127.0.0.1", remote: "127.0.0.1", m: ICMPModule{DontFragment: true}},
		{name: "name resolved as ip4", target: "icmp://localhost", remote: "127.0.0.1", m: ICMPModule{IPProtocol: "ip4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			icmpAvailable(t, tc.v6)
			if tc.m.DontFragment {
				if _, err := net.ListenPacket("ip4:icmp", "127.0.0.1"); err != nil {
					t.Skipf("dont_fragment needs a raw socket: %v", err)
				}
			}
			res := runProbe(t, tc.target, Module{Prober: "icmp", ICMP: tc.m}, &Env{})
			wantResult(t, res, patrol.ClassOK)
			if res.RemoteAddr != tc.remote {
				t.Errorf("got remote %q, want %q", res.RemoteAddr, tc.remote)
			}
			if d, ok := res.Phase("echo"); !ok || d <= 0 || d > time.Second {
				t.Errorf("got echo round trip %s, want between 0 and 1s", d)
			}
		})
	}
}

func TestICMPAllowRefuses(t *testing.T) {
	leakCheck(t)
	env := &Env{Allow: func(netip.AddrPort) error { return errors.New("not allowed here") }}
	res := runProbe(t, "icmp://127.0.0.1", Module{}, env)
	wantResult(t, res, patrol.ClassError, "not allowed")
}

func TestICMPSetupErrors(t *testing.T) {
	big, neg := 256, -1
	for _, tc := range []struct {
		name, target string
		m            ICMPModule
		want         string
	}{
		{"bad protocol", "icmp://127.0.0.1", ICMPModule{IPProtocol: "ipx"}, "preferred_ip_protocol"},
		{"ttl too big", "icmp://127.0.0.1", ICMPModule{TTL: &big}, "icmp.ttl 256"},
		{"ttl negative", "icmp://127.0.0.1", ICMPModule{TTL: &neg}, "icmp.ttl -1"},
		{"payload", "icmp://127.0.0.1", ICMPModule{PayloadSize: 70000}, "payload_size"},
		{"source not an address", "icmp://127.0.0.1", ICMPModule{SourceIPAddress: "lo"}, "source_ip_address"},
		{"source of the other family", "icmp://127.0.0.1", ICMPModule{SourceIPAddress: "::1", IPProtocol: "ip4"}, "not of preferred_ip_protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := buildErr(t, tc.target, Module{Prober: "icmp", ICMP: tc.m})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestICMPTargetHasNoPort(t *testing.T) {
	for _, in := range []string{"icmp://127.0.0.1:7", "icmp://[::1]:7"} {
		if _, err := patrol.ParseTarget(in); err == nil || !strings.Contains(err.Error(), "no port") {
			t.Errorf("ParseTarget(%q): got %v, want a no-port error", in, err)
		}
	}
	for in, want := range map[string]string{"icmp://127.0.0.1": "icmp://127.0.0.1", "icmp://[::1]": "icmp://[::1]", "icmp://::1": "icmp://[::1]", "icmp://fe80::1%eth0": "icmp://[fe80::1%25eth0]", "ICMP://Host.Example": "icmp://Host.Example"} {
		tg, err := patrol.ParseTarget(in)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", in, err)
		}
		if tg.ID != want {
			t.Errorf("ParseTarget(%q).ID = %q, want %q", in, tg.ID, want)
		}
	}
}

// TestICMPErrorMatching checks that an ICMP error quoting our echo request is told
// from one quoting another's.
func TestICMPErrorMatching(t *testing.T) {
	v4 := make([]byte, 20+8)
	v4[0] = 0x45
	v4[20+6], v4[20+7] = 0x12, 0x34
	v6 := make([]byte, 40+8)
	v6[40+6], v6[40+7] = 0x12, 0x34
	for _, tc := range []struct {
		name   string
		quoted []byte
		v6     bool
		seq    int
		want   bool
	}{
		{"ipv4 ours", v4, false, 0x1234, true},
		{"ipv4 another's", v4, false, 0x1235, false},
		{"ipv6 ours", v6, true, 0x1234, true},
		{"truncated", v4[:24], false, 0x1234, false},
		{"empty", nil, false, 0x1234, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ours(tc.quoted, tc.v6, tc.seq); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
