package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/store"
)

// httpLimits are the HTTP server's timeouts and sizes. Every connection, idle or
// not, ends within them, so a client that opens connections and sends nothing, or
// reads slowly, cannot hold the server's goroutines and descriptors for ever.
type httpLimits struct {
	// readHeader bounds reading the request line and headers; read the whole
	// request, body included.
	readHeader, read time.Duration
	// write bounds the answer, counted from the end of the request. The event
	// stream clears it; /probe extends it to the probe's own timeout.
	write time.Duration
	// idle is how long a keep-alive connection may wait for its next request.
	idle time.Duration
	// maxHeaderBytes caps the request line and headers.
	maxHeaderBytes int
	// inflightPerClient is the default of api.max_inflight_per_client.
	inflightPerClient int
}

// defaultHTTPLimits are generous for the API's small JSON bodies and for a scrape, and
// short enough that idle or stalled connections do not pile up.
var defaultHTTPLimits = httpLimits{
	readHeader:        10 * time.Second,
	read:              30 * time.Second,
	write:             60 * time.Second,
	idle:              2 * time.Minute,
	maxHeaderBytes:    64 << 10,
	inflightPerClient: 8,
}

// expensiveRoutes are the routes whose answers cost the store, the network or the
// registry real work; one client may have only so many of each in flight.
var expensiveRoutes = []string{
	"GET /api/v1/targets/history",
	"GET /api/v1/targets/{id}", // includes recent results from the store
	"GET /api/v1/audits",
	"GET /probe",
	"GET /metrics",
}

// routeSet matches requests against patterns without serving them, with ServeMux's
// rules, so the guards below name routes exactly as the mux does.
type routeSet struct{ mux *http.ServeMux }

func newRouteSet(patterns ...string) routeSet {
	s := routeSet{mux: http.NewServeMux()}
	for _, p := range patterns {
		s.mux.Handle(p, http.NotFoundHandler())
	}
	return s
}

// match returns the pattern r matches, or "".
func (s routeSet) match(r *http.Request) string {
	_, p := s.mux.Handler(r)
	return p
}

// refuse answers a request a guard turned away: JSON like the API's own errors under
// /api/, one line of text elsewhere.
func refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.Header().Set("Cache-Control", "no-store")
	if strings.HasPrefix(r.URL.Path, api.Prefix) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(struct {
			Error string `json:"error"`
		}{msg})
		return
	}
	http.Error(w, msg, status)
}

// crossOrigin refuses state-changing requests (anything but GET, HEAD and OPTIONS)
// that a browser sent from another site, even when they carry a valid token: a page
// elsewhere must not reload the configuration or ack an alert through the operator's
// browser. Requests without Sec-Fetch-Site and Origin (curl, the CLI) pass.
func crossOrigin(next http.Handler) http.Handler {
	c := http.NewCrossOriginProtection()
	c.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse(w, r, http.StatusForbidden, "cross-site request refused: a state-changing request must come from portpatrol's own pages or from a client that is not a browser")
	}))
	return c.Handler(next)
}

// hostAllowlist is the set of Host headers a listener answers to. A page that rebinds
// its own DNS name to this host sends that name as Host; refusing names nobody
// configured keeps such a page from reading anything, anonymous reads included.
type hostAllowlist struct {
	any   bool            // api.hosts: ["*"]
	anyIP bool            // a wildcard listener: every IP-literal Host
	names map[string]bool // normalised by hostOnly
}

// newHostAllowlist allows loopback names, the listen address's host, and hosts. On a
// wildcard address (0.0.0.0, [::]) it also allows this machine's host name and every
// IP literal: a rebinding page can only send a name it controls, and the addresses a
// client reaches a wildcard listener by (NAT, a container's published port, a pod IP)
// cannot be known from inside.
func newHostAllowlist(listen net.Addr, hosts []string, hostname string) *hostAllowlist {
	a := &hostAllowlist{names: map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}}
	for _, h := range hosts {
		if h == "*" {
			a.any = true
		}
		a.names[hostOnly(h)] = true
	}
	if ta, ok := listen.(*net.TCPAddr); ok {
		if ta.IP.IsUnspecified() {
			a.anyIP = true
			if hostname != "" {
				a.names[hostOnly(hostname)] = true
			}
		} else {
			a.names[hostOnly(ta.IP.String())] = true
		}
	}
	return a
}

// allows reports whether a request with this Host header may be served. An empty
// Host (an HTTP/1.0 health checker) passes: no browser sends one.
func (a *hostAllowlist) allows(host string) bool {
	if a.any || host == "" {
		return true
	}
	h := hostOnly(host)
	if a.names[h] {
		return true
	}
	if a.anyIP {
		_, err := netip.ParseAddr(h)
		return err == nil
	}
	return false
}

