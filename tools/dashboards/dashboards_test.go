package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

const committed = "../../deploy/grafana"

// TestCommittedDashboardsAreGenerated: deploy/grafana is what `make dashboards` writes.
func TestCommittedDashboardsAreGenerated(t *testing.T) {
	dir := t.TempDir()
	if err := write(dir); err != nil {
		t.Fatal(err)
	}
	got, _ := filepath.Glob(filepath.Join(committed, "*.json"))
	want, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(got) != len(want) {
		t.Fatalf("deploy/grafana has %d dashboards, the generator writes %d: run make dashboards", len(got), len(want))
	}
	for _, w := range want {
		a, _ := os.ReadFile(w)
		b, err := os.ReadFile(filepath.Join(committed, filepath.Base(w)))
		if err != nil || string(a) != string(b) {
			t.Errorf("deploy/grafana/%s differs from the generator's: run make dashboards", filepath.Base(w))
		}
	}
}

// grafanaMacros stand in for the variables Grafana replaces before a query reaches
// Prometheus.
var grafanaMacros = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h", "$target", "tcp://x:1")

// queries returns every PromQL expression and variable definition of the committed
// dashboards, by dashboard.
func queries(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	err := filepath.WalkDir(committed, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var v struct {
			Panels []struct {
				Targets []struct{ Expr string } `json:"targets"`
			} `json:"panels"`
			Templating struct {
				List []struct{ Type, Definition string } `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		name := filepath.Base(path)
		for _, p := range v.Panels {
			for _, q := range p.Targets {
				out[name] = append(out[name], q.Expr)
			}
		}
		for _, l := range v.Templating.List {
			if l.Type == "query" {
				// label_values(METRIC, LABEL) is Grafana's; the metric in it is PromQL.
				m := regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`).FindStringSubmatch(l.Definition)
				if m == nil {
					return fmt.Errorf("%s: variable query %q", path, l.Definition)
				}
				out[name] = append(out[name], m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 5 {
		t.Fatalf("found queries in %d dashboards, want 5", len(out))
	}
	return out
}

// metricNames parses expr with Prometheus's own parser and returns the metric names it
// selects.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaMacros.Replace(expr))
	if err != nil {
		t.Errorf("query %q does not parse: %v", expr, err)
		return nil
	}
	var names []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	if len(names) == 0 {
		t.Errorf("query %q names no metric", expr)
	}
	return names
}

// needData are metrics portpatrol exports only once there is something to count, which
// a daemon just started on this machine may not have: notifications sent, capacity of a
// Redis/MySQL/PostgreSQL target, a TLS certificate. Each must still be
// named in portpatrol's exporter source.
var needData = map[string]string{
	"portpatrol_notifications_total":                    "a notification sent",
	"portpatrol_capacity_used":                          "a Redis, MySQL or PostgreSQL target",
	"portpatrol_capacity_limit":                         "a Redis, MySQL or PostgreSQL target",
	"portpatrol_tls_cert_expiry_timestamp_seconds":      "a TLS target",
	"portpatrol_probe_failures_total":                   "a failed probe",
	"portpatrol_alerts":                                 "an alert",
	"portpatrol_listener_process_open_fds":              "a listener whose owner is readable",
	"portpatrol_listener_process_max_fds":               "a listener whose owner is readable",
	"portpatrol_listener_process_resident_memory_bytes": "a listener whose owner is readable",
	// intrusion.enabled would make a table in this host's nftables; not from a test.
	"portpatrol_scans_detected_total":        "intrusion.enabled and a scan detected",
	"portpatrol_bans_active":                 "intrusion.enabled",
	"portpatrol_bans_dry_run":                "intrusion.enabled",
	"portpatrol_intrusion_sources_tracked":   "intrusion.enabled",
	"portpatrol_intrusion_available":         "intrusion.enabled",
	"portpatrol_conntrack_events_total":      "intrusion.enabled",
	"portpatrol_conntrack_events_lost_total": "intrusion.enabled",
}

// TestDashboardQueriesParseAndNameExportedMetrics runs portpatrol with every per-target
// metric on, probing its own port and a closed one, and checks every metric a dashboard queries is on its
// /metrics (or, for those that need data, in the exporter's source).
func TestDashboardQueriesParseAndNameExportedMetrics(t *testing.T) {
	all := queries(t)
	exported := scrape(t)
	source := exporterSource(t)
	for dash, qs := range all {
		for _, q := range qs {
			for _, name := range metricNames(t, q) {
				base := name
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(name, s); ok && exported[b] {
						base = b
					}
				}
				switch {
				case exported[name] || exported[base]:
				case needData[name] != "" && source[name]:
					t.Logf("%s: %s is exported with %s; this daemon has none", dash, name, needData[name])
				default:
					t.Errorf("%s queries %s, which portpatrol's /metrics does not have", dash, name)
				}
			}
		}
	}
}

// scrape starts portpatrol, built from this checkout, and returns the metric names on
// its /metrics (families from # TYPE lines, and samples).
func scrape(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "portpatrol")
	if out, err := exec.Command("go", "build", "-C", "../..", "-o", bin, "./cmd/portpatrol").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A second, closed port: refused probes, so failures by class and an alert.
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := cl.Addr().String()
	cl.Close()
	// An audit of this host that allows nothing: portpatrol's own port is a finding.
	_, port, _ := net.SplitHostPort(addr)
	policy := fmt.Sprintf("scan: {ports: \"%s\"}\nhosts:\n  - match: 127.0.0.1\n    allow: []\n", port)
	if err := os.WriteFile(filepath.Join(dir, "ports.yaml"), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "portpatrol.yaml")
	body := fmt.Sprintf("listen: %s\nmetrics: {per_target: full}\ndefaults: {interval: 1s, timeout: 1s}\ntargets:\n  - url: tcp://%s\n  - url: tcp://%s\n"+
		"audits:\n  - {name: local, policy: ports.yaml, interval: 1s, targets: [127.0.0.1]}\n", addr, addr, closed)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", conf, "--data-dir", filepath.Join(dir, "data"))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	names := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	ready := func() bool {
		return names["portpatrol_probe_success"] && names["portpatrol_alerts"] && names["portpatrol_audit_findings"]
	}
	for time.Now().Before(deadline) && !ready() {
		time.Sleep(200 * time.Millisecond)
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
				names[strings.Fields(f)[0]] = true
			} else if line != "" && line[0] != '#' {
				names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
			}
		}
		resp.Body.Close()
	}
	if !ready() {
		t.Fatalf("portpatrol's /metrics on %s has no probe results, alerts or audit findings after 30s; its log:\n%s", addr, logs.String())
	}
	maps.Copy(names, scrapeCluster(t, bin, dir))
	return names
}

