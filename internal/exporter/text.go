package exporter

import (
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// row is one configured target in the per-target table. Every configured target has
// one, so it holds no more than it must (192 bytes with its record): its scheme and
// module are an index into the table's groups, which most targets share, and its
// `target="…"` label is rendered at each scrape rather than kept.
type row struct {
	id     string
	name   string
	labels map[string]string // shared with the configuration; read-only
	rec    record
	group  uint32 // index in the groups of the same table
}

// group is a scheme and module that configured targets share, with their child of the
// duration histogram by scheme and module.
type group struct {
	scheme, module string
	agg            prometheus.Observer
}

// table is the per-target table at one moment: rows sorted by target ID, and the
// groups they point into. SetTargets replaces both at once.
type table struct {
	rows   []row
	groups []group
}

// line is what a family's emit needs of one row: the row, its group and its rendered
// `target="…"` label.
type line struct {
	r     *row
	g     *group
	label []byte
}

// record is everything recorded for one target, whatever the mode: /metrics/target
// and per_target: full read all of it, the minimal /metrics the first four fields.
// Every configured target has one, so it is kept small (144 bytes; 304 with 64-bit
// counts and the capacity and expiry inline): the per-target counts are 32-bit, which
// wrap, as Prometheus takes a counter reset, only after 4 billion probes of one target
// in one bucket (136 years at one probe a second), and what only some probes report
// (capacity, certificate expiry) is kept apart.
type record struct {
	buckets  [len(durationBuckets) + 1]uint32 // per bucket, not cumulative; the last is +Inf
	failures [classCount]uint32               // by index in patrol.Classes
	observed bool
	up       bool
	flapping bool
	status   uint8 // 1 + index in patrol.Statuses; 0 is unknown

	last  float64 // seconds the last probe took
	sum   float64
	count uint64

	extra *recordExtra // nil until a probe reports capacity or a certificate
}

// recordExtra is what a target's probes report only for some protocols.
type recordExtra struct {
	capWhat           string
	capUsed, capLimit float64
	hasCap, hasExpiry bool
	expiry            float64 // Unix seconds
}

// classCount is the number of result classes (len(patrol.Classes), which a test
// checks), so record.failures is an array rather than a slice of its own.
const classCount = 11

func (r *record) observe(res *patrol.Result, secs float64, status patrol.Status, flapping bool) {
	r.observed, r.up, r.flapping, r.status, r.last = true, res.Up(), flapping, statusIndex(status), secs
	i, _ := slices.BinarySearch(durationBuckets[:], secs)
	r.buckets[i]++
	r.sum += secs
	r.count++
	if !res.Up() {
		if c := slices.Index(patrol.Classes, res.Class); c >= 0 && c < classCount {
			r.failures[c]++
		}
	}
	if c := res.Capacity; c != nil && c.Limit > 0 {
		x := r.ext()
		x.hasCap, x.capWhat, x.capUsed, x.capLimit = true, c.What, float64(c.Used), float64(c.Limit)
	}
	if res.TLS != nil && !res.TLS.EarliestExpiry.IsZero() {
		x := r.ext()
		x.hasExpiry, x.expiry = true, float64(res.TLS.EarliestExpiry.Unix())
	}
}

// ext returns r.extra, making it on first use. A scrape may be reading the old one
// under the read lock while Observe writes under the write lock, so it is written in
// place, never replaced.
func (r *record) ext() *recordExtra {
	if r.extra == nil {
		r.extra = new(recordExtra)
	}
	return r.extra
}

// statusIndex is 1 + s's index in patrol.Statuses; a status outside it is 0, unknown.
func statusIndex(s patrol.Status) uint8 {
	return uint8(slices.Index(patrol.Statuses, s) + 1)
}

// statusOf is the status recorded.
func (r *record) statusOf() patrol.Status {
	if r.status == 0 {
		return patrol.StatusUnknown
	}
	return patrol.Statuses[r.status-1]
}

// stateCode encodes a status in portpatrol_target_state_code: higher is worse, so max()
// over targets gives the worst state.
func stateCode(s patrol.Status) float64 {
	switch s {
	case patrol.StatusUp:
		return 0
	case patrol.StatusDown:
		return 2
	default:
		return 1
	}
}

// family is one per-target metric family. emit appends the family's sample lines for
// one row (none when the row has nothing to say) to b.
type family struct {
	name, help, typ string
	full            bool // only with per_target: full and on /metrics/target
	emit            func(b []byte, f *family, l *line, infoNames []string) []byte
}

// families are the per-target families, in the order they are written. The first three
// are the minimal set; the rest are the series of earlier releases, unchanged.
var families = []family{
	{name: "portpatrol_probe_success", typ: "gauge",
		help: "1 when the target's last probe succeeded (ok or slow), else 0.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if !r.rec.observed {
				return b
			}
			return appendSample(b, f.name, "", l.label, "", b2f(r.rec.up))
		}},
	{name: "portpatrol_probe_last_duration_seconds", typ: "gauge",
		help: "How long the target's last probe took.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if !r.rec.observed {
				return b
			}
			return appendSample(b, f.name, "", l.label, "", r.rec.last)
		}},
	{name: "portpatrol_target_state_code", typ: "gauge",
		help: "The target's confirmed state: 0 up, 1 unknown (no verdict yet), 2 down. Higher is worse.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if !r.rec.observed {
				return b
			}
			return appendSample(b, f.name, "", l.label, "", stateCode(r.rec.statusOf()))
		}},

	{name: "portpatrol_probe_duration_seconds", typ: "histogram", full: true,
		help: "How long probes took, per target.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if r.rec.count == 0 {
				return b
			}
			var cum uint64
			for i, n := range r.rec.buckets {
				cum += uint64(n)
				b = appendSample(b, f.name, "_bucket", l.label, leLabels[i], float64(cum))
			}
			b = appendSample(b, f.name, "_sum", l.label, "", r.rec.sum)
			return appendSample(b, f.name, "_count", l.label, "", float64(r.rec.count))
		}},
	{name: "portpatrol_probe_failures_total", typ: "counter", full: true,
		help: "Failed probes by target and class.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			for i, n := range r.rec.failures {
				if n == 0 {
					continue
				}
				b = append(b, f.name...)
				b = append(b, "{class="...)
				b = strconv.AppendQuote(b, string(patrol.Classes[i])) // class names need no escaping
				b = append(b, ',')
				b = append(b, l.label...)
				b = append(b, "} "...)
				b = strconv.AppendUint(b, uint64(n), 10)
				b = append(b, '\n')
			}
			return b
		}},
	{name: "portpatrol_target_state", typ: "gauge", full: true,
		help: "The target's confirmed state: 1 for the state it is in (up, down, unknown).",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if !r.rec.observed {
				return b
			}
			for _, s := range patrol.Statuses {
				b = append(b, f.name...)
				b = append(b, "{state="...)
				b = strconv.AppendQuote(b, string(s))
				b = append(b, ',')
				b = append(b, l.label...)
				b = append(b, "} "...)
				b = appendFloat(b, b2f(s == r.rec.statusOf()))
				b = append(b, '\n')
			}
			return b
		}},
	{name: "portpatrol_target_flapping", typ: "gauge", full: true,
		help: "1 while the target changes state too often to page on.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if !r.rec.observed {
				return b
			}
			return appendSample(b, f.name, "", l.label, "", b2f(r.rec.flapping))
		}},
	{name: "portpatrol_target_info", typ: "gauge", full: true,
		help: "Configured targets with their labels (value is always 1).",
		emit: func(b []byte, f *family, l *line, names []string) []byte {
			r := l.r
			b = append(b, f.name...)
			b = append(b, '{')
			for i, k := range names {
				if i > 0 {
					b = append(b, ',')
				}
				var v string
				switch k {
				case "target":
					v = r.id
				case "scheme":
					v = l.g.scheme
				case "name":
					v = r.name
				case "module":
					v = l.g.module
				default:
					v = r.labels[k]
				}
				b = appendLabel(b, k, v)
			}
			return append(b, "} 1\n"...)
		}},
	{name: "portpatrol_capacity_used", typ: "gauge", full: true,
		help: "Connections or clients in use, as the server reports them.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if x := r.rec.extra; x == nil || !x.hasCap {
				return b
			}
			return appendCapacity(b, f.name, l, r.rec.extra.capUsed)
		}},
	{name: "portpatrol_capacity_limit", typ: "gauge", full: true,
		help: "The server's limit of connections or clients.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if x := r.rec.extra; x == nil || !x.hasCap {
				return b
			}
			return appendCapacity(b, f.name, l, r.rec.extra.capLimit)
		}},
	{name: "portpatrol_tls_cert_expiry_timestamp_seconds", typ: "gauge", full: true,
		help: "When the earliest certificate of the target's chain expires.",
		emit: func(b []byte, f *family, l *line, _ []string) []byte {
			r := l.r
			if x := r.rec.extra; x == nil || !x.hasExpiry {
				return b
			}
			return appendSample(b, f.name, "", l.label, "", r.rec.extra.expiry)
		}},
}

