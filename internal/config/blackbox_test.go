package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/probe"
)

// TestBlackboxExampleLoads loads a blackbox_exporter configuration written as its
// documentation writes one, unchanged: every module loads, the fields portpatrol
// honours reach its modules, and the ones it does not come back as warnings at their
// positions, never as errors.
func TestBlackboxExampleLoads(t *testing.T) {
	const file = "testdata/blackbox_example.yml"
	for _, load := range []struct {
		name string
		load func(t *testing.T) (map[string]probe.Module, []Warning)
	}{
		{"as a blackbox file", func(t *testing.T) (map[string]probe.Module, []Warning) {
			mods, warns, err := LoadBlackboxModules(file)
			if err != nil {
				t.Fatalf("LoadBlackboxModules: %v", err)
			}
			return mods, warns
		}},
		{"as a portpatrol config", func(t *testing.T) (map[string]probe.Module, []Warning) {
			c, err := Load(file)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			return c.Modules, c.Warnings
		}},
		{"through modules_files", func(t *testing.T) (map[string]probe.Module, []Warning) {
			abs, err := filepath.Abs(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse([]byte("modules_files: ["+abs+"]\n"), filepath.Join(t.TempDir(), "pp.yaml"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			return c.Modules, c.Warnings
		}},
	} {
		t.Run(load.name, func(t *testing.T) {
			mods, warns := load.load(t)
			for name, prober := range map[string]string{"http_2xx": "http", "icmp": "icmp", "icmp_ttl5": "icmp", "grpc_plain": "grpc",
				"dns_udp_example": "dns", "unix_socket_ping": "unix", "websocket": "websocket", "postgresql": "tcp", "irc_banner": "tcp"} {
				if got := mods[name].Prober; got != prober {
					t.Errorf("module %s: got prober %q, want %q", name, got, prober)
				}
			}
			if m := mods["icmp_ttl5"]; m.ICMP.TTL == nil || *m.ICMP.TTL != 5 {
				t.Errorf("icmp_ttl5: got ttl %v, want 5", m.ICMP.TTL)
			}
			if m := mods["icmp_example"]; m.ICMP.SourceIPAddress != "127.0.0.1" || m.ICMP.IPProtocol != "ip4" {
				t.Errorf("icmp_example: got %+v, want ip4 from 127.0.0.1", m.ICMP)
			}
			if m := mods["http_body_limit"]; m.HTTP.BodySizeLimit != 10<<20 || m.HTTP.Authorization == nil || m.HTTP.Authorization.Credentials != "secret_token" {
				t.Errorf("http_body_limit: got limit %d, authorization %+v; want 10MB and the token", m.HTTP.BodySizeLimit, m.HTTP.Authorization)
			}
			if m := mods["grpc"]; m.GRPC.IPProtocol != "ip4" || !m.GRPC.TLS {
				t.Errorf("grpc: got %+v, want tls over ip4", m.GRPC)
			}
			if qr := mods["ssh_banner_extract"].TCP.QueryResponse; len(qr) != 1 || len(qr[0].Labels) != 2 || qr[0].Labels[0] != (probe.Label{Name: "ssh_version", Value: "${1}"}) {
				t.Errorf("ssh_banner_extract: got %+v, want two labels, ssh_version first", qr)
			}
			if qr := mods["postgresql"].TCP.QueryResponse; len(qr) != 3 || qr[0].Send != "\x00\x00\x00\x08\x04\xd2\x16\x2f" {
				t.Errorf("postgresql: got %+v, want the SSLRequest bytes", qr)
			}
			if got := mods["dns_udp_example"].DNS.ValidateAnswer.FailIfNoneMatchesRegexp; len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("dns_udp_example: got fail_if_none_matches_regexp %q", got)
			}

			got := map[string]Warning{}
			for _, w := range warns {
				if w.File == "" || w.Line == 0 || w.Column == 0 {
					t.Errorf("warning without a position: %+v", w)
				}
				got[w.Path] = w
			}
			for path, line := range map[string]int{
				"modules.http_3xx.http.enable_http3":                                 74,
				"modules.http_with_proxy.http.proxy_url":                             121,
				"modules.http_with_proxy.http.skip_resolve_phase_with_proxy":         122,
				"modules.http_with_proxy_and_headers.http.proxy_connect_header":      128,
				"modules.http_json_cel_match.http.fail_if_body_json_not_matches_cel": 159,
				"modules.http_2xx_oauth_client_credentials.http.oauth2":              171,
				"modules.ssh_banner_extract.tcp.query_response[0].labels":            48,
				"modules.postgresql.tcp.query_response[1].expect_bytes":              82,
				"modules.unix_socket_ping.prober":                                    316,
				"modules.websocket.prober":                                           69,
				"modules.grpc_metadata.grpc.metadata":                                343,
				"modules.tcp_source.tcp.source_ip_address":                           264,
				"modules.http_post_body_file":                                        139,
			} {
				w, ok := got[path]
				if !ok {
					t.Errorf("no warning for %s", path)
					continue
				}
				if w.Line != line {
					t.Errorf("warning for %s: got line %d, want %d", path, w.Line, line)
				}
			}
			// What portpatrol honours is not warned about.
			for _, path := range []string{"modules.icmp_ttl5.icmp.ttl", "modules.icmp_all.icmp.ip_protocol_fallback",
				"modules.http_2xx_example.http.ip_protocol_fallback", "modules.http_body_limit.http.authorization",
				"modules.dns_tcp_example.dns.recursion_desired", "modules.http_2xx_example.http.http_headers"} {
				if w, ok := got[path]; ok {
					t.Errorf("got warning %s, want none", w)
				}
			}
		})
	}
}

// TestBlackboxErrorsInOneRun checks that a blackbox file's problems of every kind
// come in one run, and that a field blackbox_exporter does not know either is still an
// error.
func TestBlackboxErrorsInOneRun(t *testing.T) {
	bb := `modules:
  a:
    prober: http
    http:
      proxy_urll: "http://127.0.0.1:3128"
  b:
    prober: gopher
  c:
    prober: tcp
    timeout: 5x
  d:
    prober: http
    http:
      body_size_limit: 10XB
  e:
    prober: icmp
    icmp:
      ttl: 300
`
	_, _, err := ParseBlackboxModules([]byte(bb), "bb.yml")
	if err == nil {
		t.Fatal("got no error")
	}
	for _, want := range []string{
		`bb.yml:5:7: modules.a.http.proxy_urll: unknown field "proxy_urll"`,
		`bb.yml:7:13: modules.b.prober: prober "gopher" is not supported`,
		`bb.yml:10:14: modules.c.timeout: "5x" is not a duration`,
		`bb.yml:14:24: modules.d.http.body_size_limit: "10XB": unknown unit "XB"`,
		`bb.yml:16:5: modules.e: icmp.ttl 300: want 0 to 255`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got\n%v\nwant it to contain %q", err, want)
		}
	}
}

// TestTargetOfUnsupportedProberIsAnError checks that a module of a prober portpatrol
// lacks loads with a warning, but a target that uses it is refused.
func TestTargetOfUnsupportedProberIsAnError(t *testing.T) {
	cfg := "modules:\n  u:\n    prober: unix\n"
	c, err := Parse([]byte(cfg), "pp.yaml")
	if err != nil {
		t.Fatalf("module alone: got %v, want it to load", err)
	}
	if len(c.Warnings) != 1 || c.Warnings[0].String() != "pp.yaml:3:13: warning: modules.u.prober: portpatrol has no unix prober; targets cannot use this module" {
		t.Errorf("got warnings %v, want the unix prober named at 3:13", c.Warnings)
	}
	_, err = Parse([]byte(cfg+"targets:\n  - url: 127.0.0.1:1\n    module: u\n"), "pp.yaml")
	if err == nil || !strings.Contains(err.Error(), `prober "unix" is not supported`) {
		t.Errorf("target using it: got %v, want the prober refused", err)
	}
}

func TestWarningString(t *testing.T) {
	for _, tc := range []struct {
		w    Warning
		want string
	}{
		{Warning{File: "a.yml", Line: 3, Column: 5, Path: "modules.x.http.oauth2", Msg: "not fetched"}, "a.yml:3:5: warning: modules.x.http.oauth2: not fetched"},
		{Warning{File: "a.yml", Msg: "no position"}, "a.yml: warning: no position"},
	} {
		if got := tc.w.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
