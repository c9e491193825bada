package probe

import (
	"cmp"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Module is a named set of probe settings. Its YAML is blackbox_exporter's module YAML
// (prober, timeout, tcp, http, dns sections with the same field names) plus sections
// for portpatrol's own probers, so an existing blackbox.yml loads as it is. The zero
// Module means "the scheme's defaults".
type Module struct {
	// Prober names the probe kind: tcp, tls, http, dns, udp, redis, mysql… Empty means
	// the target's scheme.
	Prober  string        `yaml:"prober"`
	Timeout time.Duration `yaml:"timeout"`
	// AllowTargetOptions lets a /probe target override what this module sends or
	// logs in with (send, expect, method, header, credentials in the URL…; see
	// Probe.Overrides). Off by default: a scrape then runs what the operator wrote.
	// Scheduled targets from the configuration file may always carry options.
	AllowTargetOptions bool       `yaml:"allow_target_options"`
	TCP                TCPModule  `yaml:"tcp"`
	HTTP               HTTPModule `yaml:"http"`
	DNS                DNSModule  `yaml:"dns"`
	UDP                UDPModule  `yaml:"udp"`
	// TLS configures the tls prober (tls://host:port); tcp and http carry their own
	// tls_config as in blackbox_exporter.
	TLS        TLSConfig        `yaml:"tls"`
	Redis      RedisModule      `yaml:"redis"`
	MySQL      MySQLModule      `yaml:"mysql"`
	Postgres   PostgresModule   `yaml:"postgres"`
	SMTP       SMTPModule       `yaml:"smtp"`
	GRPC       GRPCModule       `yaml:"grpc"`
	NATS       NATSModule       `yaml:"nats"`
	MQTT       MQTTModule       `yaml:"mqtt"`
	ICMP       ICMPModule       `yaml:"icmp"`
	Prometheus PrometheusModule `yaml:"prometheus"`
	// Unix and Websocket are blackbox_exporter's unix and websocket sections. They are
	// read so that a blackbox.yml loads whole; portpatrol has no such probers yet (see
	// Unhonoured).
	Unix      UnixModule      `yaml:"unix"`
	Websocket WebsocketModule `yaml:"websocket"`
}

// TLSConfig mirrors blackbox_exporter's (Prometheus common) tls_config.
type TLSConfig struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	// MinVersion and MaxVersion are "TLS10".."TLS13", as in Prometheus configs.
	MinVersion string `yaml:"min_version"`
	MaxVersion string `yaml:"max_version"`
	// CA, Cert and Key are PEM text in the file itself, in place of the *_file fields.
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CARef, CertRef and KeyRef name secrets of a Prometheus secret manager; portpatrol
	// has none, so they are reported as not honoured.
	CARef   string `yaml:"ca_ref"`
	CertRef string `yaml:"cert_ref"`
	KeyRef  string `yaml:"key_ref"`
}

// QueryResponse is one step of a TCP dialogue: optionally expect a regexp, then
// optionally send a line, as blackbox_exporter's query_response.
type QueryResponse struct {
	Expect   string `yaml:"expect"`
	Send     string `yaml:"send"`
	StartTLS bool   `yaml:"starttls"`
	// ExpectBytes is an exact byte match in place of Expect; Labels name what Expect
	// captured for blackbox's probe_expect_info. Neither is honoured yet.
	ExpectBytes string  `yaml:"expect_bytes"`
	Labels      []Label `yaml:"labels"`
}

