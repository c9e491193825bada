package patrol

import (
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Scheme describes one target scheme. The port a target of the scheme uses when it
// names none comes from the well-known services table: see DefaultPort.
type Scheme struct {
	Name string
	// Doc is a one-line description for --help and errors.
	Doc string
}

// Schemes is every target scheme portpatrol knows, keyed by name.
var Schemes = map[string]Scheme{
	"tcp":        {"tcp", "TCP connect; optional send/expect steps"},
	"tls":        {"tls", "TLS handshake: chain, host name, expiry"},
	"http":       {"http", "HTTP request: status, body and header rules, phase timings"},
	"https":      {"https", "HTTP over TLS"},
	"dns":        {"dns", "DNS query to a server: rcode, answer rules"},
	"udp":        {"udp", "UDP send/expect; ICMP port unreachable is refused"},
	"redis":      {"redis", "Redis PING, capacity from INFO clients"},
	"mysql":      {"mysql", "MySQL/MariaDB handshake, optional login"},
	"postgres":   {"postgres", "PostgreSQL startup, optional login"},
	"ssh":        {"ssh", "SSH banner"},
	"smtp":       {"smtp", "SMTP greeting, optional EHLO/STARTTLS"},
	"grpc":       {"grpc", "gRPC health check (grpc.health.v1)"},
	"nats":       {"nats", "NATS INFO greeting"},
	"amqp":       {"amqp", "AMQP 0-9-1 Connection.Start"},
	"mqtt":       {"mqtt", "MQTT CONNECT/CONNACK"},
	"icmp":       {"icmp", "ICMP echo (ping): reachability and round trip; no port"},
	"prometheus": {"prometheus", "Prometheus scrape of /metrics: the exposition parses, required metrics present"},
	"memcached":  {"memcached", "memcached stats, capacity from curr/max connections"},
}

// portless are the schemes whose targets name a host only.
var portless = map[string]bool{"icmp": true}

// Portless reports whether targets of the scheme name a host without a port.
func Portless(scheme string) bool { return portless[scheme] }

// schemeAliases maps alternative spellings to a scheme.
var schemeAliases = map[string]string{"postgresql": "postgres", "mariadb": "mysql"}

// SchemeNames returns the known scheme names, sorted.
func SchemeNames() []string {
	names := make([]string, 0, len(Schemes))
	for n := range Schemes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Target is one door to watch: a scheme, an address and options. Targets are values;
// the zero value is not a valid target. Build them with ParseTarget.
type Target struct {
	// ID is the canonical form of the target, without any password. It names the
	// target in metrics, the store and alerts.
	ID     string
	Scheme string
	// Host is a host name or an IP literal, without brackets.
	Host  string
	Port  int
	Path  string
	Query url.Values
	// User holds credentials from the URL, if any. Never print it; use ID.
	User *url.Userinfo
	// Labels are user-supplied key/value pairs (service, env, team…).
	Labels map[string]string
	// Interval and Timeout are scheduling settings; zero means the defaults.
	Interval time.Duration
	Timeout  time.Duration
	// Warn is the latency threshold above which a successful probe is ClassSlow;
	// zero means no threshold.
	Warn time.Duration
	// Module names the module whose settings the probe uses; empty means the
	// scheme's built-in default.
	Module string
}

// Addr returns host:port, with IPv6 literals in brackets.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// TargetError reports a target that cannot be parsed. Neither field carries a
// password: Input is the input with RedactPasswords applied, and Reason never quotes
// the user information.
type TargetError struct {
	Input  string
	Reason string
}

func (e *TargetError) Error() string { return fmt.Sprintf("invalid target %q: %s", e.Input, e.Reason) }

// ParseTarget parses "scheme://[user[:pass]@]host[:port][/path][?options]". A bare
// "host:port" means tcp. IPv6 literals go in brackets: "[::1]:22", "tcp://[::1]:22".
func ParseTarget(s string) (Target, error) {
	t, err := parseTarget(s)
	if err == nil {
		return t, nil
	}
	if r := redactWord(s); r != s {
		// The reason may quote pieces of the password: the URL parser's
		// 'invalid port ":se"' when a password holds a '#', or a "host" cut out of a
		// password holding a '/'. Take the reason from the input without the
		// password; if that parses, the password is what broke the URL.
		reason := "invalid URL; percent-encode special characters in a password " +
			"(# %23, / %2F, ? %3F, @ %40, % %25, space %20)"
		if _, rerr := parseTarget(r); rerr != nil {
			reason = rerr.(*TargetError).Reason
		}
		return Target{}, &TargetError{Input: r, Reason: reason}
	}
	return Target{}, err
}

// parseTarget is ParseTarget without the care for passwords: its errors may quote
// any part of s.
func parseTarget(s string) (Target, error) {
	in := s
	s = strings.TrimSpace(s)
	bad := func(format string, args ...any) (Target, error) {
		return Target{}, &TargetError{Input: in, Reason: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return bad("empty target; want scheme://host:port or host:port")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return bad("contains white space")
	}
	if !strings.Contains(s, "://") {
		if strings.Contains(s, "/") || strings.Contains(s, "?") {
			return bad("missing scheme; write tcp://host:port or one of: %s", strings.Join(SchemeNames(), ", "))
		}
		s = "tcp://" + s
	}
	if sch, rest, ok := strings.Cut(s, "://"); ok && portless[strings.ToLower(sch)] && strings.Contains(rest, ":") &&
		net.ParseIP(strings.SplitN(rest, "%", 2)[0]) != nil {
		// With no port to tell apart, an IPv6 literal needs no brackets: icmp://::1,
		// as blackbox_exporter takes it.
		s = sch + "://[" + strings.Replace(rest, "%", "%25", 1) + "]"
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		reason := err.Error()
		if ok := asURLError(err, &ue); ok {
			reason = ue.Err.Error()
		}
		return bad("%s", reason)
	}
	scheme := strings.ToLower(u.Scheme)
	if a, ok := schemeAliases[scheme]; ok {
		scheme = a
	}
	sc, ok := Schemes[scheme]
	if !ok {
		return bad("unknown scheme %q; known: %s", u.Scheme, strings.Join(SchemeNames(), ", "))
	}
	if u.Opaque != "" {
		return bad("want %s://host:port", scheme)
	}
	if u.Fragment != "" {
		return bad("fragments (#…) are not allowed")
	}
	host := u.Hostname()
	if host == "" {
		return bad("missing host")
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(u.Host, "[") {
		return bad("IPv6 addresses must be in brackets, e.g. [%s]:PORT", host)
	}
	if strings.HasPrefix(u.Host, "[") && net.ParseIP(strings.SplitN(host, "%", 2)[0]) == nil {
		return bad("%q in brackets is not an IPv6 address", host)
	}
	port := DefaultPort(sc.Name)
	if portless[scheme] {
		if u.Port() != "" || strings.HasSuffix(u.Host, ":") {
			return bad("%s targets have no port; write %s://%s", scheme, scheme, strings.TrimSuffix(u.Host, ":"+u.Port()))
		}
	} else if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("port %q out of range 1-65535", p)
		}
		port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return bad("empty port")
	}
	if port == 0 && !portless[scheme] {
		return bad("missing port; %s targets need one, e.g. %s://%s:PORT", scheme, scheme, u.Host)
	}
	query, err := parseQuery(u.RawQuery)
	if err != nil {
		return bad("%s", err)
	}
	t := Target{
		Scheme: scheme,
		Host:   host,
		Port:   port,
		Path:   u.Path,
		Query:  query,
		User:   u.User,
	}
	t.ID = t.canonical()
	return t, nil
}

// RedactPasswords returns s with the password of every URL user information in it
// replaced by "xxxxx", for error texts and log lines that may quote what someone
// typed: "redis://u:pw@h" and a bare "u:pw@h:6379" both lose "pw". It reads each
// white-space separated word on its own and errs on the side of hiding: in a word
// with an '@', whatever lies between the first ':' after "://" (or the word's start)
// and the last '@' is taken for a password.
func RedactPasswords(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	start := -1
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				b.WriteString(redactWord(s[start:i]))
				start = -1
			}
			b.WriteRune(r)
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		b.WriteString(redactWord(s[start:]))
	}
	return b.String()
}

