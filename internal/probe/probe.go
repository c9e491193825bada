// Package probe checks one target once and classifies the outcome. Each protocol lives
// in a file of its own (tcp.go, http.go, redis.go…) and is built from a target and a
// Module by New, which validates every setting up front so that running a probe never
// fails on configuration. Probes are safe for concurrent use.
package probe

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultTimeout bounds a probe whose target and module name no timeout.
const DefaultTimeout = 5 * time.Second

// Env is what probes take from their surroundings, and what they share: the half-open
// prober (raw sockets, reserved source ports and a receiver goroutine) and the connect
// poller (an epoll set and its goroutine). A process keeps one Env for all its probes —
// the daemon creates it at start and closes it after the scheduler has stopped; a
// one-shot command keeps one for the command.
//
// The zero value is ready to use: the system's dialer, resolver, clock and trust roots,
// and the shared parts opened when a probe first needs them (the half-open prober by New,
// the poller by the first connect that has to wait). Set the fields before the first New;
// do not copy an Env after that. Close releases what was opened. An Env is safe for
// concurrent use.
type Env struct {
	// Dial, when set, replaces net.Dialer.DialContext. Kubernetes tests use it to map
	// pod addresses onto loopback listeners. Probes of an Env with Dial never check
	// half-open: every connection goes through Dial.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// Now is the clock used for certificate expiry; nil means time.Now.
	Now func() time.Time
	// RootCAs verifies TLS chains; nil means the system pool.
	RootCAs *x509.CertPool
	// Allow, when set, is asked about every address a probe is about to send to,
	// after its host name is resolved and before the first packet; an address it
	// returns an error for is never contacted and the probe fails with that error.
	// It covers every connection of a probe, HTTP redirects included. nil allows
	// every address. The /probe endpoint's Env sets it to its network allowlist.
	Allow func(netip.AddrPort) error

	mu      sync.Mutex // guards closed, half and halfErr
	closed  bool
	half    *halfOpener // opened by the first New that can use it
	halfErr error       // why half could not be opened
	conn    poller
}

// errEnvClosed is why an Env that is closed, or nil, opens nothing.
var errEnvClosed = errors.New("the probe environment is closed")

// Close stops every goroutine and closes every descriptor the Env has opened, once
// the probes running on them have returned; the daemon calls it after its scheduler has
// stopped. Probes built on e keep working after Close, without what it shared: a bare
// TCP check connects through net.Dialer, and New refuses handshake=half. Close is
// idempotent; a nil Env has nothing to close.
func (e *Env) Close() error {
	if e == nil {
		return nil
	}
	e.mu.Lock()
	e.closed = true
	h := e.half
	e.mu.Unlock()
	var err error
	if h != nil {
		err = h.close()
	}
	return errors.Join(err, e.conn.close())
}

