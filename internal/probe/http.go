package probe

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// defaultBodyRead bounds how much of a body the http prober reads when the module sets
// no body_size_limit. A longer body is not an error: the prober stops reading there,
// applies body rules to what it read and notes "body_truncated".
const defaultBodyRead = 4 << 20

// maxResponseHeader bounds the response header, as net/http's
// Transport.MaxResponseHeaderBytes: a hostile server cannot make the prober buffer
// without limit.
const maxResponseHeader = 64 << 10

// maxRedirects is how many redirects the http prober follows, as net/http's client.
const maxRedirects = 10

// httpProbe is a validated http module.
type httpProbe struct {
	url        *url.URL
	method     string
	header     http.Header
	host       string // Host header override
	body       string
	status     []statusRange
	versions   []string
	follow     bool
	failSSL    bool
	failNoSSL  bool
	bodyLimit  int64 // body_size_limit; 0 means none
	bodyRules  []bodyRule
	headRules  []headerRule
	user, pass string
	basic      bool
	bearer     string
	encoding   string
	network    string
	tlsCfg     *tls.Config
	skip       bool
	http2      bool
	// viaTransport sends HTTP/1.1 requests through net/http's Transport too, as
	// HTTP/2 ones are; the tests set it to compare both paths' results.
	viaTransport bool
	// tmpl is the request of a probe without a body, parsed once: each run sends a
	// shallow copy with its own context and header (see newRequest). tmplURL is its
	// URL as text, the final URL of a run that was not redirected.
	tmpl    *http.Request
	tmplURL string
	// expo, when set, is what a prometheus probe requires of the body.
	expo *exposition
}

// statusRange is an inclusive range of status codes.
type statusRange struct{ lo, hi int }

type bodyRule struct {
	name string // the blackbox field the rule came from
	re   *regexp.Regexp
	fail bool // true: fail if it matches; false: fail if it does not
}

type headerRule struct {
	name         string
	header       string
	re           *regexp.Regexp
	fail         bool
	allowMissing bool
}

// newHTTP builds the http prober (http:// and https://). Query options on the target:
// status ("200,301-302"), method, body (a regexp the body must match), insecure,
// servername, header ("Name: value", repeatable) and follow (follow redirects). Any
// other key stays in the request's own query string: /health?full=1 is sent as is.
// Proxy settings from the environment are not used: a probe measures the direct path.
func newHTTP(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	p, err := buildHTTP(t, m, env, q)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, res *patrol.Result) { p.run(ctx, env, res) }, nil
}

// buildHTTP validates an http module and target and returns the probe.
func buildHTTP(t patrol.Target, m *Module, env *Env, q *options) (*httpProbe, error) {
	c := m.HTTP
	p := &httpProbe{method: http.MethodGet, header: http.Header{}, follow: true}
	if err := p.request(t, c, q); err != nil {
		return nil, err
	}
	if err := p.expectations(c, q); err != nil {
		return nil, err
	}
	if err := p.connection(t, c, q, env); err != nil {
		return nil, err
	}
	p.url.RawQuery = q.rest().Encode()
	p.requestHeader()
	// A request that cannot be made leaves tmpl nil: every run then fails to build
	// it, with its reason, as it always has.
	if req, err := http.NewRequest(p.method, p.url.String(), nil); err == nil && p.body == "" {
		if p.host != "" {
			req.Host = p.host
		}
		p.tmpl, p.tmplURL = req, req.URL.String()
	}
	return p, nil
}

// request sets what the probe sends: URL, method, headers and body.
func (p *httpProbe) request(t patrol.Target, c HTTPModule, q *options) error {
	scheme := "http"
	if t.Scheme == "https" || t.Scheme == "tls" {
		scheme = "https"
	}
	path := t.Path
	if path == "" {
		path = "/"
	}
	p.url = &url.URL{Scheme: scheme, Host: t.Addr(), Path: path}

	if c.Method != "" {
		p.method = strings.ToUpper(c.Method)
	}
	if v, ok := q.string("method"); ok {
		p.method = strings.ToUpper(v)
	}
	if !validToken(p.method) {
		return fmt.Errorf("http.method %q is not a valid method", p.method)
	}

	for k, v := range c.Headers {
		if err := p.addHeader(k, v); err != nil {
			return fmt.Errorf("http.headers: %w", err)
		}
	}
	for _, h := range q.strings("header") {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return fmt.Errorf("option header %q: want \"Name: value\"", h)
		}
		if err := p.addHeader(strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return fmt.Errorf("option header: %w", err)
		}
	}

	p.body = c.Body
	if c.BodyFile != "" {
		if c.Body != "" {
			return errors.New("http: body and body_file are mutually exclusive")
		}
		b, err := os.ReadFile(c.BodyFile)
		if err != nil {
			return fmt.Errorf("http.body_file: %w", err)
		}
		p.body = string(b)
	}
	return nil
}