// hostOnly is a Host header or configured host without port, brackets or a trailing
// dot, in lower case.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// guardHosts answers 421 Misdirected Request to a request whose Host header the
// allowlist does not hold.
func guardHosts(allow *hostAllowlist, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allow.allows(r.Host) {
			refuse(w, r, http.StatusMisdirectedRequest, fmt.Sprintf("Host %q is not one this portpatrol answers to; add it to api.hosts in the configuration (see docs/security.md)", hostOnly(r.Host)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// clientLimiter caps the requests one client address has in flight on each expensive
// route, so one client cannot tie up the store or the prober for everyone else. It is
// safe for concurrent use.
type clientLimiter struct {
	max    int
	routes routeSet
	// perRoute overrides max for the routes it names.
	perRoute map[string]int

	mu       sync.Mutex
	inflight map[limitKey]int
}

type limitKey struct{ route, client string }

func newClientLimiter(max int) *clientLimiter {
	return &clientLimiter{max: max, routes: newRouteSet(expensiveRoutes...), inflight: map[limitKey]int{}}
}

// wrap answers 429 with Retry-After when the client already has max requests of the
// route in flight.
func (l *clientLimiter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		route := l.routes.match(r)
		if route == "" {
			next.ServeHTTP(w, r)
			return
		}
		k := limitKey{route: route, client: clientAddr(r)}
		if !l.acquire(k) {
			w.Header().Set("Retry-After", "1")
			setting := "api.max_inflight_per_client"
			if _, ok := l.perRoute[route]; ok {
				setting = "probe.max_inflight_per_client"
			}
			refuse(w, r, http.StatusTooManyRequests, fmt.Sprintf("too many requests in flight: at most %d of %s per client address (%s)", l.limitOf(route), route, setting))
			return
		}
		defer l.release(k)
		next.ServeHTTP(w, r)
	})
}

// limitOf is the number of requests of route one client may have in flight.
func (l *clientLimiter) limitOf(route string) int {
	if n, ok := l.perRoute[route]; ok {
		return n
	}
	return l.max
}

func (l *clientLimiter) acquire(k limitKey) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[k] >= l.limitOf(k.route) {
		return false
	}
	l.inflight[k]++
	return true
}

func (l *clientLimiter) release(k limitKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[k]--; l.inflight[k] <= 0 {
		delete(l.inflight, k)
	}
}

// clientAddr is the IP address of r's peer. Behind a reverse proxy every request has
// the proxy's.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// maxProbeWindow bounds how far a /probe request's write deadline is pushed out.
const maxProbeWindow = 10 * time.Minute

// probeDeadline gives a /probe request as long to answer as its probe may take: the
// server-wide write timeout counts from the end of the request, and a module may
// allow a probe longer than that.
func probeDeadline(write time.Duration, modules func() map[string]probe.Module, next http.Handler) http.Handler {
	probeRoute := newRouteSet("GET /probe")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if probeRoute.match(r) != "" {
			window := probe.DefaultTimeout
			name := r.URL.Query().Get("module")
			if name == "" {
				name = "http_2xx" // the handler's default, as blackbox_exporter's
			}
			if m, ok := modules()[name]; ok {
				window = max(window, m.Timeout)
			}
			if s, err := strconv.ParseFloat(r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"), 64); err == nil && s > 0 && s < maxProbeWindow.Seconds() {
				window = max(window, time.Duration(s*float64(time.Second)))
			}
			window = min(window, maxProbeWindow)
			if window+5*time.Second > write {
				_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(window + 5*time.Second))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// serverFor builds the HTTP server for a listener: the daemon's handler behind the
// Host allowlist of that listener, with the daemon's timeouts.
func (d *Daemon) serverFor(cfg *config.Config, ln net.Listener, h http.Handler) *http.Server {
	hostname, _ := os.Hostname()
	allow := newHostAllowlist(ln.Addr(), cfg.API.Hosts, hostname)
	if allow.anyIP && !allow.any && len(cfg.API.Hosts) == 0 {
		d.logger.Info("serving on a wildcard address: requests by IP address, by localhost and by this host's name are answered; list other names under api.hosts",
			"addr", ln.Addr().String(), "hostname", hostname)
	}
	lim := d.httpLimits
	return &http.Server{
		Handler:           guardHosts(allow, h),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
	}
}

// socketPath is where the local socket is served: api.socket, else portpatrol.sock in
// the data directory; "" for none (api.socket: off, or a shared Store without a data
// directory of this daemon's own).
func (d *Daemon) socketPath(cfg *config.Config) (string, error) {
	switch s := cfg.APISocket(); {
	case s == config.SocketOff:
		return "", nil
	case s != "":
		return s, nil
	case d.dataDir != "":
		return filepath.Join(d.dataDir, api.SocketName), nil
	case d.sharedDB:
		return "", nil
	}
	dir, err := store.DefaultDataDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, api.SocketName), nil
}

// serveSocket serves the daemon's handler on the local socket, where requests are
// authorised by the peer's uid (see api.SocketConnContext), sending the server's
// failure to errc. A socket that cannot be served is logged and skipped: the TCP
// listener still serves everything. The returned function shuts the server down.
func (d *Daemon) serveSocket(cfg *config.Config, errc chan<- error) func(context.Context) {
	path, err := d.socketPath(cfg)
	if path == "" || err != nil {
		if err != nil {
			d.logger.Warn("no local socket", "err", err)
		}
		return func(context.Context) {}
	}
	ln, err := api.ListenSocket(path)
	if err != nil {
		d.logger.Warn("no local socket: the CLI needs a token", "err", err)
		return func(context.Context) {}
	}
	lim := d.httpLimits
	srv := &http.Server{
		Handler:           d.Handler(),
		ConnContext:       api.SocketConnContext,
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
	}
	d.spawn(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("socket server: %w", err)
		}
	})
	d.logger.Info("serving the local socket: root and this user need no token on it", "socket", path)
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			d.logger.Warn("socket server shutdown", "err", err)
		}
	}
}
