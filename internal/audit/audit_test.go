package audit

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// fakeScanner answers from a table: target → address and open ports.
type fakeScanner struct {
	hosts map[string][]HostScan
	asked []string
}

func (f *fakeScanner) Scan(_ context.Context, target string, ports []uint16) ([]HostScan, error) {
	f.asked = append(f.asked, target)
	var out []HostScan
	for _, h := range f.hosts[target] {
		var open []uint16
		for _, p := range h.Open {
			if slices.Contains(ports, p) {
				open = append(open, p)
			}
		}
		out = append(out, HostScan{Addr: h.Addr, Open: open, Filtered: h.Filtered})
	}
	return out, nil
}

type fakeInventory []Listener

func (f fakeInventory) Listeners(context.Context) ([]Listener, error) { return f, nil }

var (
	lo   = netip.MustParseAddr("127.0.0.1")
	any4 = netip.MustParseAddr("0.0.0.0")
)

func testScanner() *fakeScanner {
	return &fakeScanner{hosts: map[string][]HostScan{
		"127.0.0.1":  {{Addr: lo, Open: []uint16{22, 6379, 8080, 9999, 31337}}},
		"127.0.0.10": {{Addr: netip.MustParseAddr("127.0.0.10"), Open: []uint16{80, 443}}},
		"127.0.0.11": {{Addr: netip.MustParseAddr("127.0.0.11"), Open: []uint16{80}, Filtered: []uint16{443}}},
	}}
}

func testInventory() fakeInventory {
	return fakeInventory{
		{Addr: any4, Port: 22, Process: "sshd", PID: 100, User: "root"},
		{Addr: any4, Port: 6379, Process: "redis-server", PID: 200, User: "redis"},
		{Addr: lo, Port: 8080, Process: "python3", PID: 300, User: "bob"},
		{Addr: lo, Port: 9999, Process: "nc", PID: 400, User: "alice"},
		{Addr: any4, Port: 31337, Process: "backdoor", PID: 500, User: "nobody"},
		// Bound to an address the loopback scan cannot see: only the inventory knows.
		{Addr: netip.MustParseAddr("10.1.2.3"), Port: 5432, Process: "postgres", PID: 600, User: "postgres"},
	}
}

func loadTestPolicy(t *testing.T) *Policy {
	t.Helper()
	p, err := Load("testdata/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type key struct {
	kind Kind
	host string
	port uint16
}

func keys(fs []Finding) []key {
	var out []key
	for _, f := range fs {
		out = append(out, key{f.Kind, f.Host, f.Port})
	}
	return out
}

func TestAudit(t *testing.T) {
	p := loadTestPolicy(t)
	before := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	after := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	common := []key{
		{WrongOwner, "local", 8080},       // allowed for nginx, run by python3
		{PublicBind, "local", 6379},       // Redis on 0.0.0.0
		{RequiredClosed, "local", 443},    // required, not open
		{UnauthorisedOpen, "local", 5432}, // seen only in the inventory
		{UnauthorisedOpen, "local", 31337},
	}
	tests := []struct {
		name string
		now  time.Time
		want []key
	}{
		{"exception honoured", before, common},
		{"exception expired", after, append(slices.Clone(common),
			key{UnauthorisedOpen, "local", 9999}, key{ExceptionExpired, "local", 9999})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := testScanner()
			rep, err := Run(context.Background(), p, sc, testInventory(), tt.now, "local")
			if err != nil {
				t.Fatal(err)
			}
			got := keys(rep.Findings)
			sortKeys(got)
			want := slices.Clone(tt.want)
			sortKeys(want)
			if !slices.Equal(got, want) {
				t.Errorf("findings:\n got %v\nwant %v", got, want)
			}
			if !slices.Equal(sc.asked, []string{"127.0.0.1"}) {
				t.Errorf("scanned %v, want only 127.0.0.1", sc.asked)
			}
		})
	}
}

func sortKeys(k []key) {
	slices.SortFunc(k, func(a, b key) int {
		if c := strings.Compare(string(a.kind)+a.host, string(b.kind)+b.host); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	})
}

func TestAuditSeverities(t *testing.T) {
	p := loadTestPolicy(t)
	rep, err := Run(context.Background(), p, testScanner(), testInventory(), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), "local")
	if err != nil {
		t.Fatal(err)
	}
	want := map[Kind]patrol.Severity{UnauthorisedOpen: patrol.P1, PublicBind: patrol.P0, RequiredClosed: patrol.P0, WrongOwner: patrol.P1, ExceptionExpired: patrol.P3}
	for _, f := range rep.Findings {
		if f.Severity != want[f.Kind] {
			t.Errorf("%s: severity %s, want %s", f.Key(), f.Severity, want[f.Kind])
		}
	}
}

func TestAuditWithoutInventory(t *testing.T) {
	p := loadTestPolicy(t)
	rep, err := Run(context.Background(), p, testScanner(), nil, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "local")
	if err != nil {
		t.Fatal(err)
	}
	got := keys(rep.Findings)
	sortKeys(got)
	want := []key{{RequiredClosed, "local", 443}, {UnauthorisedOpen, "local", 31337}}
	if !slices.Equal(got, want) {
		t.Errorf("findings = %v, want %v", got, want)
	}
	if len(rep.Hosts[0].Notes) == 0 {
		t.Errorf("no notes about owners that could not be checked")
	}
}