// redactWord redacts the password of one URL or host:port word; see RedactPasswords.
func redactWord(w string) string {
	at := strings.LastIndexByte(w, '@')
	if at < 0 {
		return w
	}
	start := 0
	if i := strings.Index(w[:at], "://"); i >= 0 {
		start = i + len("://")
	}
	colon := strings.IndexByte(w[start:at], ':')
	if colon < 0 {
		return w
	}
	return w[:start+colon+1] + "xxxxx" + w[at:]
}

func asURLError(err error, target **url.Error) bool {
	ue, ok := err.(*url.Error)
	if ok {
		*target = ue
	}
	return ok
}

// canonical renders the ID: lower-case scheme, explicit port, user name but never the
// password, query options in sorted order.
func (t Target) canonical() string {
	var b strings.Builder
	b.WriteString(t.Scheme)
	b.WriteString("://")
	if t.User != nil && t.User.Username() != "" {
		// Userinfo escaping: a ':' in the name must not read as a password.
		b.WriteString(url.User(t.User.Username()).String())
		b.WriteByte('@')
	}
	// A '%' in the host (an IPv6 zone) is escaped, and the path re-escaped, so that
	// the ID parses back to itself.
	addr := t.Addr()
	if t.Port == 0 {
		addr = t.Host // a portless scheme
		if strings.Contains(addr, ":") {
			addr = "[" + addr + "]"
		}
	}
	b.WriteString(strings.ReplaceAll(addr, "%", "%25"))
	b.WriteString((&url.URL{Path: t.Path}).EscapedPath())
	if len(t.Query) > 0 {
		b.WriteByte('?')
		b.WriteString(encodeQuery(t.Query))
	}
	return b.String()
}

// Password returns the password from the URL, if any.
func (t Target) Password() (string, bool) {
	if t.User == nil {
		return "", false
	}
	return t.User.Password()
}

// WithUser returns a copy of t with its credentials replaced and its ID recomputed
// (the ID names the user, never the password).
func (t Target) WithUser(u *url.Userinfo) Target {
	t.User = u
	t.ID = t.canonical()
	return t
}

// parseQuery reads a target's options. Unlike a form, '+' is a plus sign, not a
// space, so "expect=^\+PONG" means what it says; %XX escapes still work.
func parseQuery(raw string) (url.Values, error) {
	if raw == "" {
		return nil, nil // most targets have no options: no map per target (reads of nil are fine)
	}
	v := url.Values{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, val, _ := strings.Cut(part, "=")
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("option %q: %v", k, err)
		}
		value, err := url.PathUnescape(val)
		if err != nil {
			return nil, fmt.Errorf("option %s: %v", key, err)
		}
		v[key] = append(v[key], value)
	}
	return v, nil
}

// encodeQuery renders options sorted by key, escaping only what would change their
// meaning, so IDs stay readable: "?expect=^\+PONG&send=PING".
func encodeQuery(v url.Values) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		for _, val := range v[k] {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(escapeOption(k, true))
			b.WriteByte('=')
			b.WriteString(escapeOption(val, false))
		}
	}
	return b.String()
}

func escapeOption(s string, key bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '%' || c == '&' || c == '#' || (key && c == '=') {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
