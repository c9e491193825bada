// Package exporter speaks Prometheus: the daemon's own /metrics collectors and a
// /probe endpoint compatible with blackbox_exporter, so an existing scrape config
// migrates by changing an address.
package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// timeoutOffset is subtracted from Prometheus's scrape timeout so the answer arrives
// before the scraper gives up (blackbox_exporter's default).
const timeoutOffset = 500 * time.Millisecond

// maxTimeout bounds every timeout a /probe request may name, as a target option or in
// Prometheus's header: more is a mistake or an attempt to hold connections open, and
// is refused.
const maxTimeout = time.Hour

// ProbeHandler serves /probe?target=…&module=… like blackbox_exporter, and no more
// than the operator configured: a target may not change what its module sends or the
// credentials it uses unless the module allows target options; it may reach only the
// addresses Env.Allow allows; it runs for no longer than the module's timeout and
// Prometheus's scrape timeout; and it stops, closing its connections, when the
// request is cancelled. The zero value is not usable; set Modules. It is safe for
// concurrent use.
type ProbeHandler struct {
	// Modules returns the current module set (it changes on reload).
	Modules func() map[string]probe.Module
	// Env is where the probes run; its owner closes it after the server has stopped.
	// nil runs them without one (see probe.New): bare TCP checks connect. Its Allow
	// hook is the network allowlist: the handler asks it about the target's
	// addresses before probing and answers 403 for one it refuses, and the probe asks
	// it again before each connection (a name that resolves differently by then, an
	// HTTP redirect). A nil Env or Allow allows every address.
	Env *probe.Env
	// Authorize decides whether a request may see the debug output (debug=true),
	// which shows what the target answered: nil lets it, an error refuses it with the
	// status of its StatusCode method (401 or 403), or 500 without one. A nil
	// Authorize refuses debug output to everyone.
	Authorize func(*http.Request) error
	Logger    *slog.Logger
}

var _ http.Handler = (*ProbeHandler)(nil)

