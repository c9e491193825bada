package exporter

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

const (
	web   = "tcp://127.0.0.1:80"
	db    = "redis://127.0.0.1:6379"
	shop  = "https://shop.test:443/"
	fresh = "tcp://127.0.0.1:22" // configured, never probed yet
)

// fixture returns Metrics with four targets and a few results recorded: web up twice,
// db refused three times and then overloaded (down, flapping), shop up with a
// certificate, fresh never probed.
func fixture(t *testing.T) *Metrics {
	t.Helper()
	m := NewMetrics()
	m.SetTargets([]TargetInfo{
		{ID: web, Scheme: "tcp", Name: "web", Labels: map[string]string{"service": "web"}},
		{ID: db, Scheme: "redis", Module: "redis_auth", Labels: map[string]string{"service": "db", "team": "data"}},
		{ID: shop, Scheme: "https", Module: "http_2xx"},
		{ID: fresh, Scheme: "tcp"},
	})
	obs := func(id string, c patrol.Class, d time.Duration, st patrol.Status, flapping bool, mod func(*patrol.Result)) {
		r := patrol.Result{Target: id, Class: c, Duration: d}
		if mod != nil {
			mod(&r)
		}
		m.Observe(&r, strings.SplitN(id, ":", 2)[0], st, flapping, time.Millisecond)
	}
	obs(web, patrol.ClassOK, 2*time.Millisecond, patrol.StatusUnknown, false, nil)
	obs(web, patrol.ClassOK, 300*time.Microsecond, patrol.StatusUp, false, nil)
	for range 3 {
		obs(db, patrol.ClassRefused, time.Millisecond, patrol.StatusDown, false, nil)
	}
	obs(db, patrol.ClassOverloaded, 7*time.Millisecond, patrol.StatusDown, true, func(r *patrol.Result) {
		r.Capacity = &patrol.Capacity{What: "clients", Used: 10, Limit: 10}
	})
	obs(shop, patrol.ClassOK, 40*time.Millisecond, patrol.StatusUp, false, func(r *patrol.Result) {
		r.TLS = &patrol.TLSInfo{EarliestExpiry: time.Unix(1800000000, 0)}
	})
	return m
}

// scrape GETs h with the given Accept-Encoding and returns the parsed families; the
// parser is the one Prometheus's own tooling uses, so a malformed exposition fails.
func scrape(t *testing.T, h http.Handler, url, encoding string) (int, map[string]*dto.MetricFamily, string) {
	t.Helper()
	req := httptest.NewRequest("GET", url, nil)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var body io.Reader = rec.Body
	if rec.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(rec.Body)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK {
		return rec.Code, nil, string(raw)
	}
	if got, want := rec.Header().Get("Content-Type"), string(textFormat); got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, raw)
	}
	return rec.Code, mfs, string(raw)
}