// expectations sets what makes an answer good: status codes, HTTP versions, redirects,
// TLS or not, and the body and header rules.
func (p *httpProbe) expectations(c HTTPModule, q *options) error {
	for _, code := range c.ValidStatusCodes {
		if code < 100 || code > 999 {
			return fmt.Errorf("http.valid_status_codes: %d is not a status code", code)
		}
		p.status = append(p.status, statusRange{code, code})
	}
	if v, ok := q.string("status"); ok {
		rs, err := parseStatusRanges(v)
		if err != nil {
			return fmt.Errorf("option status: %w", err)
		}
		p.status = rs
	}
	if len(p.status) == 0 {
		p.status = []statusRange{{200, 299}}
	}
	p.versions = c.ValidHTTPVersions
	for _, v := range p.versions {
		if v == "HTTP/2.0" || v == "HTTP/2" {
			p.http2 = true
		}
	}

	if c.NoFollowRedirects != nil {
		p.follow = !*c.NoFollowRedirects
	}
	if c.FollowRedirects != nil {
		p.follow = *c.FollowRedirects
	}
	if v, ok := q.bool("follow"); ok {
		p.follow = v
	}
	p.failSSL, p.failNoSSL = c.FailIfSSL, c.FailIfNotSSL
	if p.failSSL && p.failNoSSL {
		return errors.New("http: fail_if_ssl and fail_if_not_ssl together fail every probe")
	}

	for _, r := range []struct {
		name string
		res  []string
		fail bool
	}{
		{"fail_if_body_matches_regexp", c.FailIfBodyMatchesRegexp, true},
		{"fail_if_body_not_matches_regexp", c.FailIfBodyNotMatchesRegexp, false},
	} {
		for i, s := range r.res {
			re, err := regexp.Compile(s)
			if err != nil {
				return fmt.Errorf("http.%s[%d]: %w", r.name, i, err)
			}
			p.bodyRules = append(p.bodyRules, bodyRule{name: r.name, re: re, fail: r.fail})
		}
	}
	if re, ok := q.regexp("body"); ok {
		p.bodyRules = append(p.bodyRules, bodyRule{name: "option body", re: re})
	}
	for _, r := range []struct {
		name  string
		rules []HeaderMatch
		fail  bool
	}{
		{"fail_if_header_matches", c.FailIfHeaderMatchesRegexp, true},
		{"fail_if_header_not_matches", c.FailIfHeaderNotMatchesRegexp, false},
	} {
		for i, h := range r.rules {
			if h.Header == "" {
				return fmt.Errorf("http.%s[%d]: header is required", r.name, i)
			}
			re, err := regexp.Compile(h.Regexp)
			if err != nil {
				return fmt.Errorf("http.%s[%d]: %w", r.name, i, err)
			}
			p.headRules = append(p.headRules, headerRule{name: r.name, header: h.Header, re: re, fail: r.fail, allowMissing: h.AllowMissing})
		}
	}
	return nil
}

