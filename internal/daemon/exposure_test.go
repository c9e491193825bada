package daemon

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// A process holding 950 unauthorised ports raises one alert that names the process
// and collapses the ports; a lone finding of another process stays as it was.
func TestExposureFindingsGroupByProcessAndRule(t *testing.T) {
	rep := &audit.Report{Hosts: []audit.HostAudit{{Host: "local", Addr: netip.MustParseAddr("127.0.0.1")}}}
	for p := uint16(20000); p < 20950; p++ {
		rep.Hosts[0].Open = append(rep.Hosts[0].Open, audit.OpenPort{Port: p, Verdict: "unauthorised",
			Listeners: []audit.Listener{{Process: "", PID: 4242}}})
		rep.Findings = append(rep.Findings, audit.Finding{Kind: audit.UnauthorisedOpen, Severity: patrol.P1, Host: "local",
			Port: p, Message: "port is open but no allow rule permits it"})
	}
	rep.Findings = append(rep.Findings,
		audit.Finding{Kind: audit.UnauthorisedOpen, Severity: patrol.P1, Host: "local", Port: 6379, Process: "redis-server", Message: "port 6379 is open"},
		audit.Finding{Kind: audit.PublicBind, Severity: patrol.P2, Host: "local", Port: 6379, Process: "redis-server", Rule: "ports.yaml:4:7", Message: "public"},
		audit.Finding{Kind: audit.PublicBind, Severity: patrol.P1, Host: "local", Port: 6380, Process: "redis-server", Rule: "ports.yaml:4:7", Message: "public"},
	)
	gs := groupFindings(rep)
	if len(gs) != 3 {
		t.Fatalf("got %d groups, want 3: the 950 ports, redis's unauthorised port, redis's public binds under one rule", len(gs))
	}
	label := func(h string) string {
		if h == "local" {
			return "box-1"
		}
		return h
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	big := gs[0].finding("edge", at, label)
	if want := "unauthorised_open on local: 950 ports of pid 4242, 20000–20949"; big.Summary != want {
		t.Errorf("summary: got %q, want %q", big.Summary, want)
	}
	if big.Subject != "local unknown process" || big.Labels["host"] != "box-1" || big.Labels["port"] != "" || big.Severity != "P1" {
		t.Errorf("grouped finding: %+v", big)
	}
	one := gs[1].finding("edge", at, label)
	if one.Subject != "local redis-server" || one.Labels["port"] != "6379" || one.Summary != "port 6379 is open" {
		t.Errorf("lone finding of a known process: %+v", one)
	}
	pub := gs[2].finding("edge", at, label)
	if pub.Severity != "P1" || !strings.Contains(pub.Summary, "2 ports of redis-server, 6379–6380") || !strings.Contains(pub.Description, "ports.yaml:4:7") {
		t.Errorf("public binds under one rule: %+v", pub)
	}
	keys := map[string]bool{}
	for _, g := range gs {
		keys[g.key()] = true
	}
	if len(keys) != 3 {
		t.Errorf("keys not distinct: %v", keys)
	}
}

func TestHostTargetName(t *testing.T) {
	for _, tc := range []struct {
		l    hostwatch.Listener
		want string
	}{
		{hostwatch.Listener{Process: "mosquitto", Bind: netip.MustParseAddrPort("127.0.0.1:1883")}, "mosquitto :1883"},
		{hostwatch.Listener{Bind: netip.MustParseAddrPort("0.0.0.0:2024")}, ":2024"},
	} {
		if got := hostTargetName(tc.l); got != tc.want {
			t.Errorf("hostTargetName(%+v) = %q, want %q", tc.l, got, tc.want)
		}
	}
}