// perTarget returns, per target, the sorted names of the series that carry its target
// label ("name{other labels}"), histogram buckets, sum and count counted one by one.
func perTarget(mfs map[string]*dto.MetricFamily) map[string][]string {
	out := map[string][]string{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			var target string
			var other []string
			for _, l := range m.Label {
				if l.GetName() == "target" {
					target = l.GetValue()
				} else {
					other = append(other, l.GetName()+"="+l.GetValue())
				}
			}
			if target == "" {
				continue
			}
			id := name
			if len(other) > 0 {
				id += "{" + strings.Join(other, ",") + "}"
			}
			if h := m.Histogram; h != nil {
				for _, b := range h.Bucket {
					out[target] = append(out[target], fmt.Sprintf("%s_bucket{le=%g}", id, b.GetUpperBound()))
				}
				out[target] = append(out[target], name+"_sum", name+"_count") // the parser keeps +Inf as a bucket
				continue
			}
			out[target] = append(out[target], id)
		}
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

// value returns the value of the family's series whose labels include want, and how
// many series matched.
func value(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	mf := mfs[name]
	if mf == nil {
		return 0, 0
	}
	var v float64
	n := 0
	for _, m := range mf.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, w := range want {
			if have[k] != w {
				ok = false
			}
		}
		if !ok {
			continue
		}
		n++
		switch {
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
	}
	return v, n
}

// By default /metrics carries exactly three series per probed target, none for a target
// not probed yet, and the durations by scheme and module instead of per target.
func TestMetricsMinimalSeries(t *testing.T) {
	m := fixture(t)
	_, mfs, body := scrape(t, m.Handler(), "/metrics", "")
	minimal := []string{"portpatrol_probe_last_duration_seconds", "portpatrol_probe_success", "portpatrol_target_state_code"}
	want := map[string][]string{web: minimal, db: minimal, shop: minimal}
	if diff := cmp.Diff(want, perTarget(mfs)); diff != "" {
		t.Errorf("per-target series (-want +got):\n%s\n%s", diff, body)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"portpatrol_probe_success", map[string]string{"target": web}, 1},
		{"portpatrol_probe_success", map[string]string{"target": db}, 0},
		{"portpatrol_probe_last_duration_seconds", map[string]string{"target": web}, 0.0003},
		{"portpatrol_probe_last_duration_seconds", map[string]string{"target": db}, 0.007},
		{"portpatrol_target_state_code", map[string]string{"target": web}, 0},
		{"portpatrol_target_state_code", map[string]string{"target": db}, 2},
		{"portpatrol_probes_duration_seconds", map[string]string{"scheme": "tcp", "module": ""}, 2},
		{"portpatrol_probes_duration_seconds", map[string]string{"scheme": "redis", "module": "redis_auth"}, 4},
		{"portpatrol_probes_duration_seconds", map[string]string{"scheme": "https", "module": "http_2xx"}, 1},
		{"portpatrol_probes_total", map[string]string{"scheme": "redis", "class": "refused"}, 3},
		{"portpatrol_targets", nil, 4},
	}
	for _, tt := range tests {
		got, n := value(mfs, tt.name, tt.labels)
		if n != 1 || got != tt.want {
			t.Errorf("%s%v: got %v in %d series, want %v in 1", tt.name, tt.labels, got, n, tt.want)
		}
	}
	for _, name := range []string{"portpatrol_probe_duration_seconds", "portpatrol_target_info", "portpatrol_probe_failures_total",
		"portpatrol_target_state", "portpatrol_target_flapping", "portpatrol_capacity_used", "portpatrol_tls_cert_expiry_timestamp_seconds"} {
		if mfs[name] != nil {
			t.Errorf("%s is exported by default; it belongs to per_target: full", name)
		}
	}
}

