package probe

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// promServer serves h at /metrics on a real loopback HTTP server and returns its
// host:port. Any other path is 404.
func promServer(t *testing.T, h http.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// goodExposition is what client_golang's own handler serves for a registry with a
// process collector and an "up" gauge.
func goodExposition(t *testing.T) http.Handler {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "up", Help: "Whether the service is up."})
	up.Set(1)
	reg.MustRegister(up)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "request_seconds", Help: "Request latency."})
	h.Observe(0.2)
	reg.MustRegister(h)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

func TestPrometheusGoodExposition(t *testing.T) {
	addr := promServer(t, goodExposition(t))
	res := runProbe(t, "prometheus://"+addr+"?require=up,process_start_time_seconds&require=request_seconds", Module{}, nil)
	wantResult(t, res, patrol.ClassOK)
	if res.HTTP == nil || res.HTTP.Status != 200 || !strings.HasSuffix(res.HTTP.FinalURL, "/metrics") {
		t.Errorf("got HTTP %+v, want a 200 from /metrics", res.HTTP)
	}
	if res.Details["metric_families"] == "" || res.Details["metric_families"] == "0" {
		t.Errorf("got details %v, want a count of metric families", res.Details)
	}
	// The module's require list works as the option does.
	res = runProbe(t, "prometheus://"+addr+"/metrics", Module{Prometheus: PrometheusModule{Require: []string{"up"}}}, nil)
	wantResult(t, res, patrol.ClassOK)
}

func TestPrometheusMissingMetric(t *testing.T) {
	addr := promServer(t, goodExposition(t))
	res := runProbe(t, "prometheus://"+addr+"?require=up,node_load1,http_requests_total", Module{}, nil)
	wantResult(t, res, patrol.ClassProtocol, "required metric missing", "node_load1, http_requests_total")
	if strings.Contains(res.Error, "up,") || strings.Contains(res.Error, " up ") {
		t.Errorf("error %q names up, which is present", res.Error)
	}
	res = runProbe(t, "prometheus://"+addr, Module{Prometheus: PrometheusModule{Require: []string{"go_goroutines"}}}, nil)
	wantResult(t, res, patrol.ClassProtocol, "go_goroutines")
}

func TestPrometheusBrokenExposition(t *testing.T) {
	cases := map[string]string{
		"unterminated label set": "# TYPE up gauge\nup{job=\"x\" 1\n",
		"value not a number":     "up 1\nprocess_start_time_seconds one\n",
		"HTML error page":        "<html><body>Service Unavailable</body></html>\n",
		"type after samples":     "up 1\n# TYPE up counter\n",
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			addr := promServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain; version=0.0.4")
				_, _ = io.WriteString(w, body)
			}))
			res := runProbe(t, "prometheus://"+addr, Module{}, nil)
			wantResult(t, res, patrol.ClassProtocol, "exposition does not parse", "line")
		})
	}
}

func TestPrometheusAsksForText(t *testing.T) {
	var accept string
	addr := promServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accept = r.Header.Get("Accept")
		_, _ = io.WriteString(w, "up 1\n")
	}))
	res := runProbe(t, "prometheus://"+addr+"?require=up", Module{}, nil)
	wantResult(t, res, patrol.ClassOK)
	if !strings.HasPrefix(accept, "text/plain;version=0.0.4") {
		t.Errorf("sent Accept %q, want the text format first", accept)
	}
}

func TestPrometheusHTTPFailures(t *testing.T) {
	addr := promServer(t, goodExposition(t))
	// The status rule still applies: a path that is not there is a 404.
	res := runProbe(t, "prometheus://"+addr+"/nothing", Module{}, nil)
	wantResult(t, res, patrol.ClassProtocol, "status 404")
	res = runProbe(t, "prometheus://"+closedTCPAddr(t), Module{}, nil)
	wantResult(t, res, patrol.ClassRefused)
}

func TestPrometheusRequireValidated(t *testing.T) {
	for _, target := range []string{
		"prometheus://127.0.0.1:9100?require=up,,x",
		"prometheus://127.0.0.1:9100?require=%00bad",
		"prometheus://127.0.0.1:9100?require=up,%FF",
	} {
		if err := buildErr(t, target, Module{}); err == nil || !strings.Contains(err.Error(), "prometheus require") {
			t.Errorf("%s: got %v, want a prometheus require error", target, err)
		}
	}
	if err := buildErr(t, "prometheus://127.0.0.1:9100", Module{Prometheus: PrometheusModule{Require: []string{" "}}}); err == nil {
		t.Error("an empty required name in the module was accepted")
	}
	if _, err := patrol.ParseTarget("prometheus://127.0.0.1"); err == nil || !strings.Contains(err.Error(), "missing port") {
		t.Errorf("prometheus target without a port: got %v, want missing port", err)
	}
}
