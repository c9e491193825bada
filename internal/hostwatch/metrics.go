package hostwatch

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/inventory"
)

// metrics exports what the watch sees. Per-listener series carry proto, addr, port and
// process; they exist while the listener does (an expected listener that is missing
// keeps portpatrol_listener_up 0).
type metrics struct {
	w *Watch

	tick   prometheus.Histogram
	errors prometheus.Counter

	up, expected, queue, backlog, established, bytesIn, bytesOut *prometheus.Desc
	cpu, rss, fds, maxFDs                                        *prometheus.Desc
	overflows, drops, expectedN, listeners, ephemeral            *prometheus.Desc
}

var _ prometheus.Collector = (*metrics)(nil)

func newMetrics(w *Watch) *metrics {
	ll := []string{"proto", "addr", "port", "process"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &metrics{
		w: w,
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portpatrol_hostwatch_tick_duration_seconds",
			Help:    "How long one watch tick took: the socket dump, owners of new sockets and the rules.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portpatrol_hostwatch_errors_total",
			Help: "Watch ticks whose socket dump failed.",
		}),
		up:          d("portpatrol_listener_up", "1 while the listener listens; 0 while an expected listener is missing.", ll),
		expected:    d("portpatrol_listener_expected", "1 when the listener has lived long enough to be expected (its loss pages).", ll),
		queue:       d("portpatrol_listener_accept_queue", "Connections waiting in the listener's accept queue.", ll),
		backlog:     d("portpatrol_listener_backlog", "The most connections the listener's accept queue may hold.", ll),
		established: d("portpatrol_listener_established", "Established connections accepted by the listener, at the last detail dump.", ll),
		bytesIn:     d("portpatrol_listener_received_bytes", "Bytes received over the listener's open connections (tcp_info), at the last detail dump.", ll),
		bytesOut:    d("portpatrol_listener_sent_bytes", "Bytes sent and acknowledged over the listener's open connections (tcp_info), at the last detail dump.", ll),
		cpu:         d("portpatrol_listener_process_cpu_seconds_total", "User and system CPU time of the listener's process.", ll),
		rss:         d("portpatrol_listener_process_resident_memory_bytes", "Resident memory of the listener's process.", ll),
		fds:         d("portpatrol_listener_process_open_fds", "Open file descriptors of the listener's process.", ll),
		maxFDs:      d("portpatrol_listener_process_max_fds", "Open-files limit (soft RLIMIT_NOFILE) of the listener's process; absent when unlimited.", ll),
		overflows:   d("portpatrol_host_listen_overflows_total", "Connections the kernel dropped because an accept queue was full (TcpExt ListenOverflows).", nil),
		drops:       d("portpatrol_host_listen_drops_total", "Connections listeners dropped for any reason, overflows included (TcpExt ListenDrops).", nil),
		expectedN:   d("portpatrol_hostwatch_expected_listeners", "Listeners in the expected set.", nil),
		listeners:   d("portpatrol_hostwatch_listeners", "Listeners in the last dump.", nil),
		ephemeral:   d("portpatrol_hostwatch_ephemeral_listeners_total", "Listeners that went away before they were learned (not paged).", nil),
	}
}

// Collector returns the watch's metrics, to be registered on the caller's registry.
func (w *Watch) Collector() prometheus.Collector { return w.metrics }

// Describe sends the descriptors of every metric.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.tick.Describe(ch)
	m.errors.Describe(ch)
	for _, d := range []*prometheus.Desc{
		m.up, m.expected, m.queue, m.backlog, m.established, m.bytesIn, m.bytesOut,
		m.cpu, m.rss, m.fds, m.maxFDs, m.overflows, m.drops, m.expectedN, m.listeners, m.ephemeral,
	} {
		ch <- d
	}
}

// Collect sends the current values.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.tick.Collect(ch)
	m.errors.Collect(ch)
	w := m.w
	gauge := func(d *prometheus.Desc, v float64, lv []string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	detail := w.cfg.DetailInterval > 0
	w.mu.Lock()
	defer w.mu.Unlock()
	expected, present := 0, 0
	for _, l := range w.ls {
		if l.retired {
			continue
		}
		lv := []string{string(l.key.proto), l.key.bind.Addr().String(), strconv.Itoa(int(l.key.bind.Port())), l.process()}
		here := len(l.socks) > 0
		gauge(m.up, b2f(here), lv)
		gauge(m.expected, b2f(l.expected), lv)
		if l.expected {
			expected++
		}
		if !here {
			continue
		}
		present++
		if l.key.proto == inventory.TCP {
			q, b := l.queueLen()
			gauge(m.queue, float64(q), lv)
			gauge(m.backlog, float64(b), lv)
			if detail {
				gauge(m.established, float64(l.established), lv)
				if !w.cfg.NoTraffic {
					gauge(m.bytesIn, float64(l.bytesIn), lv)
					gauge(m.bytesOut, float64(l.bytesOut), lv)
				}
			}
		}
		if l.resOK {
			ch <- prometheus.MustNewConstMetric(m.cpu, prometheus.CounterValue, l.res.CPU.Seconds(), lv...)
			gauge(m.rss, float64(l.res.RSS), lv)
			gauge(m.fds, float64(l.res.OpenFiles), lv)
			if l.res.MaxOpenFiles > 0 {
				gauge(m.maxFDs, float64(l.res.MaxOpenFiles), lv)
			}
		}
	}
	if w.ctrsOK {
		ch <- prometheus.MustNewConstMetric(m.overflows, prometheus.CounterValue, float64(w.ctrs.ListenOverflows))
		ch <- prometheus.MustNewConstMetric(m.drops, prometheus.CounterValue, float64(w.ctrs.ListenDrops))
	}
	gauge(m.expectedN, float64(expected), nil)
	gauge(m.listeners, float64(present), nil)
	ch <- prometheus.MustNewConstMetric(m.ephemeral, prometheus.CounterValue, float64(w.ephemeral))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