// per_target: full adds back every per-target series of earlier releases, with the
// same names, labels and values.
func TestMetricsFullSeries(t *testing.T) {
	m := fixture(t)
	m.SetFull(true)
	_, mfs, body := scrape(t, m.Handler(), "/metrics", "")
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"portpatrol_probe_duration_seconds", map[string]string{"target": db}, 4},
		{"portpatrol_probe_failures_total", map[string]string{"target": db, "class": "refused"}, 3},
		{"portpatrol_probe_failures_total", map[string]string{"target": db, "class": "overloaded"}, 1},
		{"portpatrol_target_state", map[string]string{"target": db, "state": "down"}, 1},
		{"portpatrol_target_state", map[string]string{"target": db, "state": "up"}, 0},
		{"portpatrol_target_state", map[string]string{"target": web, "state": "up"}, 1},
		{"portpatrol_target_flapping", map[string]string{"target": db}, 1},
		{"portpatrol_target_flapping", map[string]string{"target": web}, 0},
		{"portpatrol_target_info", map[string]string{"target": db, "scheme": "redis", "module": "redis_auth", "service": "db", "team": "data"}, 1},
		{"portpatrol_target_info", map[string]string{"target": fresh, "scheme": "tcp", "service": "", "team": ""}, 1},
		{"portpatrol_capacity_used", map[string]string{"target": db, "what": "clients"}, 10},
		{"portpatrol_capacity_limit", map[string]string{"target": db, "what": "clients"}, 10},
		{"portpatrol_tls_cert_expiry_timestamp_seconds", map[string]string{"target": shop}, 1800000000},
		{"portpatrol_probe_success", map[string]string{"target": db}, 0},
		{"portpatrol_target_state_code", map[string]string{"target": db}, 2},
	}
	for _, tt := range tests {
		got, n := value(mfs, tt.name, tt.labels)
		if n != 1 || got != tt.want {
			t.Errorf("%s%v: got %v in %d series, want %v in 1\n%s", tt.name, tt.labels, got, n, tt.want, body)
		}
	}
	// The histogram counts each result in its bucket: web's 0.3 ms and 2 ms.
	var got []string
	for _, mf := range mfs["portpatrol_probe_duration_seconds"].GetMetric() {
		if mf.Label[0].GetValue() != web {
			continue
		}
		for _, b := range mf.Histogram.Bucket {
			got = append(got, fmt.Sprintf("%g:%d", b.GetUpperBound(), b.GetCumulativeCount()))
		}
		if s := mf.Histogram.GetSampleSum(); s < 0.00229 || s > 0.00231 {
			t.Errorf("web's duration sum: got %v, want 0.0023", s)
		}
	}
	want := []string{"0.0005:1", "0.001:1", "0.0025:2", "0.005:2", "0.01:2", "0.025:2", "0.05:2", "0.1:2", "0.25:2", "0.5:2", "1:2", "2.5:2", "5:2", "10:2", "+Inf:2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("web's duration buckets (-want +got):\n%s", diff)
	}
	if n := len(perTarget(mfs)[web]); n != 3+17+3+1+1 {
		t.Errorf("web has %d series in full, want 25 (3 minimal, 17 histogram, 3 state, flapping, info)", n)
	}
	m.SetFull(false)
	if _, mfs, _ := scrape(t, m.Handler(), "/metrics", ""); mfs["portpatrol_target_info"] != nil {
		t.Errorf("portpatrol_target_info still exported after SetFull(false)")
	}
}

// /metrics/target serves every series of one target from what was recorded, whatever
// the mode of /metrics.
func TestMetricsTargetHandler(t *testing.T) {
	m := fixture(t)
	h := m.TargetHandler()
	q := func(target string) string { return "/metrics/target?target=" + url.QueryEscape(target) }
	tests := []struct {
		url  string
		code int
		want []string // families with a series of the target
	}{
		{q(db), 200, []string{"portpatrol_capacity_limit", "portpatrol_capacity_used", "portpatrol_probe_duration_seconds",
			"portpatrol_probe_failures_total", "portpatrol_probe_last_duration_seconds", "portpatrol_probe_success",
			"portpatrol_target_flapping", "portpatrol_target_info", "portpatrol_target_state", "portpatrol_target_state_code"}},
		{q("127.0.0.1:80"), 200, []string{"portpatrol_probe_duration_seconds", "portpatrol_probe_last_duration_seconds",
			"portpatrol_probe_success", "portpatrol_target_flapping", "portpatrol_target_info", "portpatrol_target_state",
			"portpatrol_target_state_code"}},
		{q(fresh), 200, []string{"portpatrol_target_info"}},
		{q("tcp://127.0.0.1:9"), 404, nil},
		{q("not a target"), 404, nil},
		{"/metrics/target", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			code, mfs, body := scrape(t, h, tt.url, "")
			if code != tt.code {
				t.Fatalf("got %d, want %d: %s", code, tt.code, body)
			}
			if code != 200 {
				return
			}
			var got []string
			for name, mf := range mfs {
				for _, s := range mf.Metric {
					if l := s.Label; len(l) > 0 && slices.ContainsFunc(l, func(p *dto.LabelPair) bool { return p.GetName() == "target" }) {
						got = append(got, name)
						break
					}
				}
				if len(mf.Metric) == 0 {
					t.Errorf("%s: a family without series", name)
				}
			}
			sort.Strings(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("families (-want +got):\n%s\n%s", diff, body)
			}
			if perT := perTarget(mfs); len(perT) != 1 {
				t.Errorf("series of %d targets, want 1: %v", len(perT), perT)
			}
		})
	}
}