// connection sets how the probe connects: credentials, body limit, compression, TLS and
// the IP protocol.
func (p *httpProbe) connection(t patrol.Target, c HTTPModule, q *options, env *Env) error {
	if err := p.auth(t, c); err != nil {
		return err
	}

	if c.BodySizeLimit < 0 {
		return fmt.Errorf("http.body_size_limit %d: want 0 (no limit) or more", c.BodySizeLimit)
	}
	p.bodyLimit = int64(c.BodySizeLimit)

	switch strings.ToLower(c.Compression) {
	case "":
	case "identity", "gzip", "deflate":
		p.encoding = strings.ToLower(c.Compression)
	default:
		return fmt.Errorf("http.compression %q: want gzip, deflate or identity", c.Compression)
	}

	tc := c.TLSConfig
	if v, ok := q.bool("insecure"); ok {
		tc.InsecureSkipVerify = v
	}
	if v, ok := q.string("servername"); ok {
		tc.ServerName = v
	}
	// An empty server name is filled in per connection, so a redirect to another host
	// is verified against that host.
	cfg, err := buildTLSConfig(tc, "", env)
	if err != nil {
		return fmt.Errorf("http.%w", err)
	}
	if p.http2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	p.tlsCfg, p.skip = cfg, tlsSkipVerify(tc)
	p.network = ipNet("tcp", c.IPProtocol)
	return nil
}

func (p *httpProbe) addHeader(k, v string) error {
	if !validToken(k) {
		return fmt.Errorf("%q is not a valid header name", k)
	}
	if strings.ContainsAny(v, "\r\n") {
		return fmt.Errorf("header %s: value contains a line break", k)
	}
	if strings.EqualFold(k, "Host") {
		p.host = v
		return nil
	}
	p.header.Add(k, v)
	return nil
}

// requestHeader completes the header every request of the probe starts with: a
// User-Agent unless the module names one, the Accept-Encoding of the compression
// asked for and the credentials. It is built once; each run sends a copy.
func (p *httpProbe) requestHeader() {
	if p.header.Get("User-Agent") == "" {
		p.header.Set("User-Agent", "portpatrol")
	}
	if p.encoding != "" {
		p.header.Set("Accept-Encoding", p.encoding)
	}
	if p.basic {
		// As Request.SetBasicAuth.
		p.header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass)))
	}
	if p.bearer != "" {
		p.header.Set("Authorization", "Bearer "+p.bearer)
	}
}

// auth reads credentials, including password_file and bearer_token_file, at build
// time. Credentials in the target URL override the module's basic_auth.
func (p *httpProbe) auth(t patrol.Target, c HTTPModule) error {
	if ba := c.BasicAuth; ba != nil {
		if ba.Password != "" && ba.PasswordFile != "" {
			return errors.New("http.basic_auth: password and password_file are mutually exclusive")
		}
		p.basic, p.user, p.pass = true, ba.Username, ba.Password
		if ba.PasswordFile != "" {
			b, err := os.ReadFile(ba.PasswordFile)
			if err != nil {
				return fmt.Errorf("http.basic_auth.password_file: %w", err)
			}
			p.pass = strings.TrimRight(string(b), "\r\n")
		}
	}
	if t.User != nil {
		pass, _ := t.Password()
		p.basic, p.user, p.pass = true, t.User.Username(), pass
	}
	if c.BearerToken != "" && c.BearerTokenFile != "" {
		return errors.New("http: bearer_token and bearer_token_file are mutually exclusive")
	}
	p.bearer = c.BearerToken
	if c.BearerTokenFile != "" {
		b, err := os.ReadFile(c.BearerTokenFile)
		if err != nil {
			return fmt.Errorf("http.bearer_token_file: %w", err)
		}
		p.bearer = strings.TrimSpace(string(b))
	}
	if p.bearer != "" && p.basic {
		return errors.New("http: basic auth and a bearer token are mutually exclusive")
	}
	return nil
}

// parseStatusRanges parses "200,301-302".
func parseStatusRanges(s string) ([]statusRange, error) {
	var rs []statusRange
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 999 || a > b {
			return nil, fmt.Errorf("%q: want codes or ranges such as 200,301-302", s)
		}
		rs = append(rs, statusRange{a, b})
	}
	return rs, nil
}

func formatStatusRanges(rs []statusRange) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		if r.lo == r.hi {
			parts[i] = strconv.Itoa(r.lo)
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r.lo, r.hi)
		}
	}
	return strings.Join(parts, ", ")
}

// validToken reports whether s is a non-empty RFC 9110 token (method or header name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// classifiedError carries a result class decided inside the transport's dial, so that
// the failure reaches the result with its own class and message.
type classifiedError struct {
	class patrol.Class
	msg   string
}

func (e *classifiedError) Error() string { return e.msg }

// httpPhases are the phases an http run records, in their natural order.
var httpPhases = [...]string{"dns", "connect", "tls", "processing", "transfer"}