// Label is a name and value of blackbox_exporter's query_response labels; Value may
// hold ${1} references to what expect captured.
type Label struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// TCPModule configures the tcp prober (blackbox_exporter's tcp section).
type TCPModule struct {
	IPProtocol         string          `yaml:"preferred_ip_protocol"`
	IPProtocolFallback *bool           `yaml:"ip_protocol_fallback"`
	SourceIPAddress    string          `yaml:"source_ip_address"`
	QueryResponse      []QueryResponse `yaml:"query_response"`
	TLS                bool            `yaml:"tls"`
	TLSConfig          TLSConfig       `yaml:"tls_config"`
	// Close is how a connection is ended: "reset" (the default for a bare connect:
	// SO_LINGER 0, so the prober keeps no TIME_WAIT state) or "graceful" (FIN).
	Close string `yaml:"close"`
	// Handshake is how a bare connect check (no dialogue, no TLS) finds a port open:
	// "half" sends a SYN from a raw socket and reads SYN-ACK or RST, so the service
	// never sees a connection; "full" connects. "auto" (the default) is half-open for
	// IP addresses of this host when the process has CAP_NET_RAW, full otherwise.
	Handshake string `yaml:"handshake"`
}

// HeaderMatch is a header rule of blackbox_exporter's http module.
type HeaderMatch struct {
	Header       string `yaml:"header"`
	Regexp       string `yaml:"regexp"`
	AllowMissing bool   `yaml:"allow_missing"`
}

// BasicAuth is HTTP basic authentication; the password may come from a file.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	UsernameFile string `yaml:"username_file"`
	UsernameRef  string `yaml:"username_ref"`
	PasswordRef  string `yaml:"password_ref"`
}

// Authorization is Prometheus' authorization section: an Authorization header of a
// type (default Bearer) with credentials, inline or from a file.
type Authorization struct {
	Type            string `yaml:"type"`
	Credentials     string `yaml:"credentials"`
	CredentialsFile string `yaml:"credentials_file"`
	CredentialsRef  string `yaml:"credentials_ref"`
}

// HTTPHeader is one entry of Prometheus' http_headers: values, secrets or files; the
// last one given is sent.
type HTTPHeader struct {
	Values  []string `yaml:"values"`
	Secrets []string `yaml:"secrets"`
	Files   []string `yaml:"files"`
}

// OAuth2 is Prometheus' oauth2 section. It is read so that a blackbox.yml loads;
// portpatrol does not fetch tokens yet.
type OAuth2 struct {
	ClientID                 string            `yaml:"client_id"`
	ClientSecret             string            `yaml:"client_secret"`
	ClientSecretFile         string            `yaml:"client_secret_file"`
	ClientSecretRef          string            `yaml:"client_secret_ref"`
	ClientCertificateKeyID   string            `yaml:"client_certificate_key_id"`
	ClientCertificateKey     string            `yaml:"client_certificate_key"`
	ClientCertificateKeyFile string            `yaml:"client_certificate_key_file"`
	ClientCertificateKeyRef  string            `yaml:"client_certificate_key_ref"`
	GrantType                string            `yaml:"grant_type"`
	SignatureAlgorithm       string            `yaml:"signature_algorithm"`
	Iss                      string            `yaml:"iss"`
	Audience                 string            `yaml:"audience"`
	Claims                   map[string]any    `yaml:"claims"`
	Scopes                   []string          `yaml:"scopes"`
	TokenURL                 string            `yaml:"token_url"`
	EndpointParams           map[string]string `yaml:"endpoint_params"`
	TLSConfig                TLSConfig         `yaml:"tls_config"`
	Proxy                    Proxy             `yaml:",inline"`
}

// Proxy is Prometheus' proxy settings, inline in http and oauth2 sections.
type Proxy struct {
	ProxyURL             string              `yaml:"proxy_url"`
	NoProxy              string              `yaml:"no_proxy"`
	ProxyFromEnvironment bool                `yaml:"proxy_from_environment"`
	ProxyConnectHeader   map[string][]string `yaml:"proxy_connect_header"`
}

// ByteSize is a size in bytes, written as a number or with a unit as Prometheus
// writes them: 512, 10KB, 10MB, 1GiB (KB and KiB are both 1024).
type ByteSize int64

