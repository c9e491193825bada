// Package exporter speaks Prometheus: the daemon's own /metrics collectors and a
// /probe endpoint compatible with blackbox_exporter, so an existing scrape config
// migrates by changing an address.
package exporter

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
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

// ProbeHandler serves /probe?target=…&module=… like blackbox_exporter. Modules returns
// the current module set (it changes on reload). The zero value is not usable; set
// Modules. It is safe for concurrent use.
type ProbeHandler struct {
	Modules func() map[string]probe.Module
	// Env is where the probes run; its owner closes it after the server has stopped.
	// nil runs them without one (see probe.New): bare TCP checks connect.
	Env    *probe.Env
	Logger *slog.Logger
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
	t, err := TargetFor(raw, mod)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	t.Timeout = scrapeTimeout(r, mod)
	p, err := probe.New(t, mod, h.Env)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	res := p.Run(r.Context())
	if h.Logger != nil && !res.Up() {
		h.Logger.Debug("probe failed", "target", res.Target, "module", modName, "class", res.Class, "err", res.Error)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&resultCollector{res: res, prober: proberOf(mod, t)})
	if q.Get("debug") == "true" {
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

// scrapeTimeout follows blackbox_exporter: the module's timeout, bounded by
// Prometheus's scrape timeout header less an offset.
func scrapeTimeout(r *http.Request, m probe.Module) time.Duration {
	timeout := m.Timeout
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			st := time.Duration(s*float64(time.Second)) - timeoutOffset
			if st <= 0 {
				st = time.Duration(s * float64(time.Second))
			}
			if timeout == 0 || st < timeout {
				timeout = st
			}
		}
	}
	if timeout == 0 {
		timeout = probe.DefaultTimeout
	}
	return timeout
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