// Indexes into httpPhases.
const (
	phaseProcessing = 3
	phaseTransfer   = 4
)

// httpRun is the state of one run: phase sums across redirects and the last TLS
// session. The lean transport uses it from the run's goroutine alone; net/http's
// Transport from its own, hence the lock.
type httpRun struct {
	mu        sync.Mutex
	phases    [len(httpPhases)]time.Duration
	seen      [len(httpPhases)]bool
	tls       *patrol.TLSInfo
	connected bool
	remote    string    // the address last dialled
	wrote     time.Time // the last request was written
	firstByte time.Time // the first byte of the last response arrived
}

func (r *httpRun) add(name string, d time.Duration) {
	for i, n := range httpPhases {
		if n == name {
			r.mu.Lock()
			r.phases[i] += d
			r.seen[i] = true
			r.mu.Unlock()
			return
		}
	}
}

// wroteRequest notes that a request has been written.
func (r *httpRun) wroteRequest() {
	now := time.Now()
	r.mu.Lock()
	r.wrote = now
	r.mu.Unlock()
}

// gotFirstByte notes the first byte of a response and adds the time since the
// request was written to "processing".
func (r *httpRun) gotFirstByte() {
	now := time.Now()
	r.mu.Lock()
	r.firstByte = now
	if !r.wrote.IsZero() {
		r.phases[phaseProcessing] += now.Sub(r.wrote)
		r.seen[phaseProcessing] = true
	}
	r.mu.Unlock()
}

// dial connects for the transport, recording "dns" and "connect", and for https runs
// the TLS handshake and chain verification itself, so that no request is ever sent
// over an unverified connection and failures carry the same reasons as tls://. Every
// read and write on the connection obeys the probe's deadline.
func (p *httpProbe) dial(ctx context.Context, env *Env, run *httpRun, addr string, useTLS bool) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bad port in %q", addr)
	}
	scratch := patrol.Result{Class: patrol.ClassOK}
	conn := dialAddr(ctx, env, p.network, host, port, &scratch)
	for _, ph := range scratch.Phases {
		run.add(ph.Name, ph.Duration)
	}
	run.mu.Lock()
	if scratch.RemoteAddr != "" {
		run.remote = scratch.RemoteAddr
	}
	run.mu.Unlock()
	if conn == nil {
		return nil, &classifiedError{scratch.Class, scratch.Error}
	}
	setDeadline(ctx, conn)
	run.mu.Lock()
	run.connected = true
	run.mu.Unlock()
	if !useTLS {
		return conn, nil
	}
	cfg := p.tlsCfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	scratch = patrol.Result{Class: patrol.ClassOK}
	tc := handshake(ctx, conn, cfg, p.skip, env, &scratch)
	for _, ph := range scratch.Phases {
		run.add(ph.Name, ph.Duration)
	}
	run.mu.Lock()
	if scratch.TLS != nil {
		run.tls = scratch.TLS
	}
	run.mu.Unlock()
	if tc == nil || scratch.Class != patrol.ClassOK {
		conn.Close()
		return nil, &classifiedError{scratch.Class, scratch.Error}
	}
	return tc, nil
}

// newRequest makes a run's request. With shared set, the request carries the probe's
// own header rather than a copy: the lean transport only reads it, and http.Client
// copies it before it changes anything (redirects, credentials in the URL).
func (p *httpProbe) newRequest(ctx context.Context, shared bool) (*http.Request, error) {
	if p.tmpl != nil {
		// The request as NewRequestWithContext makes it, without parsing the URL
		// again on every run. Nothing on the way writes to the URL the copies share.
		req := p.tmpl.WithContext(ctx)
		if shared {
			req.Header = p.header
		} else {
			req.Header = p.header.Clone()
		}
		return req, nil
	}
	var body io.Reader
	if p.body != "" {
		body = strings.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, p.method, p.url.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header = p.header.Clone()
	if p.host != "" {
		req.Host = p.host
	}
	return req, nil
}

// transport is net/http's Transport for one run, used where the lean transport does
// not go: HTTP/2 (valid_http_versions names it), whose framing and ALPN it leaves to
// net/http. Its reads happen on goroutines of its own, so the run's phase marks come
// from an httptrace.ClientTrace (see traced).
func (p *httpProbe) transport(ctx context.Context, env *Env, run *httpRun) *http.Transport {
	return &http.Transport{
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			return p.dial(ctx, env, run, addr, false)
		},
		DialTLSContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			return p.dial(ctx, env, run, addr, true)
		},
		DisableKeepAlives:      true,
		DisableCompression:     true,
		ForceAttemptHTTP2:      p.http2,
		MaxResponseHeaderBytes: maxResponseHeader,
	}
}