// UnmarshalText reads a size with an optional unit; YAML decoding uses it.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// ParseByteSize reads a size such as 4096, 10KB or 1MiB. Units are powers of 1024,
// as in blackbox_exporter.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	num, unit := t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size; write e.g. 4096, 10KB, 10MB", s)
	}
	shift := map[string]uint{"": 0, "B": 0, "KB": 10, "KIB": 10, "K": 10, "MB": 20, "MIB": 20, "M": 20,
		"GB": 30, "GIB": 30, "G": 30, "TB": 40, "TIB": 40, "T": 40}
	sh, ok := shift[unit]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit %q; want B, KB, MB, GB or TB", s, unit)
	}
	if n > (1<<63-1)>>sh {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n << sh), nil
}

// HTTPModule configures the http prober (blackbox_exporter's http section).
type HTTPModule struct {
	IPProtocol                   string            `yaml:"preferred_ip_protocol"`
	IPProtocolFallback           *bool             `yaml:"ip_protocol_fallback"`
	ValidStatusCodes             []int             `yaml:"valid_status_codes"`
	ValidHTTPVersions            []string          `yaml:"valid_http_versions"`
	Method                       string            `yaml:"method"`
	Headers                      map[string]string `yaml:"headers"`
	Body                         string            `yaml:"body"`
	BodyFile                     string            `yaml:"body_file"`
	FollowRedirects              *bool             `yaml:"follow_redirects"`
	NoFollowRedirects            *bool             `yaml:"no_follow_redirects"`
	FailIfSSL                    bool              `yaml:"fail_if_ssl"`
	FailIfNotSSL                 bool              `yaml:"fail_if_not_ssl"`
	FailIfBodyMatchesRegexp      []string          `yaml:"fail_if_body_matches_regexp"`
	FailIfBodyNotMatchesRegexp   []string          `yaml:"fail_if_body_not_matches_regexp"`
	FailIfHeaderMatchesRegexp    []HeaderMatch     `yaml:"fail_if_header_matches"`
	FailIfHeaderNotMatchesRegexp []HeaderMatch     `yaml:"fail_if_header_not_matches"`
	TLSConfig                    TLSConfig         `yaml:"tls_config"`
	BasicAuth                    *BasicAuth        `yaml:"basic_auth"`
	BearerToken                  string            `yaml:"bearer_token"`
	BearerTokenFile              string            `yaml:"bearer_token_file"`
	Compression                  string            `yaml:"compression"`
	BodySizeLimit                ByteSize          `yaml:"body_size_limit"`

	// The rest of blackbox_exporter's http section. Authorization and single-valued
	// HTTPHeaders are folded into BearerToken and Headers by New; see Unhonoured for
	// what is not honoured.
	Authorization               *Authorization        `yaml:"authorization"`
	HTTPHeaders                 map[string]HTTPHeader `yaml:"http_headers"`
	OAuth2                      *OAuth2               `yaml:"oauth2"`
	Proxy                       Proxy                 `yaml:",inline"`
	SkipResolvePhaseWithProxy   bool                  `yaml:"skip_resolve_phase_with_proxy"`
	EnableHTTP2                 *bool                 `yaml:"enable_http2"`
	EnableHTTP3                 bool                  `yaml:"enable_http3"`
	FailIfBodyJSONMatchesCEL    string                `yaml:"fail_if_body_json_matches_cel"`
	FailIfBodyJSONNotMatchesCEL string                `yaml:"fail_if_body_json_not_matches_cel"`
}

// RRValidator holds blackbox_exporter's DNS record-set rules.
type RRValidator struct {
	FailIfMatchesRegexp     []string `yaml:"fail_if_matches_regexp"`
	FailIfAllMatchRegexp    []string `yaml:"fail_if_all_match_regexp"`
	FailIfNotMatchesRegexp  []string `yaml:"fail_if_not_matches_regexp"`
	FailIfNoneMatchesRegexp []string `yaml:"fail_if_none_matches_regexp"`
}