// leLabels are the rendered `,le="…"` labels of durationBuckets and +Inf.
var leLabels = func() []string {
	out := make([]string, 0, len(durationBuckets)+1)
	for _, v := range durationBuckets {
		out = append(out, `,le="`+string(appendFloat(nil, v))+`"`)
	}
	return append(out, `,le="+Inf"`)
}()

// chunk is how many rows a scrape reads per hold of the read lock. Short holds matter
// more than few: on a busy machine a scrape can be descheduled while it holds the lock,
// and Observe then waits out the whole time slice (at 256 rows, results waited up to
// 195 ms during full scrapes in bench/metrics; at 32, the extra locking does not show
// in BenchmarkHandler).
const chunk = 32

// writeTargets writes the per-target families of every configured target.
func (m *Metrics) writeTargets(w io.Writer, full bool) {
	m.mu.RLock()
	t := m.table
	m.mu.RUnlock()
	m.writeRows(w, t, full)
}

// writeRows writes the per-target families of rows (the minimal ones, or all when full)
// to w, reading rows under the read lock a chunk at a time and writing outside it, so a
// slow client never holds up Observe. It stops at the first write error: the client
// has gone.
func (m *Metrics) writeRows(w io.Writer, t table, full bool) {
	m.mu.RLock()
	names := m.infoNames
	m.mu.RUnlock()
	rows := t.rows
	buf := make([]byte, 0, 128<<10)
	var l line
	for fi := range families {
		f := &families[fi]
		if f.full && !full {
			continue
		}
		header := false
		for lo := 0; lo < len(rows); lo += chunk {
			m.mu.RLock()
			for i := lo; i < min(lo+chunk, len(rows)); i++ {
				n := len(buf)
				l.r, l.g = &rows[i], &t.groups[rows[i].group]
				l.label = appendLabel(l.label[:0], "target", l.r.id)
				buf = f.emit(buf, f, &l, names)
				if !header && len(buf) > n {
					// The header goes before the family's first sample, and only when
					// the family has one, as the text format wants.
					buf = slices.Insert(buf, n, f.header()...)
					header = true
				}
			}
			m.mu.RUnlock()
			if len(buf) >= 96<<10 {
				if _, err := w.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
	}
	_, _ = w.Write(buf)
}

// header renders the family's HELP and TYPE lines.
func (f *family) header() []byte {
	return []byte("# HELP " + f.name + " " + f.help + "\n# TYPE " + f.name + " " + f.typ + "\n")
}

// appendSample appends `name+suffix{label extra} value\n`. label is a rendered
// `target="…"`; extra is empty or starts with a comma.
func appendSample(b []byte, name, suffix string, label []byte, extra string, v float64) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	b = append(b, '{')
	b = append(b, label...)
	b = append(b, extra...)
	b = append(b, "} "...)
	b = appendFloat(b, v)
	return append(b, '\n')
}

// appendCapacity appends `name{target="…",what="…"} v\n`.
func appendCapacity(b []byte, name string, l *line, v float64) []byte {
	b = append(b, name...)
	b = append(b, '{')
	b = append(b, l.label...)
	b = append(b, ',')
	b = appendLabel(b, "what", l.r.rec.extra.capWhat)
	b = append(b, "} "...)
	b = appendFloat(b, v)
	return append(b, '\n')
}

// appendLabel appends `name="value"` with the value escaped as the text format wants.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '"':
			b = append(b, '\\', '"')
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendFloat formats v as client_golang's text encoder does.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case v == 0:
		return append(b, '0')
	case v == 1:
		return append(b, '1')
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// validLabelName reports whether s is a Prometheus label name that portpatrol_target_info
// can carry: [a-zA-Z_][a-zA-Z0-9_]*, not reserved by Prometheus (__).
func validLabelName(s string) bool {
	if s == "" || len(s) >= 2 && s[:2] == "__" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}