func TestAuditAllPolicyHosts(t *testing.T) {
	p := loadTestPolicy(t)
	sc := testScanner()
	rep, err := Run(context.Background(), p, sc, testInventory(), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1", "127.0.0.10", "127.0.0.11"}; !slices.Equal(sc.asked, want) {
		t.Errorf("scanned %v, want %v", sc.asked, want)
	}
	var web []key
	for _, k := range keys(rep.Findings) {
		if k.host != "local" {
			web = append(web, k)
		}
	}
	if want := []key{{RequiredClosed, "127.0.0.11", 443}}; !slices.Equal(web, want) {
		t.Errorf("web findings = %v, want %v", web, want)
	}
	if rep.Hosts[1].Scanned != 1024 {
		t.Errorf("web host scanned %d ports, want 1024 (its entry's ports)", rep.Hosts[1].Scanned)
	}
	// 127.0.0.10 is this host too: its wildcard listeners' owners come from the
	// inventory, but only the ports the scan found open are judged.
	if !rep.Hosts[1].Inventory || len(rep.Hosts[1].Open) != 2 {
		t.Errorf("127.0.0.10: inventory %v, open %+v; want the inventory used and only 80, 443 open", rep.Hosts[1].Inventory, rep.Hosts[1].Open)
	}
}

func TestAuditRefusesUnnamedTarget(t *testing.T) {
	p := loadTestPolicy(t)
	sc := testScanner()
	for _, target := range []string{"127.0.0.12", "db1.example.com", "127.0.0.0/24"} {
		_, err := Run(context.Background(), p, sc, nil, time.Now(), target)
		var te *TargetError
		if !errors.As(err, &te) {
			t.Errorf("%s: err = %v, want *TargetError", target, err)
		}
	}
	if len(sc.asked) != 0 {
		t.Errorf("scanned %v before refusing", sc.asked)
	}
}

func TestReportGolden(t *testing.T) {
	p := loadTestPolicy(t)
	rep, err := Run(context.Background(), p, testScanner(), testInventory(), time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	var js, junit, text bytes.Buffer
	if err := WriteJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteJUnit(&junit, rep); err != nil {
		t.Fatal(err)
	}
	if err := WriteText(&text, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", js.Bytes())
	golden(t, "report.junit.xml", junit.Bytes())
	golden(t, "report.txt", text.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s", name, got)
	}
}

func TestPolicyErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown field", "hosts:\n  - match: local\n    allow:\n      - port: 22\n        procss: sshd\n",
			"p.yaml:5:9: hosts[0].allow[0].procss: unknown field; valid here: bind, internal, port, process, user"},
		{"bad severity", "severity:\n  unauthorised_open: P7\nhosts:\n  - match: local\n",
			`p.yaml:2:22: severity.unauthorised_open: invalid severity "P7"`},
		{"unknown kind", "severity:\n  open: P1\nhosts:\n  - match: local\n",
			`p.yaml:2:3: severity.open: unknown finding kind "open"`},
		{"bad port", "hosts:\n  - match: local\n    allow: [22, 70000]\n",
			`p.yaml:3:17: hosts[0].allow[1]: "70000" is not a port 1-65535`},
		{"unknown group", "hosts:\n  - match: group:db\n",
			`p.yaml:2:5: hosts[0].match: unknown group "group:db"`},
		{"exception incomplete", "hosts:\n  - match: local\nexceptions:\n  - match: local\n    port: 80\n",
			"p.yaml:4:5: exceptions[0]: missing owner"},
		{"bad date", "hosts:\n  - match: local\nexceptions:\n  - {match: local, port: 80, owner: a, reason: b, expires: soon}\n",
			`p.yaml:4:60: exceptions[0].expires: "soon" is not a date`},
		{"missing match", "hosts:\n  - allow: [22]\n", "p.yaml:2:5: hosts[0]: missing match"},
		{"bad bind", "hosts:\n  - match: local\n    allow:\n      - {port: 22, bind: [lan]}\n",
			`hosts[0].allow[0].bind: "lan": want loopback, any, an IP address or a CIDR`},
		{"syntax", "hosts: [\n", "p.yaml:"},
		{"empty", "", "p.yaml: empty policy"},
		{"no hosts", "severity: {}\n", "no hosts"},
		{"repeated key", "hosts:\n  - match: local\nhosts: []\n", "p.yaml:3:1: hosts: repeated key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tt.yaml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v\nwant it to contain %q", err, tt.want)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("err %T is not a *PolicyError", err)
			}
		})
	}
}

// TestSecurityDocPolicy loads the complete example policy of docs/security.md.
func TestSecurityDocPolicy(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)<!-- policy example -->\n```yaml\n(.*?)```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/security.md has no ```yaml block after <!-- policy example -->")
	}
	p, err := Parse("docs/security.md", m[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Hosts) < 2 || len(p.Exceptions) == 0 || len(p.Groups) == 0 {
		t.Errorf("the example should show hosts, groups and exceptions: %d hosts, %d groups, %d exceptions", len(p.Hosts), len(p.Groups), len(p.Exceptions))
	}
}

func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/policy.yaml")
	f.Add(seed)
	f.Add([]byte("hosts:\n  - match: [local, 10.0.0.0/8, group:x]\ngroups: {x: [a.example]}\n"))
	f.Add([]byte("hosts: [{match: local, allow: [{port: '1-10', bind: [any]}]}]\n"))
	f.Add([]byte("exceptions: [{match: local, port: 1, owner: o, reason: r, expires: 2026-01-01T00:00:00Z}]\nhosts: []"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PolicyError", err)
			}
			return
		}
		for _, target := range p.Targets() {
			if !p.Names(target) {
				t.Fatalf("policy does not name its own target %q", target)
			}
			_ = p.portsFor(target)
		}
	})
}