func (h *ProbeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	raw := q.Get("target")
	if raw == "" {
		http.Error(w, "target parameter is missing", http.StatusBadRequest)
		return
	}
	modName := q.Get("module")
	if modName == "" {
		modName = "http_2xx" // blackbox_exporter's default
	}
	mods := h.Modules()
	mod, ok := mods[modName]
	if !ok {
		http.Error(w, fmt.Sprintf("unknown module %q", modName), http.StatusBadRequest)
		return
	}
	debug := q.Get("debug") == "true"
	if debug {
		if status, msg := h.authorize(r); status != 0 {
			http.Error(w, "debug output: "+msg, status)
			return
		}
	}
	t, err := TargetFor(raw, mod)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	limit, err := scrapeTimeout(r, mod)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t.Timeout = limit
	p, err := probe.New(t, mod, h.Env)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if over := p.Overrides(); len(over) > 0 && !mod.AllowTargetOptions {
		http.Error(w, fmt.Sprintf("target option %s would change what module %q sends or logs in with; "+
			"it runs only as configured unless the module sets allow_target_options: true", strings.Join(over, ", "), modName),
			http.StatusBadRequest)
		return
	}
	// t.Timeout is at most maxTimeout: only a timeout option can ask for more.
	if p.Timeout() > maxTimeout {
		http.Error(w, fmt.Sprintf("option timeout %s: want at most %s", p.Timeout(), maxTimeout), http.StatusBadRequest)
		return
	}
	if err := h.checkAddress(r.Context(), t, limit); err != nil {
		http.Error(w, fmt.Sprintf("target %s: %v", t.ID, err), http.StatusForbidden)
		return
	}
	// The run ends with the request: a scraper that goes away closes the probe's
	// connection at once.
	ctx, cancel := context.WithTimeout(r.Context(), min(p.Timeout(), limit))
	defer cancel()
	res := p.Run(ctx)
	if h.Logger != nil && !res.Up() {
		h.Logger.Debug("probe failed", "target", res.Target, "module", modName, "class", res.Class, "err", res.Error)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&resultCollector{res: res, prober: proberOf(mod, t)})
	if debug {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintf(w, "Result of probe %s with module %s:\n%s\n\nMetrics that would have been returned:\n", t.ID, modName, b)
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, m := range mf.Metric {
				fmt.Fprintf(w, "%s%s\n", mf.GetName(), labelString(m.Label))
			}
		}
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// authorize returns 0 when r may see debug output, else the status and message to
// refuse it with.
func (h *ProbeHandler) authorize(r *http.Request) (int, string) {
	if h.Authorize == nil {
		return http.StatusForbidden, "not available on this server"
	}
	err := h.Authorize(r)
	if err == nil {
		return 0, ""
	}
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return sc.StatusCode(), err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// checkAddress asks Env.Allow about every address of t's host before any packet is
// sent to it. A name that does not resolve passes: the probe then reports the DNS
// failure as its result, as blackbox_exporter does, and Env.Allow still guards every
// connection it opens.
func (h *ProbeHandler) checkAddress(ctx context.Context, t patrol.Target, limit time.Duration) error {
	if h.Env == nil || h.Env.Allow == nil {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(t.Host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		res := h.Env.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		ctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		if addrs, err = res.LookupNetIP(ctx, "ip", t.Host); err != nil {
			return nil
		}
	}
	for _, a := range addrs {
		if err := h.Env.Allow(netip.AddrPortFrom(a, uint16(t.Port))); err != nil {
			return err
		}
	}
	return nil
}

// TargetFor parses a /probe target the way blackbox_exporter reads it: a URL for http
// modules, host:port for the others. A target with its own scheme keeps it.
func TargetFor(raw string, mod probe.Module) (patrol.Target, error) {
	if strings.Contains(raw, "://") {
		return patrol.ParseTarget(raw)
	}
	scheme := mod.Prober
	switch {
	case scheme == "tcp" && mod.TCP.TLS:
		scheme = "tls"
	case scheme == "":
		scheme = "tcp"
	}
	return patrol.ParseTarget(scheme + "://" + raw)
}

func proberOf(m probe.Module, t patrol.Target) string {
	if m.Prober != "" {
		return m.Prober
	}
	return t.Scheme
}

// scrapeTimeout is the longest a probe may run: the module's timeout (or
// probe.DefaultTimeout; at most maxTimeout), bounded like blackbox_exporter's by
// Prometheus's scrape timeout header less an offset. A header that is not a number of
// seconds between 0 and maxTimeout is an error.
func scrapeTimeout(r *http.Request, m probe.Module) (time.Duration, error) {
	timeout := min(m.Timeout, maxTimeout)
	if timeout <= 0 {
		timeout = probe.DefaultTimeout
	}
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		s, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(s) || s <= 0 || s > maxTimeout.Seconds() {
			return 0, fmt.Errorf("header X-Prometheus-Scrape-Timeout-Seconds %q: want a number of seconds above 0 and at most %g", v, maxTimeout.Seconds())
		}
		st := time.Duration(s * float64(time.Second))
		if st > timeoutOffset {
			st -= timeoutOffset
		}
		timeout = min(timeout, st)
	}
	return timeout, nil
}

func labelString(ls []*dto.LabelPair) string {
	if len(ls) == 0 {
		return ""
	}
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// resultCollector renders one result with blackbox_exporter's metric names.
type resultCollector struct {
	res    patrol.Result
	prober string
}

func (c *resultCollector) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(c, ch) }

func gauge(ch chan<- prometheus.Metric, name, help string, v float64, labels ...string) {
	var names, values []string
	for i := 0; i+1 < len(labels); i += 2 {
		names = append(names, labels[i])
		values = append(values, labels[i+1])
	}
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, names, nil), prometheus.GaugeValue, v, values...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *resultCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.res
	gauge(ch, "probe_success", "Displays whether or not the probe was a success", b2f(r.Up()))
	gauge(ch, "probe_duration_seconds", "Returns how long the probe took to complete in seconds", r.Duration.Seconds())
	if d, ok := r.Phase("dns"); ok {
		gauge(ch, "probe_dns_lookup_time_seconds", "Returns the time taken for probe dns lookup in seconds", d.Seconds())
	}
	if r.RemoteAddr != "" {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if ip := net.ParseIP(host); ip != nil {
				proto := 6.0
				if ip.To4() != nil {
					proto = 4
				}
				gauge(ch, "probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6", proto)
				h := fnv.New32a()
				h.Write([]byte(ip.String()))
				gauge(ch, "probe_ip_addr_hash", "Specifies the hash of IP address. It's useful to detect if the IP address changes.", float64(h.Sum32()))
			}
		}
	}
	gauge(ch, "portpatrol_probe_class", "The class of the probe's result (1 for the class that applies)", 1, "class", string(r.Class))
	switch c.prober {
	case "http":
		c.collectHTTP(ch)
	case "dns":
		c.collectDNS(ch)
	}
	if r.Class == patrol.ClassProtocol && strings.Contains(r.Error, "regexp") {
		gauge(ch, "probe_failed_due_to_regex", "Indicates if probe failed due to regex", 1)
	} else if c.prober == "http" || c.prober == "tcp" {
		gauge(ch, "probe_failed_due_to_regex", "Indicates if probe failed due to regex", 0)
	}
	if t := r.TLS; t != nil {
		gauge(ch, "probe_ssl_earliest_cert_expiry", "Returns last SSL chain expiry in unixtime", float64(t.EarliestExpiry.Unix()))
		if !t.LastChainExpiry.IsZero() {
			gauge(ch, "probe_ssl_last_chain_expiry_timestamp_seconds", "Returns last SSL chain expiry in timestamp", float64(t.LastChainExpiry.Unix()))
		}
		gauge(ch, "probe_tls_version_info", "Returns the TLS version used or NaN when unknown", 1, "version", t.Version)
	}
	if cp := r.Capacity; cp != nil && cp.Limit > 0 {
		gauge(ch, "portpatrol_probe_capacity_used", "Connections or clients in use, as the server reports", float64(cp.Used), "what", cp.What)
		gauge(ch, "portpatrol_probe_capacity_limit", "The server's limit for them", float64(cp.Limit), "what", cp.What)
	}
}