// DNSModule configures the dns prober (blackbox_exporter's dns section).
type DNSModule struct {
	IPProtocol         string      `yaml:"preferred_ip_protocol"`
	IPProtocolFallback *bool       `yaml:"ip_protocol_fallback"`
	SourceIPAddress    string      `yaml:"source_ip_address"`
	TransportProtocol  string      `yaml:"transport_protocol"` // udp (default) or tcp
	QueryClass         string      `yaml:"query_class"`
	QueryName          string      `yaml:"query_name"`
	QueryType          string      `yaml:"query_type"`
	Recursion          *bool       `yaml:"recursion_desired"`
	ValidRcodes        []string    `yaml:"valid_rcodes"`
	ValidateAnswer     RRValidator `yaml:"validate_answer_rrs"`
	ValidateAuthority  RRValidator `yaml:"validate_authority_rrs"`
	ValidateAdditional RRValidator `yaml:"validate_additional_rrs"`
	DNSOverTLS         bool        `yaml:"dns_over_tls"`
	TLSConfig          TLSConfig   `yaml:"tls_config"`
}

// UDPModule configures the udp prober: send a payload, expect a reply matching a regexp.
type UDPModule struct {
	// Send is the payload; Go escapes such as \n and \x00 are interpreted.
	Send string `yaml:"send"`
	// Expect is a regexp the reply must match; empty accepts any reply. When Send or
	// Expect is set, a reply is required: silence until the timeout is a timeout. With
	// no Send and no Expect, the probe sends an empty datagram and succeeds unless the
	// port is refused (ICMP port unreachable) within one second, or the timeout if
	// shorter; silence then counts as open, as nmap's open|filtered.
	Expect string `yaml:"expect"`
}

// ICMPModule configures the icmp prober (blackbox_exporter's icmp section).
type ICMPModule struct {
	// IPProtocol is ip4 or ip6; empty takes the first address of either family.
	IPProtocol         string `yaml:"preferred_ip_protocol"`
	IPProtocolFallback *bool  `yaml:"ip_protocol_fallback"`
	SourceIPAddress    string `yaml:"source_ip_address"`
	// PayloadSize is the echo request's data length; zero sends a 36-byte payload as
	// blackbox does.
	PayloadSize int `yaml:"payload_size"`
	// DontFragment sets DF on IPv4 packets (Linux).
	DontFragment bool `yaml:"dont_fragment"`
	// TTL is the IPv4 TTL or IPv6 hop limit, 1-255; nil leaves the system's (64 in
	// blackbox).
	TTL *int `yaml:"ttl"`
}

// UnixModule is blackbox_exporter's unix section, read but not run (no unix prober).
type UnixModule struct {
	QueryResponse []QueryResponse `yaml:"query_response"`
	TLS           bool            `yaml:"tls"`
	TLSConfig     TLSConfig       `yaml:"tls_config"`
}

// HTTPClientConfig is Prometheus' http_client_config, as blackbox's websocket section
// carries it.
type HTTPClientConfig struct {
	BasicAuth       *BasicAuth            `yaml:"basic_auth"`
	Authorization   *Authorization        `yaml:"authorization"`
	OAuth2          *OAuth2               `yaml:"oauth2"`
	BearerToken     string                `yaml:"bearer_token"`
	BearerTokenFile string                `yaml:"bearer_token_file"`
	TLSConfig       TLSConfig             `yaml:"tls_config"`
	FollowRedirects *bool                 `yaml:"follow_redirects"`
	EnableHTTP2     *bool                 `yaml:"enable_http2"`
	Proxy           Proxy                 `yaml:",inline"`
	HTTPHeaders     map[string]HTTPHeader `yaml:"http_headers"`
}

// WebsocketModule is blackbox_exporter's websocket section, read but not run (no
// websocket prober).
type WebsocketModule struct {
	HTTPConfig         HTTPClientConfig      `yaml:"http_config"`
	Headers            map[string]HTTPHeader `yaml:"headers"`
	QueryResponse      []QueryResponse       `yaml:"query_response"`
	IPProtocol         string                `yaml:"preferred_ip_protocol"`
	IPProtocolFallback *bool                 `yaml:"ip_protocol_fallback"`
}

