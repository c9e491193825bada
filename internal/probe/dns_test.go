package probe

import (
	"crypto/tls"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// dnsZone answers the test names: www.example.test has two A records and an NS in the
// authority section; anything else is NXDOMAIN. It records the RD bit of the last query.
type dnsZone struct{ rd atomic.Bool }

func (z *dnsZone) ServeDNS(w dns.ResponseWriter, q *dns.Msg) {
	z.rd.Store(q.RecursionDesired)
	m := new(dns.Msg)
	m.SetReply(q)
	name := q.Question[0].Name
	switch {
	case name == "www.example.test." && q.Question[0].Qtype == dns.TypeA:
		for _, ip := range []string{"192.0.2.10", "192.0.2.11"} {
			rr, _ := dns.NewRR("www.example.test. 300 IN A " + ip)
			m.Answer = append(m.Answer, rr)
		}
		ns, _ := dns.NewRR("example.test. 300 IN NS ns1.example.test.")
		m.Ns = append(m.Ns, ns)
	case name == "www.example.test.":
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// serveDNS starts the zone over UDP and TCP on loopback and returns the two addresses.
func serveDNS(t *testing.T, z *dnsZone) (udpAddr, tcpAddr string) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: z}, {Listener: ln, Handler: z}} {
		started := make(chan struct{})
		done := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return pc.LocalAddr().String(), ln.Addr().String()
}

func TestDNS(t *testing.T) {
	leakCheck(t)
	zone := &dnsZone{}
	udpAddr, tcpAddr := serveDNS(t, zone)
	// A UDP socket that reads queries and never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	// A UDP server that answers with garbage.
	junk, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	junkDone := make(chan struct{})
	go func() {
		defer close(junkDone)
		buf := make([]byte, 512)
		for {
			n, from, err := junk.ReadFrom(buf)
			if err != nil {
				return
			}
			if n < 2 {
				continue
			}
			// The query's ID and a header that promises records, then bytes that
			// cannot be a DNS message.
			junk.WriteTo([]byte{buf[0], buf[1], 0x81, 0x80, 0, 1, 0, 9, 0, 0, 0, 0, 0xff, 0xff, 0xff}, from)
		}
	}()
	t.Cleanup(func() { junk.Close(); <-junkDone })
	closedTCP := closedTCPAddr(t)
	closedUDP := closedUDPAddr(t)

	tests := []struct {
		name      string
		target    string
		module    Module
		class     patrol.Class
		fragments []string
		details   map[string]string
	}{
		{name: "udp", target: "dns://" + udpAddr + "?name=www.example.test&type=A", class: patrol.ClassOK,
			details: map[string]string{"rcode": "NOERROR", "answers": "2", "answer": "www.example.test.\t300\tIN\tA\t192.0.2.10"}},
		{name: "tcp", target: "dns://" + tcpAddr + "?name=www.example.test&type=A&transport=tcp", class: patrol.ClassOK,
			details: map[string]string{"rcode": "NOERROR", "answers": "2"}},
		{name: "module settings", target: "dns://" + tcpAddr, module: Module{DNS: DNSModule{QueryName: "www.example.test", QueryType: "a", TransportProtocol: "tcp"}},
			class: patrol.ClassOK},
		{name: "nxdomain", target: "dns://" + udpAddr + "?name=missing.example.test&type=A", class: patrol.ClassProtocol,
			fragments: []string{"rcode NXDOMAIN, want NOERROR"}, details: map[string]string{"rcode": "NXDOMAIN", "answers": "0"}},
		{name: "nxdomain expected", target: "dns://" + udpAddr + "?name=missing.example.test&rcode=NXDOMAIN", class: patrol.ClassOK},
		{name: "valid_rcodes", target: "dns://" + udpAddr + "?name=missing.example.test", module: Module{DNS: DNSModule{ValidRcodes: []string{"NOERROR", "SERVFAIL"}}},
			class: patrol.ClassProtocol, fragments: []string{"want NOERROR, SERVFAIL"}},
		{name: "answer must match", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfNotMatchesRegexp: []string{`IN\tA\t192\.0\.2\.`}}}}, class: patrol.ClassOK},
		{name: "fail_if_not_matches_regexp", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfNotMatchesRegexp: []string{`192\.0\.2\.10`}}}}, class: patrol.ClassProtocol,
			fragments: []string{"answer: fail_if_not_matches_regexp", "192.0.2.11", "does not match"}},
		{name: "fail_if_matches_regexp", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfMatchesRegexp: []string{`192\.0\.2\.11`}}}}, class: patrol.ClassProtocol,
			fragments: []string{"answer: fail_if_matches_regexp"}},
		{name: "fail_if_all_match_regexp", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfAllMatchRegexp: []string{`192\.0\.2\.`}}}}, class: patrol.ClassProtocol,
			fragments: []string{"all 2 records match"}},
		{name: "fail_if_none_matches_regexp", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfNoneMatchesRegexp: []string{`10\.0\.0\.1`}}}}, class: patrol.ClassProtocol,
			fragments: []string{"none of 2 records match"}},
		{name: "none match on an empty answer", target: "dns://" + udpAddr + "?name=www.example.test&type=AAAA",
			module: Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfNoneMatchesRegexp: []string{`.`}}}}, class: patrol.ClassProtocol,
			fragments: []string{"none of 0 records match"}},
		{name: "authority rule", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAuthority: RRValidator{FailIfNoneMatchesRegexp: []string{`NS\tns1\.example\.test\.$`}}}}, class: patrol.ClassOK},
		{name: "additional rule", target: "dns://" + udpAddr + "?name=www.example.test&type=A",
			module: Module{DNS: DNSModule{ValidateAdditional: RRValidator{FailIfNoneMatchesRegexp: []string{`.`}}}}, class: patrol.ClassProtocol,
			fragments: []string{"additional: fail_if_none_matches_regexp"}},
		{name: "no reply", target: "dns://" + silent.LocalAddr().String() + "?name=www.example.test&timeout=300ms", class: patrol.ClassTimeout},
		{name: "garbage reply", target: "dns://" + junk.LocalAddr().String() + "?name=www.example.test&timeout=2s", class: patrol.ClassProtocol,
			fragments: []string{"malformed reply"}},
		{name: "tcp refused", target: "dns://" + closedTCP + "?name=www.example.test&transport=tcp", class: patrol.ClassRefused},
		{name: "udp port unreachable", target: "dns://" + closedUDP + "?name=www.example.test", class: patrol.ClassRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runProbe(t, tt.target, tt.module, &Env{})
			wantResult(t, res, tt.class, tt.fragments...)
			for k, want := range tt.details {
				if got := res.Details[k]; got != want {
					t.Errorf("got detail %s=%q, want %q", k, got, want)
				}
			}
			if _, ok := res.Phase("connect"); !ok {
				t.Errorf("got phases %v, want connect", res.Phases)
			}
			if tt.class != patrol.ClassRefused || strings.Contains(tt.name, "udp") {
				if _, ok := res.Phase("request"); !ok {
					t.Errorf("got phases %v, want request", res.Phases)
				}
			}
		})
	}

	t.Run("recursion_desired", func(t *testing.T) {
		for _, rd := range []bool{true, false} {
			target := "dns://" + udpAddr + "?name=www.example.test"
			if !rd {
				target += "&recursion=false"
			}
			wantResult(t, runProbe(t, target, Module{}, &Env{}), patrol.ClassOK)
			if got := zone.rd.Load(); got != rd {
				t.Errorf("got RD %v at the server, want %v", got, rd)
			}
		}
	})
}