// traced returns ctx with a ClientTrace marking the run's phases for net/http's
// Transport.
func traced(ctx context.Context, run *httpRun) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest:         func(httptrace.WroteRequestInfo) { run.wroteRequest() },
		GotFirstResponseByte: run.gotFirstByte,
	})
}

func (p *httpProbe) run(ctx context.Context, env *Env, res *patrol.Result) {
	run := &httpRun{}
	var rt http.RoundTripper
	reqCtx := ctx
	if p.http2 || p.viaTransport {
		tr := p.transport(ctx, env, run)
		defer tr.CloseIdleConnections()
		rt, reqCtx = tr, traced(ctx, run)
	} else {
		rt = &leanTransport{p: p, ctx: ctx, env: env, run: run}
	}
	redirects := 0
	client := &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !p.follow {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			redirects = len(via)
			return nil
		},
	}

	_, lean := rt.(*leanTransport)
	req, err := p.newRequest(reqCtx, lean)
	if err != nil {
		res.Fail(patrol.ClassError, "build request: %v", err)
		return
	}

	resp, err := client.Do(req)
	defer func() { p.record(run, res) }()
	if err != nil {
		p.fail(res, run, err)
		return
	}
	defer resp.Body.Close()

	info := &patrol.HTTPInfo{
		Status:        resp.StatusCode,
		Proto:         resp.Proto,
		Redirects:     redirects,
		ContentLength: resp.ContentLength,
		FinalURL:      p.finalURL(resp.Request.URL),
	}
	res.HTTP = info

	body, n, truncated, err := p.readBody(resp)
	info.BodyLength = n
	run.mu.Lock()
	if !run.firstByte.IsZero() {
		run.phases[phaseTransfer] += time.Since(run.firstByte)
		run.seen[phaseTransfer] = true
	}
	run.mu.Unlock()
	if err != nil {
		if errors.Is(err, errBodyLimit) {
			res.Fail(patrol.ClassProtocol, "body larger than body_size_limit %d bytes", p.bodyLimit)
			return
		}
		classifyInto(res, err, "read body")
		return
	}
	if truncated && p.expo == nil {
		res.SetDetail("body_truncated", fmt.Sprintf("read the first %d bytes", defaultBodyRead))
	}
	p.check(resp, body, res)
	if p.expo != nil && res.Class == patrol.ClassOK {
		p.expo.check(resp, body, truncated, res)
	}
}

// finalURL is u as text, the template's text when the run was not redirected.
func (p *httpProbe) finalURL(u *url.URL) string {
	if p.tmpl != nil && u == p.tmpl.URL {
		return p.tmplURL
	}
	return u.String()
}

// record copies the summed phases into res in their natural order, and the TLS session.
func (p *httpProbe) record(run *httpRun, res *patrol.Result) {
	run.mu.Lock()
	defer run.mu.Unlock()
	n := 0
	for _, seen := range run.seen {
		if seen {
			n++
		}
	}
	res.Phases = slices.Grow(res.Phases, n)
	for i, name := range httpPhases {
		if run.seen[i] {
			res.AddPhase(name, run.phases[i])
		}
	}
	if run.tls != nil {
		res.TLS = run.tls
	}
	if run.remote != "" {
		res.RemoteAddr = run.remote
	}
}

// fail classifies an error from the client.
func (p *httpProbe) fail(res *patrol.Result, run *httpRun, err error) {
	var ce *classifiedError
	if errors.As(err, &ce) {
		res.Fail(ce.class, "%s", ce.msg)
		return
	}
	c, msg := Classify(err)
	run.mu.Lock()
	connected := run.connected
	run.mu.Unlock()
	if c == patrol.ClassError && connected {
		// Connected, but what came back was not HTTP or broke a client rule.
		c = patrol.ClassProtocol
		var ue *url.Error
		if errors.As(err, &ue) {
			msg = ue.Err.Error()
		}
	}
	res.Fail(c, "%s %s: %s", p.method, p.url.Redacted(), msg)
}

