package probe

import "time"

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
	TLS      TLSConfig      `yaml:"tls"`
	Redis    RedisModule    `yaml:"redis"`
	MySQL    MySQLModule    `yaml:"mysql"`
	Postgres PostgresModule `yaml:"postgres"`
	SMTP     SMTPModule     `yaml:"smtp"`
	GRPC     GRPCModule     `yaml:"grpc"`
	NATS     NATSModule     `yaml:"nats"`
	MQTT     MQTTModule     `yaml:"mqtt"`
}

// TLSConfig mirrors blackbox_exporter's (Prometheus common) tls_config.
type TLSConfig struct {
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	// MinVersion is "TLS10".."TLS13", as in Prometheus configs.
	MinVersion string `yaml:"min_version"`
}

// QueryResponse is one step of a TCP dialogue: optionally expect a regexp, then
// optionally send a line, as blackbox_exporter's query_response.
type QueryResponse struct {
	Expect   string `yaml:"expect"`
	Send     string `yaml:"send"`
	StartTLS bool   `yaml:"starttls"`
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
	BodySizeLimit                int64             `yaml:"body_size_limit"`
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