func TestDNSOverTLS(t *testing.T) {
	leakCheck(t)
	ca := newCA(t, "Patrol Test CA")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{ca.validCert(t)}}), Handler: &dnsZone{}}
	started, done := make(chan struct{}), make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { defer close(done); srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { srv.Shutdown(); <-done })

	m := Module{DNS: DNSModule{DNSOverTLS: true, TransportProtocol: "tcp"}}
	target := "dns://" + ln.Addr().String() + "?name=www.example.test&type=A"
	res := runProbe(t, target, m, &Env{RootCAs: ca.pool})
	wantResult(t, res, patrol.ClassOK)
	if res.TLS == nil || !res.TLS.Verified {
		t.Errorf("got TLS info %+v, want a verified session", res.TLS)
	}
	if res.Details["answers"] != "2" {
		t.Errorf("got %s answers, want 2", res.Details["answers"])
	}
	wantResult(t, runProbe(t, target, m, &Env{}), patrol.ClassTLS, "unknown authority")
}

func TestDNSOptionErrors(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		module   Module
		fragment string
	}{
		{"missing name", "dns://127.0.0.1:53", Module{}, "query_name is required"},
		{"bad name", "dns://127.0.0.1:53?name=a..b", Module{}, "not a domain name"},
		{"bad type", "dns://127.0.0.1:53?name=x.test&type=AX", Module{}, "query_type"},
		{"bad class", "dns://127.0.0.1:53?name=x.test", Module{DNS: DNSModule{QueryClass: "XX"}}, "query_class"},
		{"bad transport", "dns://127.0.0.1:53?name=x.test&transport=quic", Module{}, "transport_protocol"},
		{"bad rcode", "dns://127.0.0.1:53?name=x.test&rcode=NOPE", Module{}, "valid_rcodes"},
		{"bad rule", "dns://127.0.0.1:53?name=x.test", Module{DNS: DNSModule{ValidateAnswer: RRValidator{FailIfMatchesRegexp: []string{"("}}}}, "validate_answer_rrs.fail_if_matches_regexp[0]"},
		{"dot over udp", "dns://127.0.0.1:53?name=x.test", Module{DNS: DNSModule{DNSOverTLS: true}}, "dns_over_tls"},
		{"unknown option", "dns://127.0.0.1:53?name=x.test&qtype=A", Module{}, "unknown option qtype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, tt.target, tt.module)
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.fragment)
			}
			if !strings.Contains(err.Error(), tt.fragment) {
				t.Errorf("got error %q, want it to contain %q", err, tt.fragment)
			}
		})
	}
}
