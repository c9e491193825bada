package exporter

import (
	"bufio"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// TargetInfo describes a configured target: its row in the per-target table, and its
// portpatrol_target_info series.
type TargetInfo struct {
	ID     string
	Scheme string
	Name   string
	Module string
	Labels map[string]string
}

// durationBuckets are the bounds of both duration histograms: the one per scheme and
// module that /metrics always carries, and the one per target of per_target: full.
var durationBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Metrics holds the daemon's own metrics. Process-wide families (probes by scheme and
// class, duration histograms by scheme and module, scheduler lag, reloads, and whatever
// the daemon registers) live on Registry, a registry of its own (never the global one).
// Per-target series live in a compact table written straight to the text exposition,
// because at 100,000 targets a prometheus.Metric per series per scrape costs seconds and
// gigabytes. By default /metrics carries three series per target; SetFull adds every
// per-target series of earlier releases. Every result is recorded the same way in both
// modes, so switching changes what is exported, never what is measured, and
// TargetHandler serves all of one target's series either way. User labels are only on
// portpatrol_target_info (full), to be joined in PromQL, which keeps series bounded.
//
// The zero value is not usable; use NewMetrics. Metrics is safe for concurrent use.
type Metrics struct {
	// Registry holds the process-wide families; the daemon registers its own
	// collectors on it. The per-target series are not on it: serve Handler, which
	// writes both, rather than promhttp over Registry.
	Registry *prometheus.Registry

	probes      *prometheus.CounterVec
	durations   *prometheus.HistogramVec
	lag         prometheus.Histogram
	targets     prometheus.Gauge
	reloadOK    prometheus.Gauge
	reloadTime  prometheus.Gauge
	reloadTotal *prometheus.CounterVec

	full atomic.Bool
	gzip sync.Pool // *gzip.Writer

	// mu guards table and infoNames. Observe writes one row under it; scrapes read
	// the rows in chunks under its read lock, so a long scrape never holds up results
	// for more than a chunk. Rows are found by binary search: a map from ID to row
	// would cost every target another 40 bytes.
	mu        sync.RWMutex
	table     table
	infoNames []string // label names of portpatrol_target_info, sorted
}

// NewMetrics creates the metrics on a fresh registry, with Go and process collectors.
// /metrics starts with the minimal per-target series.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portpatrol_probes_total", Help: "Probes run, by scheme and class (every class but ok and slow is a failure).",
		}, []string{"scheme", "class"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "portpatrol_probes_duration_seconds",
			Help:    "How long probes took, by scheme and module (module is empty for targets without a named module).",
			Buckets: durationBuckets[:],
		}, []string{"scheme", "module"}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portpatrol_scheduler_lag_seconds",
			Help:    "How late probes started against their due time.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
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
	}
	m.Registry.MustRegister(m.probes, m.durations, m.lag, m.targets, m.reloadOK, m.reloadTime, m.reloadTotal,
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

// SetFull chooses the per-target series of /metrics: false (the default) for the three
// minimal ones, true for those plus every per-target series of earlier releases. It
// takes effect at the next scrape; nothing recorded is lost either way.
func (m *Metrics) SetFull(full bool) { m.full.Store(full) }

// SetTargets replaces the configured targets. Targets that stay keep what was recorded
// for them; the series of targets that are gone disappear.
func (m *Metrics) SetTargets(ts []TargetInfo) {
	ts = slices.Clone(ts)
	slices.SortStableFunc(ts, func(a, b TargetInfo) int { return strings.Compare(a.ID, b.ID) })
	ts = slices.CompactFunc(ts, func(a, b TargetInfo) bool { return a.ID == b.ID })
	next := table{rows: make([]row, len(ts))}
	names := map[string]bool{"target": true, "scheme": true, "name": true, "module": true}
	groups := map[[2]string]uint32{}
	for i, t := range ts {
		g, ok := groups[[2]string{t.Scheme, t.Module}]
		if !ok {
			g = uint32(len(next.groups))
			next.groups = append(next.groups, group{scheme: t.Scheme, module: t.Module, agg: m.durations.WithLabelValues(t.Scheme, t.Module)})
			groups[[2]string{t.Scheme, t.Module}] = g
		}
		next.rows[i] = row{id: t.ID, name: t.Name, labels: t.Labels, group: g}
		for k := range t.Labels {
			if validLabelName(k) {
				names[k] = true
			}
		}
	}
	infoNames := make([]string, 0, len(names))
	for k := range names {
		infoNames = append(infoNames, k)
	}
	slices.Sort(infoNames)

	m.mu.Lock()
	for i := range next.rows {
		if j, ok := find(m.table.rows, next.rows[i].id); ok {
			next.rows[i].rec = m.table.rows[j].rec
		}
	}
	// The old table is left as it was: a scrape still walking it reads a consistent,
	// if slightly old, table.
	m.table, m.infoNames = next, infoNames
	m.mu.Unlock()
	m.targets.Set(float64(len(next.rows)))
}

// find returns the index of the row of target id in rows, sorted by ID.
func find(rows []row, id string) (int, bool) {
	i := sort.Search(len(rows), func(i int) bool { return rows[i].id >= id })
	return i, i < len(rows) && rows[i].id == id
}

// Observe records one probe result, the target's confirmed status afterwards, and how
// late the probe started. A result of a target SetTargets does not know (one still in
// flight when its target was removed) counts only in the process-wide families.
func (m *Metrics) Observe(r *patrol.Result, scheme string, status patrol.Status, flapping bool, lag time.Duration) {
	secs := r.Duration.Seconds()
	m.probes.WithLabelValues(scheme, string(r.Class)).Inc()
	m.lag.Observe(lag.Seconds())
	var agg prometheus.Observer
	m.mu.Lock()
	if i, ok := find(m.table.rows, r.Target); ok {
		row := &m.table.rows[i]
		row.rec.observe(r, secs, status, flapping)
		agg = m.table.groups[row.group].agg
	}
	m.mu.Unlock()
	if agg == nil {
		agg = m.durations.WithLabelValues(scheme, "")
	}
	agg.Observe(secs)
}

// textFormat is the exposition format of /metrics and /metrics/target. The per-target
// families are written as text directly, so both endpoints speak only this format;
// Prometheus accepts it whatever it asks for first.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Handler serves /metrics: the registry's families, then the per-target series of the
// current mode. It compresses with gzip when the client accepts it, as Prometheus does.
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mfs, err := m.Registry.Gather()
		if err != nil {
			http.Error(w, "gather metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", string(textFormat))
		out, done := m.compress(w, r)
		defer done()
		enc := expfmt.NewEncoder(out, textFormat)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return // the client went away; nothing to tell it
			}
		}
		m.writeTargets(out, m.full.Load())
	})
}

