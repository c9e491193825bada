package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// The metric names and labels must be blackbox_exporter's, so dashboards and alert
// rules written for it keep working.
func TestResultCollectorSpeaksBlackbox(t *testing.T) {
	expiry := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	res := patrol.Result{Target: "https://shop.test:443/", Class: patrol.ClassOK, Duration: 120 * time.Millisecond,
		RemoteAddr: "127.0.0.1:443",
		Phases: []patrol.Phase{{Name: "dns", Duration: 2 * time.Millisecond}, {Name: "connect", Duration: 3 * time.Millisecond},
			{Name: "tls", Duration: 40 * time.Millisecond}, {Name: "processing", Duration: 70 * time.Millisecond}, {Name: "transfer", Duration: 5 * time.Millisecond}},
		HTTP: &patrol.HTTPInfo{Status: 200, Proto: "HTTP/1.1", ContentLength: 12, BodyLength: 12},
		TLS:  &patrol.TLSInfo{Version: "TLS 1.3", EarliestExpiry: expiry},
	}
	want := `
# HELP probe_http_duration_seconds Duration of http request by phase, summed over all redirects
# TYPE probe_http_duration_seconds gauge
probe_http_duration_seconds{phase="connect"} 0.003
probe_http_duration_seconds{phase="processing"} 0.07
probe_http_duration_seconds{phase="resolve"} 0.002
probe_http_duration_seconds{phase="tls"} 0.04
probe_http_duration_seconds{phase="transfer"} 0.005
# HELP probe_http_status_code Response HTTP status code
# TYPE probe_http_status_code gauge
probe_http_status_code 200
# HELP probe_http_version Returns the version of HTTP of the probe response
# TYPE probe_http_version gauge
probe_http_version 1.1
# HELP probe_ssl_earliest_cert_expiry Returns last SSL chain expiry in unixtime
# TYPE probe_ssl_earliest_cert_expiry gauge
probe_ssl_earliest_cert_expiry 1.798859045e+09
# HELP probe_success Displays whether or not the probe was a success
# TYPE probe_success gauge
probe_success 1
# HELP probe_ip_protocol Specifies whether probe ip protocol is IP4 or IP6
# TYPE probe_ip_protocol gauge
probe_ip_protocol 4
# HELP probe_tls_version_info Returns the TLS version used or NaN when unknown
# TYPE probe_tls_version_info gauge
probe_tls_version_info{version="TLS 1.3"} 1
`
	c := &resultCollector{res: res, prober: "http"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "probe_success", "probe_http_duration_seconds",
		"probe_http_status_code", "probe_http_version", "probe_ssl_earliest_cert_expiry", "probe_ip_protocol", "probe_tls_version_info"); err != nil {
		t.Error(err)
	}
}

func TestResultCollectorFailureAndCapacity(t *testing.T) {
	res := patrol.Result{Target: "redis://127.0.0.1:6379", Class: patrol.ClassOverloaded, Error: "max number of clients reached",
		Capacity: &patrol.Capacity{What: "clients", Used: 10, Limit: 10}}
	want := `
# HELP portpatrol_probe_capacity_limit The server's limit for them
# TYPE portpatrol_probe_capacity_limit gauge
portpatrol_probe_capacity_limit{what="clients"} 10
# HELP portpatrol_probe_class The class of the probe's result (1 for the class that applies)
# TYPE portpatrol_probe_class gauge
portpatrol_probe_class{class="overloaded"} 1
# HELP probe_success Displays whether or not the probe was a success
# TYPE probe_success gauge
probe_success 0
`
	c := &resultCollector{res: res, prober: "redis"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "probe_success", "portpatrol_probe_class", "portpatrol_probe_capacity_limit"); err != nil {
		t.Error(err)
	}
}

func TestTargetForReadsTargetsAsBlackboxDoes(t *testing.T) {
	tests := []struct {
		raw    string
		module probe.Module
		want   string
	}{
		{"127.0.0.1:22", probe.Module{Prober: "tcp"}, "tcp://127.0.0.1:22"},
		{"127.0.0.1:443", probe.Module{Prober: "tcp", TCP: probe.TCPModule{TLS: true}}, "tls://127.0.0.1:443"},
		{"https://shop.test/healthz", probe.Module{Prober: "http"}, "https://shop.test:443/healthz"},
		{"127.0.0.1:6379", probe.Module{Prober: "redis"}, "redis://127.0.0.1:6379"},
		{"127.0.0.1:53", probe.Module{Prober: "dns"}, "dns://127.0.0.1:53"},
	}
	for _, tt := range tests {
		got, err := TargetFor(tt.raw, tt.module)
		if err != nil || got.ID != tt.want {
			t.Errorf("TargetFor(%q, %s) = %q, %v; want %q", tt.raw, tt.module.Prober, got.ID, err, tt.want)
		}
	}
}