func (c *resultCollector) collectHTTP(ch chan<- prometheus.Metric) {
	r := c.res
	for _, phase := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
		name := phase
		if phase == "resolve" {
			name = "dns"
		}
		d, _ := r.Phase(name)
		gauge(ch, "probe_http_duration_seconds", "Duration of http request by phase, summed over all redirects", d.Seconds(), "phase", phase)
	}
	h := r.HTTP
	if h == nil {
		return
	}
	gauge(ch, "probe_http_status_code", "Response HTTP status code", float64(h.Status))
	gauge(ch, "probe_http_content_length", "Length of http content response", float64(h.ContentLength))
	gauge(ch, "probe_http_uncompressed_body_length", "Length of uncompressed response body", float64(h.BodyLength))
	gauge(ch, "probe_http_redirects", "The number of redirects", float64(h.Redirects))
	gauge(ch, "probe_http_ssl", "Indicates if SSL was used for the final redirect", b2f(r.TLS != nil))
	if v := httpVersion(h.Proto); v > 0 {
		gauge(ch, "probe_http_version", "Returns the version of HTTP of the probe response", v)
	}
}

func httpVersion(proto string) float64 {
	v, err := strconv.ParseFloat(strings.TrimPrefix(proto, "HTTP/"), 64)
	if err != nil {
		return 0
	}
	return v
}

func (c *resultCollector) collectDNS(ch chan<- prometheus.Metric) {
	r := c.res
	for _, phase := range []string{"resolve", "connect", "request"} {
		name := phase
		if phase == "resolve" {
			name = "dns"
		}
		d, _ := r.Phase(name)
		gauge(ch, "probe_dns_duration_seconds", "Duration of DNS request by phase", d.Seconds(), "phase", phase)
	}
	for _, k := range []string{"answer_rrs", "authority_rrs", "additional_rrs"} {
		if v, ok := r.Details[k]; ok {
			if n, err := strconv.ParseFloat(v, 64); err == nil {
				gauge(ch, "probe_dns_"+k, "Returns number of entries in the "+strings.TrimSuffix(k, "_rrs")+" resource record list", n)
			}
		}
	}
	_, answered := r.Details["rcode"]
	gauge(ch, "probe_dns_query_succeeded", "Displays whether or not the query was executed successfully", b2f(answered))
}
