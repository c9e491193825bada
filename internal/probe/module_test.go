package probe

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TestBlackboxHTTPFieldsReachTheRequest checks that blackbox's authorization and
// http_headers are sent, as bearer_token and headers are.
func TestBlackboxHTTPFieldsReachTheRequest(t *testing.T) {
	leakCheck(t)
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Clone():
		default:
		}
	}))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name string
		m    HTTPModule
		want map[string]string
	}{
		{"authorization bearer", HTTPModule{Authorization: &Authorization{Credentials: "tok"}}, map[string]string{"Authorization": "Bearer tok"}},
		{"authorization other type", HTTPModule{Authorization: &Authorization{Type: "Token", Credentials: "abc"}}, map[string]string{"Authorization": "Token abc"}},
		{"bearer_token wins", HTTPModule{BearerToken: "own", Authorization: &Authorization{Credentials: "tok"}}, map[string]string{"Authorization": "Bearer own"}},
		{"http_headers last value", HTTPModule{HTTPHeaders: map[string]HTTPHeader{"X-Lang": {Values: []string{"de", "en-US"}}, "X-Key": {Secrets: []string{"s3"}}}},
			map[string]string{"X-Lang": "en-US", "X-Key": "s3"}},
		{"headers win over http_headers", HTTPModule{Headers: map[string]string{"X-Lang": "fr"}, HTTPHeaders: map[string]HTTPHeader{"X-Lang": {Values: []string{"en"}}}},
			map[string]string{"X-Lang": "fr"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := Module{Prober: "http", HTTP: tc.m}
			res := runProbe(t, srv.URL+"/", m, &Env{})
			wantResult(t, res, patrol.ClassOK)
			h := <-got
			for k, v := range tc.want {
				if h.Get(k) != v {
					t.Errorf("header %s: got %q, want %q", k, h.Get(k), v)
				}
			}
			if tc.m.Headers != nil && len(tc.m.Headers) != 1 {
				t.Errorf("the module's headers were changed: %v", tc.m.Headers)
			}
		})
	}
}

func TestTLSConfigInlinePEMAndMaxVersion(t *testing.T) {
	leakCheck(t)
	ca := newCA(t, "inline CA")
	addr := serveTLS(t, ca.validCert(t))
	caPEM, err := os.ReadFile(ca.pemFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		c     TLSConfig
		class patrol.Class
		frag  string
	}{
		{"inline ca trusted", TLSConfig{CA: string(caPEM)}, patrol.ClassOK, ""},
		{"without it untrusted", TLSConfig{}, patrol.ClassTLS, ""},
		{"max_version 1.2 still handshakes", TLSConfig{CA: string(caPEM), MaxVersion: "TLS12"}, patrol.ClassOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runProbe(t, "tls://"+addr, Module{TLS: tc.c}, &Env{})
			if res.Class != tc.class {
				t.Fatalf("got %s (%s), want %s", res.Class, res.Error, tc.class)
			}
			if tc.c.MaxVersion == "TLS12" && (res.TLS == nil || res.TLS.Version != "TLS 1.2") {
				t.Errorf("got TLS %+v, want version TLS 1.2", res.TLS)
			}
		})
	}
	for _, tc := range []struct {
		name string
		c    TLSConfig
		want string
	}{
		{"bad max_version", TLSConfig{MaxVersion: "SSL3"}, `max_version "SSL3"`},
		{"max below min", TLSConfig{MinVersion: "TLS13", MaxVersion: "TLS12"}, "below min_version"},
		{"ca not PEM", TLSConfig{CA: "nope"}, "tls_config.ca: no PEM"},
		{"ca and ca_file", TLSConfig{CA: string(caPEM), CAFile: ca.pemFile}, "exclude each other"},
		{"cert without key", TLSConfig{Cert: "x"}, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := buildErr(t, "tls://127.0.0.1:1", Module{TLS: tc.c})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  string
	}{
		{"0", 0, ""}, {"4096", 4096, ""}, {"10KB", 10 << 10, ""}, {"10MB", 10 << 20, ""}, {"1GiB", 1 << 30, ""},
		{"2 MB", 2 << 20, ""}, {"5b", 5, ""},
		{"10XB", 0, "unknown unit"}, {"MB", 0, "not a size"}, {"", 0, "not a size"}, {"99999999999TB", 0, "too large"},
	} {
		got, err := ParseByteSize(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseByteSize(%q): got %v, want an error containing %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestUnhonoured(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		name string
		m    Module
		want []string
	}{
		{"plain http", Module{Prober: "http", HTTP: HTTPModule{Method: "GET", Headers: map[string]string{"A": "b"}}}, nil},
		{"ip4 without fallback", Module{Prober: "http", HTTP: HTTPModule{IPProtocol: "ip4", IPProtocolFallback: &no}}, nil},
		{"ip4 with fallback", Module{Prober: "http", HTTP: HTTPModule{IPProtocol: "ip4"}}, []string{"http.preferred_ip_protocol"}},
		{"proxy and oauth2", Module{Prober: "http", HTTP: HTTPModule{Proxy: Proxy{ProxyURL: "http://p:3128"}, OAuth2: &OAuth2{}, EnableHTTP3: true}},
			[]string{"http.oauth2", "http.proxy_url", "http.enable_http3"}},
		{"enable_http2 with HTTP/2 listed", Module{Prober: "http", HTTP: HTTPModule{EnableHTTP2: &yes, ValidHTTPVersions: []string{"HTTP/2.0"}}}, nil},
		{"enable_http2 without", Module{Prober: "http", HTTP: HTTPModule{EnableHTTP2: &yes}}, []string{"http.enable_http2"}},
		{"tcp labels", Module{Prober: "tcp", TCP: TCPModule{QueryResponse: []QueryResponse{{Expect: "x"}, {Expect: "y", Labels: []Label{{Name: "a"}}}}}},
			[]string{"tcp.query_response[1].labels"}},
		{"unix prober", Module{Prober: "unix"}, []string{"prober"}},
		{"icmp fully", Module{Prober: "icmp", ICMP: ICMPModule{IPProtocol: "ip6", IPProtocolFallback: &no, PayloadSize: 9, DontFragment: true}}, nil},
		{"sections of other probers are not looked at", Module{Prober: "tcp", HTTP: HTTPModule{OAuth2: &OAuth2{}}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, u := range tc.m.Unhonoured() {
				got = append(got, u.Path)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestGRPCPreferredIPProtocol(t *testing.T) {
	leakCheck(t)
	// Only an IPv4 listener: asking for ip6 on a name that has both must not reach it.
	addr := serveTCP(t, func(c net.Conn) {})
	_, port, _ := net.SplitHostPort(addr)
	res := runProbe(t, "grpc://localhost:"+port, Module{Prober: "grpc", GRPC: GRPCModule{IPProtocol: "ip6"}}, &Env{})
	if res.RemoteAddr == addr || strings.HasPrefix(res.RemoteAddr, "127.") {
		t.Errorf("got remote %q, want an IPv6 address or none with preferred_ip_protocol ip6", res.RemoteAddr)
	}
}