// scrapeCluster starts a NATS server with JetStream (built from the nats-server module
// portpatrol's own tests use) and portpatrol in cluster mode on it, and returns the
// metric names on that member's /metrics once it is connected and leads.
func scrapeCluster(t *testing.T, bin, dir string) map[string]bool {
	t.Helper()
	nats := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-C", "../..", "-o", nats, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("go build nats-server: %v\n%s", err, out)
	}
	natsAddr, addr := freeAddr(t), freeAddr(t)
	host, port, _ := net.SplitHostPort(natsAddr)
	srv := exec.Command(nats, "-a", host, "-p", port, "-js", "-sd", filepath.Join(dir, "jetstream"))
	var natsLog strings.Builder
	srv.Stderr = &natsLog
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	conf := filepath.Join(dir, "cluster.yaml")
	body := fmt.Sprintf("listen: %s\ncluster: {url: nats://%s, location: eu-1}\ndefaults: {interval: 1s, timeout: 1s}\ntargets:\n  - url: tcp://%s\n", addr, natsAddr, addr)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", conf, "--data-dir", filepath.Join(dir, "cluster-data"))
	var logs strings.Builder
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var names map[string]bool
	ready := func() bool {
		return names["portpatrol_cluster_connected"] && names["portpatrol_cluster_leader"] && names["portpatrol_cluster_members"]
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !ready(); {
		time.Sleep(200 * time.Millisecond)
		names = metricsAt(t, "http://"+addr+"/metrics")
	}
	if !ready() {
		t.Fatalf("portpatrol in cluster mode on %s has no cluster metrics after 30s; its log:\n%s\nnats-server's:\n%s", addr, logs.String(), natsLog.String())
	}
	return names
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// metricsAt returns the metric names on one scrape of url (families from # TYPE lines,
// and samples); none when it does not answer.
func metricsAt(t *testing.T, url string) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	resp, err := http.Get(url)
	if err != nil {
		return names
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			names[strings.Fields(f)[0]] = true
		} else if line != "" && line[0] != '#' {
			names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
	}
	return names
}

// exporterSource is every "portpatrol_…" string literal in portpatrol's non-test Go code.
func exporterSource(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	lit := regexp.MustCompile(`"(portpatrol_[a-z_]+)"`)
	err := filepath.WalkDir("../../internal", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		for _, m := range lit.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}
