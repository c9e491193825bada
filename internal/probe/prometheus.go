package probe

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// PrometheusModule configures the prometheus prober: a scrape of a metrics endpoint
// as Prometheus itself would do it. The module's http section (headers, basic_auth,
// bearer token, tls_config, body_size_limit…) applies to the request as for http.
type PrometheusModule struct {
	// Require names metric families the exposition must contain, each with at least
	// one sample: up, process_start_time_seconds. A histogram or summary is named by
	// its family name, without _bucket, _sum or _count.
	Require []string `yaml:"require"`
	// TLS scrapes over HTTPS.
	TLS bool `yaml:"tls"`
}

// prometheusDefaultPath is where a target without a path is scraped.
const prometheusDefaultPath = "/metrics"

// prometheusAccept asks for the text exposition format, the one the parser reads.
const prometheusAccept = "text/plain;version=0.0.4;q=1,*/*;q=0.1"

// exposition is what a prometheus probe requires of the scraped body.
type exposition struct {
	require []string
}

// newPrometheus builds the prometheus prober (prometheus://host:port[/path]): an
// HTTP GET of /metrics by default, whose body must parse with the Prometheus text
// exposition parser and contain every required metric. Query options: require
// (comma-separated, repeatable), tls, and the http prober's own.
func newPrometheus(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	req := append([]string(nil), m.Prometheus.Require...)
	for _, v := range q.strings("require") {
		req = append(req, strings.Split(v, ",")...)
	}
	seen := map[string]bool{}
	var names []string
	for _, n := range req {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, fmt.Errorf("prometheus require: empty metric name in %q", strings.Join(req, ","))
		}
		if !model.UTF8Validation.IsValidMetricName(n) || strings.IndexFunc(n, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("prometheus require: %q is not a valid metric name", n)
		}
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	useTLS := m.Prometheus.TLS
	if v, ok := q.bool("tls"); ok {
		useTLS = v
	}
	ht := t
	ht.Scheme = "http"
	if useTLS {
		ht.Scheme = "https"
	}
	if ht.Path == "" {
		ht.Path = prometheusDefaultPath
	}
	p, err := buildHTTP(ht, m, env, q)
	if err != nil {
		return nil, err
	}
	if p.header.Get("Accept") == "" {
		p.header.Set("Accept", prometheusAccept)
	}
	p.expo = &exposition{require: names}
	return func(ctx context.Context, res *patrol.Result) { p.run(ctx, env, res) }, nil
}

// check parses body as a text exposition and applies the requirements. truncated
// says the body was cut at the read limit.
func (e *exposition) check(resp *http.Response, body []byte, truncated bool, res *patrol.Result) {
	if truncated {
		res.Fail(patrol.ClassProtocol, "exposition larger than the %d-byte read limit; raise http.body_size_limit", defaultBodyRead)
		return
	}
	if f := expfmt.ResponseFormat(resp.Header); f.FormatType() == expfmt.TypeProtoDelim {
		res.Fail(patrol.ClassProtocol, "the server sent the protobuf format (%s) although text was asked for", clip(resp.Header.Get("Content-Type")))
		return
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		res.Fail(patrol.ClassProtocol, "exposition does not parse: %s", clip(err.Error()))
		return
	}
	samples := 0
	for _, mf := range families {
		samples += len(mf.GetMetric())
	}
	res.SetDetail("metric_families", strconv.Itoa(len(families)))
	res.SetDetail("samples", strconv.Itoa(samples))
	var missing []string
	for _, n := range e.require {
		if len(families[n].GetMetric()) == 0 {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		res.Fail(patrol.ClassProtocol, "required metric missing from the exposition: %s (%d families scraped)", strings.Join(missing, ", "), len(families))
	}
}