// isClosed reports whether e was closed (a nil Env counts as closed).
func (e *Env) isClosed() bool {
	if e == nil {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// HalfOpenSupported reports whether probes built on e can check half-open, and why
// not: typically no CAP_NET_RAW, or not Linux. It opens e's half-open prober if no
// probe has yet, so the answer is the one the probes get.
func (e *Env) HalfOpenSupported() error {
	_, err := e.halfOpen()
	return err
}

// halfOpen returns e's half-open prober, opening it on first use; the error of that
// first attempt is returned every time after.
func (e *Env) halfOpen() (*halfOpener, error) {
	if e == nil {
		return nil, errEnvClosed
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errEnvClosed
	}
	if e.half == nil && e.halfErr == nil {
		e.half, e.halfErr = openHalfOpener()
	}
	return e.half, e.halfErr
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// allow asks e.Allow about ip (an address, possibly with a zone) and port.
func (e *Env) allow(ip string, port int) error {
	if e.Allow == nil {
		return nil
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("not an IP address: %q", ip)
	}
	return e.Allow(netip.AddrPortFrom(a, uint16(port)))
}

func (e *Env) resolver() *net.Resolver {
	if e.Resolver != nil {
		return e.Resolver
	}
	return net.DefaultResolver
}

// runFunc runs a built probe: it fills in res (class, error, phases, details) and must
// return when ctx is done.
type runFunc func(ctx context.Context, res *patrol.Result)

// tryFunc attempts a probe that can finish without waiting: it fills in res and
// returns true, or returns false having changed nothing.
type tryFunc func(res *patrol.Result) bool

// builder validates a target and module and returns the probe that runs them, and
// its fast path (see Probe.Try), nil when it has none.
type builder func(t patrol.Target, m *Module, env *Env, q *options) (runFunc, tryFunc, error)

// runBuilder is the form of a prober without a fast path.
type runBuilder func(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error)

// runOnly makes b a builder whose probes have no fast path.
func runOnly(b runBuilder) builder {
	return func(t patrol.Target, m *Module, env *Env, q *options) (runFunc, tryFunc, error) {
		run, err := b(t, m, env, q)
		return run, nil, err
	}
}

// builders maps a prober name to its constructor. A Module's Prober names one of these;
// by default a target's scheme does. Only the bare TCP check has a fast path.
var builders = map[string]builder{
	"tcp":        newTCP,
	"tls":        newTCP,
	"http":       runOnly(newHTTP),
	"dns":        runOnly(newDNS),
	"udp":        runOnly(newUDP),
	"redis":      runOnly(newRedis),
	"mysql":      runOnly(newMySQL),
	"postgres":   runOnly(newPostgres),
	"ssh":        runOnly(newSSH),
	"smtp":       runOnly(newSMTP),
	"grpc":       runOnly(newGRPC),
	"nats":       runOnly(newNATS),
	"amqp":       runOnly(newAMQP),
	"mqtt":       runOnly(newMQTT),
	"icmp":       runOnly(newICMP),
	"prometheus": runOnly(newPrometheus),
	"memcached":  runOnly(newMemcached),
}

// Supported reports whether a prober of that name exists.
func Supported(name string) bool { _, ok := builders[name]; return ok }

// Probe is a built, validated probe for one target. It is safe for concurrent use.
type Probe struct {
	id        string // the target's ID; the target itself lives in the built run and try
	timeout   time.Duration
	warn      time.Duration
	run       runFunc
	try       tryFunc
	env       *Env
	overrides []string
}

// SetupError is a probe that cannot be built for a target: an unsupported prober, a
// bad module setting or query option. Callers that name the target themselves (config
// checking a module against a sample target) print Err alone.
type SetupError struct {
	// Target is the ID of the target the probe was for.
	Target string
	// Err says what is wrong.
	Err error
}

// Error returns "target: reason".
func (e *SetupError) Error() string { return e.Target + ": " + e.Err.Error() }

func (e *SetupError) Unwrap() error { return e.Err }

// New builds the probe for target t using module m (the zero Module means the scheme's
// defaults) on env, which must outlive the probe's runs and be closed by its owner.
// Settings in the target's query string override the module's. Its error is a
// *SetupError. A nil env is a closed
// zero Env: the default dialer, resolver, clock and roots, nothing shared, so a bare
// TCP check connects and handshake=half is refused.
func New(t patrol.Target, m Module, env *Env) (*Probe, error) {
	return NewShared(t, &m, env)
}

// NewShared is New for a module that many probes share, as the daemon's targets of
// one module do: the probe only reads *m, which must not be nil and must not change
// while the probe lives. It spares the copy of the module (kilobytes) New makes for
// every probe; at a million targets that copy alone was gigabytes of garbage.
func NewShared(t patrol.Target, m *Module, env *Env) (*Probe, error) {
	name := m.Prober
	if name == "" {
		name = t.Scheme
	}
	if name == "https" {
		name = "http"
	}
	b, ok := builders[name]
	if !ok {
		return nil, &SetupError{Target: t.ID, Err: fmt.Errorf("prober %q is not supported; supported: %s", name, strings.Join(proberNames(), ", "))}
	}
	timeout := t.Timeout
	if timeout == 0 {
		timeout = m.Timeout
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	q := newOptions(t)
	if v, ok := q.duration("timeout"); ok {
		timeout = v
	}
	warn := t.Warn
	if v, ok := q.duration("warn"); ok {
		warn = v
	}
	if env == nil {
		env = new(Env)
		_ = env.Close() // a fresh Env has opened nothing: this only marks it closed
	}
	if m.HTTP.Authorization != nil || len(m.HTTP.HTTPHeaders) > 0 {
		// blackbox's authorization and http_headers fold onto what the HTTP prober
		// sends, on a copy: m may be shared by many probes.
		mm := *m
		mm.fold()
		m = &mm
	}
	run, try, err := b(t, m, env, q)
	if err != nil {
		return nil, &SetupError{Target: t.ID, Err: err}
	}
	if err := q.done(); err != nil {
		return nil, &SetupError{Target: t.ID, Err: err}
	}
	return &Probe{id: t.ID, timeout: timeout, warn: warn, run: run, try: try, env: env, overrides: q.overrides()}, nil
}

// Overrides returns what the target itself sets, beyond its address, that changes
// what the probe sends or the credentials it uses, sorted: the query options such as
// send, expect, method, header or servername; "path" when the path picks a database
// or a gRPC service; "userinfo" for credentials in the URL. Options that only narrow
// the check (timeout, warn, handshake, status, body, rcode, role) are not among
// them, nor is the query string an http target sends as part of its URL.
func (p *Probe) Overrides() []string { return slices.Clone(p.overrides) }

// Timeout returns how long a run may take at most: the target's timeout option, else
// its Timeout, else the module's, else DefaultTimeout. A shorter deadline on Run's
// context wins.
func (p *Probe) Timeout() time.Duration { return p.timeout }

func proberNames() []string {
	n := make([]string, 0, len(builders))
	for k := range builders {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// ID returns the ID of the target the probe checks. The probe keeps no copy of the
// whole target: a daemon holds a probe per target, a million of them.
func (p *Probe) ID() string { return p.id }

// Run probes the target once, within the probe's timeout and ctx's deadline, and
// returns the classified result. It never panics on what the network sends.
func (p *Probe) Run(ctx context.Context) patrol.Result {
	// The scheduler already gives each run a deadline of the job's timeout: a second
	// timer per probe would cost as much as the half-open check's own Go code.
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > p.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	res := patrol.Result{Target: p.id, Start: p.env.now(), Class: patrol.ClassOK}
	start := time.Now()
	p.run(ctx, &res)
	p.judge(&res, start)
	return res
}

// judge sets res's duration and turns a result over the warn threshold into slow.
func (p *Probe) judge(res *patrol.Result, start time.Time) {
	res.Duration = time.Since(start)
	if res.Class == patrol.ClassOK && p.warn > 0 && res.Duration > p.warn {
		res.Class = patrol.ClassSlow
		res.Error = fmt.Sprintf("took %s, over the %s threshold", round(res.Duration), p.warn)
	}
}

// Try returns a function that probes the target once if that can finish at once,
// without waiting on the network, or nil when this probe never can. The function
// returns false when it could not finish at once, having done nothing; Run then
// probes as usual. A half-open check of a port on this host can: the kernel answers
// within the send. The scheduler runs such checks on its own loop (schedule.Job.Try).
func (p *Probe) Try() func() (patrol.Result, bool) {
	if p.try == nil {
		return nil
	}
	return func() (patrol.Result, bool) {
		res := patrol.Result{Target: p.id, Start: p.env.now(), Class: patrol.ClassOK}
		start := time.Now()
		if !p.try(&res) {
			return patrol.Result{}, false
		}
		p.judge(&res, start)
		return res, true
	}
}

// round trims a duration for messages.
func round(d time.Duration) time.Duration {
	switch {
	case d > time.Second:
		return d.Round(time.Millisecond)
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// dial resolves and connects to t's address, recording the "dns" (when a name had to be
// resolved) and "connect" phases. On failure it classifies the error into res and
// returns nil.
func dial(ctx context.Context, env *Env, network string, t patrol.Target, res *patrol.Result) net.Conn {
	return dialAddr(ctx, env, network, t.Host, t.Port, res)
}

func dialAddr(ctx context.Context, env *Env, network, host string, port int, res *patrol.Result) net.Conn {
	ip := host
	if net.ParseIP(strings.SplitN(host, "%", 2)[0]) == nil {
		t0 := time.Now()
		ips, err := env.resolver().LookupIP(ctx, ipNetwork(network), host)
		res.AddPhase("dns", time.Since(t0))
		if err != nil {
			classifyInto(res, err, "resolve "+host)
			return nil
		}
		if len(ips) == 0 {
			res.Fail(patrol.ClassDNS, "resolve %s: no addresses", host)
			return nil
		}
		ip = ips[0].String()
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(port))
	res.RemoteAddr = addr
	if err := env.allow(ip, port); err != nil {
		res.Fail(patrol.ClassError, "connect %s: %v", addr, err)
		return nil
	}
	t0 := time.Now()
	var conn net.Conn
	var err error
	if env.Dial != nil {
		conn, err = env.Dial(ctx, network, addr)
	} else {
		// No TCP keep-alive: a probe's connection lives within its deadline, and
		// arming keep-alive costs four setsockopt calls and a kernel timer per connect.
		d := net.Dialer{KeepAlive: -1}
		conn, err = d.DialContext(ctx, network, addr)
	}
	res.AddPhase("connect", time.Since(t0))
	if err != nil {
		classifyInto(res, err, "connect "+addr)
		return nil
	}
	return conn
}

func ipNetwork(network string) string {
	switch {
	case strings.HasSuffix(network, "4"):
		return "ip4"
	case strings.HasSuffix(network, "6"):
		return "ip6"
	}
	return "ip"
}

// Classify maps a network error to a result class and a message a person can act on.
func Classify(err error) (patrol.Class, string) {
	var dnsErr *net.DNSError
	switch {
	case err == nil:
		return patrol.ClassOK, ""
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return patrol.ClassDNS, fmt.Sprintf("no such host %s", dnsErr.Name)
		}
		if dnsErr.IsTimeout {
			return patrol.ClassDNS, fmt.Sprintf("DNS lookup of %s timed out", dnsErr.Name)
		}
		return patrol.ClassDNS, dnsErr.Error()
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return patrol.ClassTimeout, "timed out"
	case errors.Is(err, context.Canceled):
		return patrol.ClassError, "canceled"
	}
	if c, msg, ok := classifyErrno(err); ok {
		return c, msg
	}
	if errors.Is(err, errEOF) {
		return patrol.ClassReset, "connection closed by peer"
	}
	return patrol.ClassError, err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// classifyInto sets res's class and error from err, prefixed with what was being done.
func classifyInto(res *patrol.Result, err error, doing string) {
	c, msg := Classify(err)
	res.Fail(c, "%s: %s", doing, msg)
}

// setDeadline applies ctx's deadline to conn so that every read and write obeys it.
func setDeadline(ctx context.Context, conn net.Conn) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
}
