package exporter

import (
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TargetInfo describes a configured target for portpatrol_target_info.
type TargetInfo struct {
	ID     string
	Scheme string
	Name   string
	Module string
	Labels map[string]string
}

// Metrics holds the daemon's own metrics, registered on a registry of its own (never
// the global one). Per-target series carry only the target label; user labels live on
// portpatrol_target_info, to be joined in PromQL, which keeps cardinality bounded.
// Metrics is safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	success     *prometheus.GaugeVec
	duration    *prometheus.HistogramVec
	failures    *prometheus.CounterVec
	state       *prometheus.GaugeVec
	flapping    *prometheus.GaugeVec
	probes      *prometheus.CounterVec
	lag         prometheus.Histogram
	capUsed     *prometheus.GaugeVec
	capLimit    *prometheus.GaugeVec
	certExpiry  *prometheus.GaugeVec
	targets     prometheus.Gauge
	reloadOK    prometheus.Gauge
	reloadTime  prometheus.Gauge
	reloadTotal *prometheus.CounterVec

	info *infoCollector

	mu    sync.Mutex
	known map[string]bool
}

// NewMetrics creates the metrics on a fresh registry, with Go and process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portpatrol_probe_success", Help: "1 when the target's last probe succeeded (ok or slow), else 0.",
		}, []string{"target"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portpatrol_probe_duration_seconds",
			Help:    "How long probes took, per target.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"target"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portpatrol_probe_failures_total", Help: "Failed probes by target and class.",
		}, []string{"target", "class"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portpatrol_target_state", Help: "The target's confirmed state: 1 for the state it is in (up, down, unknown).",
		}, []string{"target", "state"}),
		flapping: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portpatrol_target_flapping", Help: "1 while the target changes state too often to page on.",
		}, []string{"target"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portpatrol_probes_total", Help: "Probes run, by scheme and class.",
		}, []string{"scheme", "class"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portpatrol_scheduler_lag_seconds",
			Help:    "How late probes started against their due time.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		capUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portpatrol_capacity_used", Help: "Connections or clients in use, as the server reports them.",
		}, []string{"target", "what"}),
		capLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portpatrol_capacity_limit", Help: "The server's limit of connections or clients.",
		}, []string{"target", "what"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "portpatrol_tls_cert_expiry_timestamp_seconds", Help: "When the earliest certificate of the target's chain expires.",
		}, []string{"target"}),
		targets: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portpatrol_targets", Help: "Configured targets.",
		}),
		reloadOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portpatrol_config_last_reload_successful", Help: "1 when the last configuration reload succeeded.",
		}),
		reloadTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portpatrol_config_last_reload_success_timestamp_seconds", Help: "When the configuration was last loaded successfully.",
		}),
		reloadTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portpatrol_config_reloads_total", Help: "Configuration reloads by outcome.",
		}, []string{"outcome"}),
		known: map[string]bool{},
		info:  &infoCollector{},
	}
	m.Registry.MustRegister(m.success, m.duration, m.failures, m.state, m.flapping, m.probes, m.lag,
		m.capUsed, m.capLimit, m.certExpiry, m.targets, m.reloadOK, m.reloadTime, m.reloadTotal, m.info,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// ConfigLoaded records a reload attempt.
func (m *Metrics) ConfigLoaded(ok bool, at time.Time) {
	if ok {
		m.reloadOK.Set(1)
		m.reloadTime.Set(float64(at.Unix()))
		m.reloadTotal.WithLabelValues("success").Inc()
		return
	}
	m.reloadOK.Set(0)
	m.reloadTotal.WithLabelValues("failure").Inc()
}

// SetTargets replaces the configured targets: it publishes portpatrol_target_info and
// removes every series of targets that are gone.
func (m *Metrics) SetTargets(ts []TargetInfo) {
	m.info.set(ts)
	m.mu.Lock()
	defer m.mu.Unlock()
	now := make(map[string]bool, len(ts))
	for _, t := range ts {
		now[t.ID] = true
	}
	for id := range m.known {
		if !now[id] {
			m.forget(id)
		}
	}
	m.known = now
	m.targets.Set(float64(len(ts)))
}

// infoCollector renders portpatrol_target_info from the current targets. Its label
// names are the union of the targets' label keys, so they change with the
// configuration; it is therefore an unchecked collector (Describe sends nothing).
type infoCollector struct {
	mu   sync.Mutex
	keys []string // user label keys, sorted
	ts   []TargetInfo
}

func (c *infoCollector) set(ts []TargetInfo) {
	keys := map[string]bool{}
	for _, t := range ts {
		for k := range t.Labels {
			keys[k] = true
		}
	}
	user := make([]string, 0, len(keys))
	for k := range keys {
		user = append(user, k)
	}
	sort.Strings(user)
	c.mu.Lock()
	c.keys, c.ts = user, append([]TargetInfo(nil), ts...)
	c.mu.Unlock()
}

func (c *infoCollector) Describe(chan<- *prometheus.Desc) {}

func (c *infoCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	desc := prometheus.NewDesc("portpatrol_target_info", "Configured targets with their labels (value is always 1).",
		append([]string{"target", "scheme", "name", "module"}, c.keys...), nil)
	for _, t := range c.ts {
		vals := []string{t.ID, t.Scheme, t.Name, t.Module}
		for _, k := range c.keys {
			vals = append(vals, t.Labels[k])
		}
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, 1, vals...)
	}
}

func (m *Metrics) forget(id string) {
	l := prometheus.Labels{"target": id}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.success, m.duration, m.failures, m.state, m.flapping, m.capUsed, m.capLimit, m.certExpiry,
	} {
		v.DeletePartialMatch(l)
	}
}

// Observe records one probe result, the target's confirmed status afterwards, and how
// late the probe started.
func (m *Metrics) Observe(r *patrol.Result, scheme string, status patrol.Status, flapping bool, lag time.Duration) {
	m.success.WithLabelValues(r.Target).Set(b2f(r.Up()))
	m.duration.WithLabelValues(r.Target).Observe(r.Duration.Seconds())
	if !r.Up() {
		m.failures.WithLabelValues(r.Target, string(r.Class)).Inc()
	}
	m.probes.WithLabelValues(scheme, string(r.Class)).Inc()
	for _, s := range patrol.Statuses {
		m.state.WithLabelValues(r.Target, string(s)).Set(b2f(s == status))
	}
	m.flapping.WithLabelValues(r.Target).Set(b2f(flapping))
	m.lag.Observe(lag.Seconds())
	if c := r.Capacity; c != nil && c.Limit > 0 {
		m.capUsed.WithLabelValues(r.Target, c.What).Set(float64(c.Used))
		m.capLimit.WithLabelValues(r.Target, c.What).Set(float64(c.Limit))
	}
	if r.TLS != nil && !r.TLS.EarliestExpiry.IsZero() {
		m.certExpiry.WithLabelValues(r.Target).Set(float64(r.TLS.EarliestExpiry.Unix()))
	}
}