// Removing a target removes its series; a target that stays keeps what was recorded.
func TestMetricsSetTargetsForgetsRemovedTargets(t *testing.T) {
	m := fixture(t)
	m.SetFull(true)
	m.SetTargets([]TargetInfo{{ID: db, Scheme: "redis", Module: "redis_auth", Labels: map[string]string{"service": "cache"}}})
	_, mfs, body := scrape(t, m.Handler(), "/metrics", "")
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range perTarget(mfs) {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, []string{db}) {
		t.Errorf("targets with series: got %v, want [%s]\n%s", got, db, body)
	}
	if got, _ := value(mfs, "portpatrol_probe_failures_total", map[string]string{"target": db, "class": "refused"}); got != 3 {
		t.Errorf("db's refused failures after the reload: got %v, want 3 (kept)", got)
	}
	if _, n := value(mfs, "portpatrol_target_info", map[string]string{"target": db, "service": "cache"}); n != 1 {
		t.Errorf("db's info does not carry its new label service=cache\n%s", body)
	}
	if got, _ := value(mfs, "portpatrol_targets", nil); got != 1 {
		t.Errorf("portpatrol_targets: got %v, want 1", got)
	}
	// A late result of a removed target counts in the totals only.
	m.Observe(&patrol.Result{Target: web, Class: patrol.ClassOK}, "tcp", patrol.StatusUp, false, 0)
	if _, mfs, _ := scrape(t, m.Handler(), "/metrics", ""); perTarget(mfs)[web] != nil {
		t.Errorf("a late result brought back the series of the removed target %s", web)
	}
}

// Target IDs are URLs and may hold quotes, backslashes or newlines; the exposition
// escapes them, so the label reads back as it was.
func TestMetricsEscapesLabelValues(t *testing.T) {
	odd := "http://h.test:80/a\"b\\c\nd"
	m := NewMetrics()
	m.SetFull(true)
	m.SetTargets([]TargetInfo{{ID: odd, Scheme: "http", Labels: map[string]string{"note": `say "hi"`}}})
	m.Observe(&patrol.Result{Target: odd, Class: patrol.ClassProtocol}, "http", patrol.StatusDown, false, 0)
	_, mfs, body := scrape(t, m.Handler(), "/metrics", "")
	for _, name := range []string{"portpatrol_probe_success", "portpatrol_target_info", "portpatrol_probe_failures_total"} {
		if _, n := value(mfs, name, map[string]string{"target": odd}); n != 1 {
			t.Errorf("%s: got %d series with the target label read back, want 1\n%s", name, n, body)
		}
	}
	if _, n := value(mfs, "portpatrol_target_info", map[string]string{"note": `say "hi"`}); n != 1 {
		t.Errorf("info label note does not read back\n%s", body)
	}
}

// Prometheus asks for gzip; the answer is the same exposition, compressed.
func TestMetricsGzip(t *testing.T) {
	m := fixture(t)
	for _, enc := range []string{"gzip", "deflate, gzip;q=0.5", "gzip;q=0", "identity"} {
		_, plain, _ := scrape(t, m.Handler(), "/metrics", "")
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", enc)
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, req)
		wantGzip := acceptsGzip(enc)
		if got := rec.Header().Get("Content-Encoding") == "gzip"; got != wantGzip {
			t.Errorf("%q: gzip %v, want %v", enc, got, wantGzip)
		}
		_, mfs, _ := scrape(t, m.Handler(), "/metrics", enc)
		if len(mfs) != len(plain) || mfs["portpatrol_probe_success"] == nil {
			t.Errorf("%q: %d families, want %d as without compression", enc, len(mfs), len(plain))
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"gzip, deflate", true},
		{"deflate, gzip;q=0.5", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"identity", false},
		{"xgzip", false},
	}
	for _, tt := range tests {
		if got := acceptsGzip(tt.header); got != tt.want {
			t.Errorf("acceptsGzip(%q): got %v, want %v", tt.header, got, tt.want)
		}
	}
}