// Unhonoured is a module setting that portpatrol reads but does not act on.
type Unhonoured struct {
	// Path is the field's path within the module, such as "http.proxy_url".
	Path string
	// Why says what portpatrol does instead.
	Why string
}

// Unhonoured lists the settings of m that are read, so that blackbox_exporter's
// configuration loads as it is, but not acted on; a probe built from m runs without
// them. Only the section of m's prober is looked at, as blackbox does. The order is
// fixed, for stable messages.
func (m Module) Unhonoured() []Unhonoured {
	var out []Unhonoured
	add := func(path, format string, args ...any) {
		out = append(out, Unhonoured{Path: path, Why: fmt.Sprintf(format, args...)})
	}
	switch m.Prober {
	case "unix", "websocket":
		add("prober", "portpatrol has no %s prober; targets cannot use this module", m.Prober)
	case "http":
		m.HTTP.unhonoured(add)
	case "tcp", "tls":
		c := m.TCP
		ipFallback(add, "tcp", c.IPProtocol, c.IPProtocolFallback)
		if c.SourceIPAddress != "" {
			add("tcp.source_ip_address", "the system picks the source address")
		}
		for i, qr := range c.QueryResponse {
			p := fmt.Sprintf("tcp.query_response[%d]", i)
			if qr.ExpectBytes != "" {
				add(p+".expect_bytes", "exact byte matches are not supported; use expect with a regexp")
			}
			if len(qr.Labels) > 0 {
				add(p+".labels", "probe_expect_info is not exported")
			}
		}
		tlsRefs(add, "tcp.tls_config", c.TLSConfig)
	case "dns":
		c := m.DNS
		ipFallback(add, "dns", c.IPProtocol, c.IPProtocolFallback)
		if c.SourceIPAddress != "" {
			add("dns.source_ip_address", "the system picks the source address")
		}
		tlsRefs(add, "dns.tls_config", c.TLSConfig)
	case "grpc":
		c := m.GRPC
		ipFallback(add, "grpc", c.IPProtocol, c.IPProtocolFallback)
		if len(c.Metadata) > 0 {
			add("grpc.metadata", "gRPC metadata is not sent")
		}
		tlsRefs(add, "grpc.tls_config", c.TLSConfig)
	case "icmp":
		ipFallback(add, "icmp", m.ICMP.IPProtocol, m.ICMP.IPProtocolFallback)
	}
	return out
}

func (c HTTPModule) unhonoured(add func(path, format string, args ...any)) {
	ipFallback(add, "http", c.IPProtocol, c.IPProtocolFallback)
	if b := c.BasicAuth; b != nil {
		if b.UsernameFile != "" {
			add("http.basic_auth.username_file", "not read; write username")
		}
		if b.UsernameRef != "" || b.PasswordRef != "" {
			add("http.basic_auth", "secret references (*_ref) are not supported; write the value or password_file")
		}
	}
	if a := c.Authorization; a != nil {
		if a.CredentialsRef != "" {
			add("http.authorization.credentials_ref", "secret references are not supported; write credentials or credentials_file")
		}
		if a.CredentialsFile != "" && a.Type != "" && !strings.EqualFold(a.Type, "Bearer") {
			add("http.authorization.credentials_file", "only Bearer credentials are read from a file; write credentials")
		}
	}
	for _, k := range sortedHeaderKeys(c.HTTPHeaders) {
		if len(c.HTTPHeaders[k].Files) > 0 {
			add("http.http_headers."+k+".files", "header values are not read from files; write values")
		}
	}
	if c.OAuth2 != nil {
		add("http.oauth2", "OAuth 2.0 tokens are not fetched; requests go without one")
	}
	c.Proxy.unhonoured(add, "http")
	if c.SkipResolvePhaseWithProxy {
		add("http.skip_resolve_phase_with_proxy", "proxies are not supported")
	}
	if c.EnableHTTP2 != nil && *c.EnableHTTP2 && !hasHTTP2(c.ValidHTTPVersions) {
		add("http.enable_http2", "HTTP/2 is negotiated only when valid_http_versions lists HTTP/2.0")
	}
	if c.EnableHTTP3 {
		add("http.enable_http3", "HTTP/3 is not supported; requests use HTTP/1.1 or HTTP/2")
	}
	if c.FailIfBodyJSONMatchesCEL != "" {
		add("http.fail_if_body_json_matches_cel", "CEL expressions are not evaluated")
	}
	if c.FailIfBodyJSONNotMatchesCEL != "" {
		add("http.fail_if_body_json_not_matches_cel", "CEL expressions are not evaluated")
	}
	tlsRefs(add, "http.tls_config", c.TLSConfig)
}