var errBodyLimit = errors.New("body size limit exceeded")

// readBody reads the body within its bound and decodes the requested compression. It
// returns the body only when a body rule needs it.
func (p *httpProbe) readBody(resp *http.Response) (body []byte, n int64, truncated bool, err error) {
	var r io.Reader = resp.Body
	switch {
	case p.encoding == "gzip" && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip"):
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, 0, false, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		r = zr
	case p.encoding == "deflate" && strings.EqualFold(resp.Header.Get("Content-Encoding"), "deflate"):
		zr, err := zlib.NewReader(r)
		if err != nil {
			return nil, 0, false, fmt.Errorf("deflate body: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	limit := int64(defaultBodyRead)
	if p.bodyLimit > 0 {
		limit = p.bodyLimit
	}
	lr := io.LimitReader(r, limit+1)
	if len(p.bodyRules) > 0 || p.expo != nil {
		body, err = io.ReadAll(lr)
		n = int64(len(body))
	} else {
		n, err = io.Copy(io.Discard, lr)
	}
	if err != nil {
		return nil, n, false, err
	}
	if n > limit {
		if p.bodyLimit > 0 {
			return nil, n, false, errBodyLimit
		}
		n, truncated = limit, true
		if body != nil {
			body = body[:limit]
		}
	}
	return body, n, truncated, nil
}

// check applies the status, version, TLS, header and body rules.
func (p *httpProbe) check(resp *http.Response, body []byte, res *patrol.Result) {
	if !statusOK(p.status, resp.StatusCode) {
		res.Fail(patrol.ClassProtocol, "status %d, want %s", resp.StatusCode, formatStatusRanges(p.status))
		if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode/100 == 3 {
			res.SetDetail("location", loc)
		}
		return
	}
	if len(p.versions) > 0 && !versionOK(p.versions, resp.Proto) {
		res.Fail(patrol.ClassProtocol, "protocol %s, want %s", resp.Proto, strings.Join(p.versions, ", "))
		return
	}
	if p.failSSL && resp.TLS != nil {
		res.Fail(patrol.ClassProtocol, "fail_if_ssl: the final response came over TLS (%s)", resp.Request.URL.Redacted())
		return
	}
	if p.failNoSSL && resp.TLS == nil {
		res.Fail(patrol.ClassProtocol, "fail_if_not_ssl: the final response came without TLS (%s)", resp.Request.URL.Redacted())
		return
	}
	for _, h := range p.headRules {
		values := resp.Header.Values(h.header)
		if len(values) == 0 {
			if h.allowMissing {
				continue
			}
			res.Fail(patrol.ClassProtocol, "%s: header %s is missing", h.name, h.header)
			return
		}
		matched := -1
		for i, v := range values {
			if h.re.MatchString(v) {
				matched = i
				break
			}
		}
		switch {
		case h.fail && matched >= 0:
			res.Fail(patrol.ClassProtocol, "%s: header %s %q matches %q", h.name, h.header, clip(values[matched]), h.re)
			return
		case !h.fail && matched < 0:
			res.Fail(patrol.ClassProtocol, "%s: header %s %q does not match %q", h.name, h.header, clip(values[0]), h.re)
			return
		}
	}
	for _, b := range p.bodyRules {
		m := b.re.Match(body)
		switch {
		case b.fail && m:
			res.Fail(patrol.ClassProtocol, "%s: body matches %q", b.name, b.re)
			return
		case !b.fail && !m:
			res.Fail(patrol.ClassProtocol, "%s: body does not match %q", b.name, b.re)
			return
		}
	}
}

func statusOK(rs []statusRange, code int) bool {
	for _, r := range rs {
		if code >= r.lo && code <= r.hi {
			return true
		}
	}
	return false
}

func versionOK(want []string, proto string) bool {
	for _, v := range want {
		if v == proto || (v == "HTTP/2" && proto == "HTTP/2.0") {
			return true
		}
	}
	return false
}

// clip shortens a server-supplied string for a message.
func clip(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