// record.failures is an array sized by classCount: a new class must grow it, or its
// failures would not be counted per target.
func TestClassCountMatchesClasses(t *testing.T) {
	if got, want := classCount, len(patrol.Classes); got != want {
		t.Errorf("classCount: got %d, want len(patrol.Classes) = %d", got, want)
	}
}

// Every configured target has a row, so its size is memory per target at 100,000
// targets: 192 bytes is 19.2 MB (a row with its own label, scheme and module strings
// and observer was 256 bytes and a rendered label besides).
func TestRowSize(t *testing.T) {
	if got, limit := unsafe.Sizeof(row{}), uintptr(192); got > limit {
		t.Errorf("row: got %d bytes, want at most %d", got, limit)
	}
}

// Results, scrapes and reloads run at once in the daemon; -race checks the locking.
func TestMetricsConcurrentObserveScrapeReload(t *testing.T) {
	m := NewMetrics()
	ids := make([]TargetInfo, 3000)
	for i := range ids {
		ids[i] = TargetInfo{ID: fmt.Sprintf("tcp://127.0.0.%d:%d", i%250+1, 1000+i), Scheme: "tcp"}
	}
	m.SetTargets(ids)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; i < 20000; i += 2 {
				m.Observe(&patrol.Result{Target: ids[i%len(ids)].ID, Class: patrol.ClassOK}, "tcp", patrol.StatusUp, false, 0)
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			m.SetTargets(ids[:len(ids)-i%2*1000])
			m.SetFull(i%2 == 0)
		}
	})
	for range 5 {
		if _, mfs, _ := scrape(t, m.Handler(), "/metrics", "gzip"); mfs["portpatrol_targets"] == nil {
			t.Error("no portpatrol_targets")
		}
	}
	wg.Wait()
}

// discardWriter is an http.ResponseWriter that counts and drops the body.
type discardWriter struct {
	h http.Header
	n int64
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(b []byte) (int, error) { w.n += int64(len(b)); return len(b), nil }

// BenchmarkHandler measures the server's side of a /metrics scrape at 100,000 targets,
// without the network or a client (bench/metrics measures the whole scrape).
func BenchmarkHandler(b *testing.B) {
	m := NewMetrics()
	ts := make([]TargetInfo, 100000)
	for i := range ts {
		ts[i] = TargetInfo{ID: fmt.Sprintf("tcp://10.%d.%d.%d:%d", i>>16, i>>8&255, i&255, 8000+i%100), Scheme: "tcp",
			Labels: map[string]string{"service": fmt.Sprintf("svc-%d", i%500)}}
	}
	m.SetTargets(ts)
	for i, t := range ts {
		c := patrol.ClassOK
		if i%50 == 0 {
			c = patrol.ClassRefused
		}
		m.Observe(&patrol.Result{Target: t.ID, Class: c, Duration: time.Duration(i%5000) * time.Microsecond}, "tcp", patrol.StatusUp, false, 0)
	}
	for _, full := range []bool{false, true} {
		b.Run(fmt.Sprintf("full=%v", full), func(b *testing.B) {
			m.SetFull(full)
			h := m.Handler()
			req := httptest.NewRequest("GET", "/metrics", nil)
			var n int64
			for b.Loop() {
				w := &discardWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				n = w.n
			}
			b.ReportMetric(float64(n)/1e6, "MB/scrape")
		})
	}
}