func (p Proxy) unhonoured(add func(path, format string, args ...any), prefix string) {
	if p.ProxyURL != "" {
		add(prefix+".proxy_url", "proxies are not supported; requests go directly to the target")
	}
	if p.NoProxy != "" {
		add(prefix+".no_proxy", "proxies are not supported")
	}
	if p.ProxyFromEnvironment {
		add(prefix+".proxy_from_environment", "proxies are not supported; requests go directly to the target")
	}
	if len(p.ProxyConnectHeader) > 0 {
		add(prefix+".proxy_connect_header", "proxies are not supported")
	}
}

// ipFallback reports a preferred protocol that blackbox would fall back from:
// portpatrol resolves only addresses of the preferred family.
func ipFallback(add func(path, format string, args ...any), section, proto string, fallback *bool) {
	if proto == "" || proto == "ip" || (fallback != nil && !*fallback) {
		return
	}
	path := section + ".preferred_ip_protocol"
	if fallback != nil {
		path = section + ".ip_protocol_fallback"
	}
	add(path, "portpatrol uses only %s addresses and does not fall back to the other family", proto)
}

func tlsRefs(add func(path, format string, args ...any), prefix string, c TLSConfig) {
	if c.CARef != "" || c.CertRef != "" || c.KeyRef != "" {
		add(prefix, "secret references (ca_ref, cert_ref, key_ref) are not supported; write the PEM or a *_file")
	}
}

func hasHTTP2(versions []string) bool {
	for _, v := range versions {
		if v == "HTTP/2.0" || v == "HTTP/2" {
			return true
		}
	}
	return false
}

func sortedHeaderKeys(m map[string]HTTPHeader) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fold maps blackbox_exporter's alternative spellings onto the fields the probers
// read: an authorization section onto the bearer token (or an Authorization header of
// another type), and http_headers onto headers, the last value given winning as in
// Prometheus. Maps are copied, not changed: modules are shared between targets.
func (m *Module) fold() {
	h := &m.HTTP
	extra := map[string]string{}
	if a := h.Authorization; a != nil && h.BearerToken == "" && h.BearerTokenFile == "" {
		switch typ := cmp.Or(a.Type, "Bearer"); {
		case strings.EqualFold(typ, "Bearer"):
			h.BearerToken, h.BearerTokenFile = a.Credentials, a.CredentialsFile
		case a.Credentials != "":
			extra["Authorization"] = typ + " " + a.Credentials
		}
	}
	for k, v := range h.HTTPHeaders {
		switch {
		case len(v.Secrets) > 0:
			extra[k] = v.Secrets[len(v.Secrets)-1]
		case len(v.Values) > 0:
			extra[k] = v.Values[len(v.Values)-1]
		}
	}
	if len(extra) == 0 {
		return
	}
	headers := make(map[string]string, len(h.Headers)+len(extra))
	for k, v := range extra {
		headers[k] = v
	}
	for k, v := range h.Headers {
		headers[k] = v // headers, written for this module, win over http_headers
	}
	h.Headers = headers
}