// TargetHandler serves /metrics/target?target=ID: every per-target series of one
// configured target (the full set, whatever the mode of /metrics), from what the last
// probes recorded; it runs no probe. ID is the target's canonical ID
// (tcp://10.0.0.5:6379); a target written as in the config is canonicalised.
func (m *Metrics) TargetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("target")
		if id == "" {
			http.Error(w, "target parameter is missing", http.StatusBadRequest)
			return
		}
		t, ok := m.snapshot(id)
		if !ok {
			http.Error(w, "target "+strconv.Quote(id)+" is not configured", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", string(textFormat))
		out, done := m.compress(w, r)
		defer done()
		m.writeRows(out, t, true)
	})
}

// snapshot copies the row of the target id, or of its canonical form, into a table
// of its own.
func (m *Metrics) snapshot(id string) (table, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	i, ok := find(m.table.rows, id)
	if !ok {
		t, err := patrol.ParseTarget(id)
		if err != nil {
			return table{}, false
		}
		if i, ok = find(m.table.rows, t.ID); !ok {
			return table{}, false
		}
	}
	r := m.table.rows[i]
	g := m.table.groups[r.group]
	r.group = 0
	return table{rows: []row{r}, groups: []group{g}}, true
}

// compress wraps w in a buffer, and in gzip when the request accepts it; done flushes
// and closes what it wrapped.
func (m *Metrics) compress(w http.ResponseWriter, r *http.Request) (io.Writer, func()) {
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		bw := bufio.NewWriterSize(w, 64<<10)
		return bw, func() { _ = bw.Flush() }
	}
	w.Header().Set("Content-Encoding", "gzip")
	gz, _ := m.gzip.Get().(*gzip.Writer)
	if gz == nil {
		// BestSpeed: a 20 MB exposition compresses in a fraction of the time of the
		// default level, for about a tenth more bytes on the wire.
		gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	} else {
		gz.Reset(w)
	}
	bw := bufio.NewWriterSize(gz, 64<<10)
	return bw, func() {
		_ = bw.Flush()
		_ = gz.Close()
		m.gzip.Put(gz)
	}
}

// acceptsGzip reports whether an Accept-Encoding header value allows gzip.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		if strings.TrimSpace(name) != "gzip" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				q, _ = strconv.ParseFloat(v, 64)
			}
		}
		return q > 0
	}
	return false
}
