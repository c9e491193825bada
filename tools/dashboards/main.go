// Command dashboards generates portpatrol's Grafana dashboards (deploy/grafana/*.json)
// from Go with the Grafana Foundation SDK, whose typed builders keep the JSON
// schema-valid. `make dashboards` runs it; the JSON is committed, and this module's test
// checks it is what the generator writes, that every query parses as PromQL and that
// every metric it names is one portpatrol exports.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

func main() {
	out := flag.String("out", "deploy/grafana", "directory to write the dashboards into")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboards:", err)
		os.Exit(1)
	}
}

// write renders every dashboard into dir as NAME.json.
func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, b := range dashboards() {
		d, err := b.Build()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		j, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), append(j, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ds is every query's data source: the dashboard's $datasource variable.
var ds = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend).Datasource(ds)
}

func series(title, unit string, w uint32, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Unit(unit).Span(w).Height(8).Datasource(ds)
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

func single(title, unit string, w uint32, q *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Unit(unit).Span(w).Height(4).Datasource(ds).WithTarget(q.Instant())
}

// base is a dashboard with the data source variable and the common settings.
func base(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"portpatrol"}).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus"))
}

func targetVariable() *dashboard.QueryVariableBuilder {
	q := "label_values(portpatrol_probe_success, target)"
	return dashboard.NewQueryVariableBuilder("target").Label("Target").
		Datasource(ds).Query(dashboard.StringOrMap{String: &q}).Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).Multi(true).IncludeAll(true)
}

func dashboards() map[string]*dashboard.DashboardBuilder {
	return map[string]*dashboard.DashboardBuilder{
		"portpatrol-overview": base("portpatrol-overview", "portpatrol / Overview",
			"Fleet state, incidents by priority (P0 unreachable, P1 slow, P2 near a limit, P3 anomaly), probe latency and availability, and cluster mode's members, leader and results (the Cluster row needs cluster.url).").
			WithRow(dashboard.NewRowBuilder("Fleet")).
			WithPanel(single("Targets", "short", 4, query(`portpatrol_targets`, "targets"))).
			WithPanel(single("Up", "short", 4, query(`count(portpatrol_target_state_code == 0) or vector(0)`, "up"))).
			WithPanel(single("Down", "short", 4, query(`count(portpatrol_target_state_code == 2) or vector(0)`, "down"))).
			WithPanel(single("Unknown", "short", 4, query(`count(portpatrol_target_state_code == 1) or vector(0)`, "unknown"))).
			WithPanel(single("Firing incidents", "short", 8, query(`sum by (severity) (portpatrol_alerts{state="firing"})`, "{{severity}}"))).
			WithRow(dashboard.NewRowBuilder("Probes")).
			WithPanel(series("Failed probes by class", "reqps", 12,
				query(`sum by (class) (rate(portpatrol_probes_total{class!~"ok|slow"}[$__rate_interval]))`, "{{class}}"))).
			WithPanel(series("Probe latency p50 / p95 / p99 by scheme", "s", 12,
				query(`histogram_quantile(0.5, sum by (le, scheme) (rate(portpatrol_probes_duration_seconds_bucket[$__rate_interval])))`, "p50 {{scheme}}"),
				query(`histogram_quantile(0.95, sum by (le, scheme) (rate(portpatrol_probes_duration_seconds_bucket[$__rate_interval])))`, "p95 {{scheme}}"),
				query(`histogram_quantile(0.99, sum by (le, scheme) (rate(portpatrol_probes_duration_seconds_bucket[$__rate_interval])))`, "p99 {{scheme}}"))).
			WithPanel(heatmap.NewPanelBuilder().Title("Probe latency").Span(12).Height(8).Datasource(ds).
				WithTarget(query(`sum by (le) (increase(portpatrol_probes_duration_seconds_bucket[$__rate_interval]))`, "{{le}}").
					Format(prometheus.PromQueryFormatHeatmap))).
			WithPanel(series("Availability (share of successful probes over the range), lowest ten", "percentunit", 12,
				query(`bottomk(10, avg_over_time(portpatrol_probe_success[$__range]))`, "{{target}}"))).
			// Cluster mode (cluster.url): every member, serve or agent, exports these; the
			// panels are empty without it.
			WithRow(dashboard.NewRowBuilder("Cluster")).
			WithPanel(single("Members connected to NATS", "short", 6, query(`sum(portpatrol_cluster_connected) or vector(0)`, "connected"))).
			WithPanel(single("Members leading (1 is right)", "short", 6, query(`sum(portpatrol_cluster_leader) or vector(0)`, "leaders"))).
			WithPanel(single("Stream lag (results)", "short", 6, query(`max(portpatrol_cluster_stream_lag) or vector(0)`, "lag"))).
			WithPanel(single("Results dropped (range)", "short", 6, query(`sum(increase(portpatrol_cluster_results_dropped_total[$__range])) or vector(0)`, "dropped"))).
			WithPanel(series("Live members by location", "short", 12, query(`max by (location) (portpatrol_cluster_members)`, "{{location}}"))).
			WithPanel(series("Leader (1) and connected (1) by member", "short", 12,
				query(`portpatrol_cluster_leader`, "leader {{instance}}"),
				query(`portpatrol_cluster_connected`, "connected {{instance}}"))).
			WithPanel(series("Results published a second by member", "ops", 12,
				query(`rate(portpatrol_cluster_results_published_total[$__rate_interval])`, "{{instance}}"))).
			WithPanel(series("Stream lag, buffered and dropped results", "short", 12,
				query(`max(portpatrol_cluster_stream_lag)`, "stream lag (leader)"),
				query(`portpatrol_cluster_results_buffered`, "buffered {{instance}}"),
				query(`increase(portpatrol_cluster_results_dropped_total[$__rate_interval])`, "dropped {{instance}}"))).
			WithPanel(series("Assignment epoch by member", "short", 24, query(`portpatrol_cluster_epoch`, "{{instance}}"))),

		"portpatrol-target": base("portpatrol-target", "portpatrol / Target",
			"One target at a time: state, latency, failures by class, capacity used against its limit, certificate expiry. Failure classes, capacity and certificates need metrics.per_target: full.").
			WithVariable(targetVariable()).
			WithPanel(series("State (0 up, 1 unknown, 2 down)", "short", 12,
				query(`portpatrol_target_state_code{target=~"$target"}`, "{{target}}"))).
			WithPanel(series("Last probe duration", "s", 12,
				query(`portpatrol_probe_last_duration_seconds{target=~"$target"}`, "{{target}}"))).
			WithPanel(series("Success (1) or failure (0)", "short", 12,
				query(`portpatrol_probe_success{target=~"$target"}`, "{{target}}"))).
			WithPanel(series("Failures by class", "reqps", 12,
				query(`sum by (target, class) (rate(portpatrol_probe_failures_total{target=~"$target"}[$__rate_interval]))`, "{{target}} {{class}}"))).
			WithPanel(series("Capacity used / limit", "short", 12,
				query(`portpatrol_capacity_used{target=~"$target"}`, "used {{what}}"),
				query(`portpatrol_capacity_limit{target=~"$target"}`, "limit {{what}}"))).
			WithPanel(series("Certificate expires in", "s", 12,
				query(`portpatrol_tls_cert_expiry_timestamp_seconds{target=~"$target"} - time()`, "{{target}}"))),

		"portpatrol-host": base("portpatrol-host", "portpatrol / Host",
			"This host's listeners as the host watch sees them: accept queues against their backlog, connections, the owning processes' resources, and the kernel's listen overflows.").
			WithPanel(series("Listeners up", "short", 12, query(`portpatrol_listener_up`, "{{port}} {{process}}"))).
			WithPanel(series("Accept queue / backlog", "short", 12,
				query(`portpatrol_listener_accept_queue`, "queue {{port}}"),
				query(`portpatrol_listener_backlog`, "backlog {{port}}"))).
			WithPanel(series("Established connections", "short", 12, query(`portpatrol_listener_established`, "{{port}} {{process}}"))).
			WithPanel(series("Owner's open files / limit", "short", 12,
				query(`portpatrol_listener_process_open_fds`, "open {{process}}"),
				query(`portpatrol_listener_process_max_fds`, "max {{process}}"))).
			WithPanel(series("Owner's resident memory", "bytes", 12, query(`portpatrol_listener_process_resident_memory_bytes`, "{{process}}"))).
			WithPanel(series("Kernel listen overflows and drops", "ops", 12,
				query(`rate(portpatrol_host_listen_overflows_total[$__rate_interval])`, "overflows"),
				query(`rate(portpatrol_host_listen_drops_total[$__rate_interval])`, "drops"))),

		"portpatrol-alerting": base("portpatrol-alerting", "portpatrol / Alerting and outbox",
			"Incidents by state and priority, notifications through the durable outbox by receiver and outcome, silences, and the daemon's own health (scheduler lag, reloads, history writes).").
			WithPanel(series("Incidents by state and priority", "short", 12,
				query(`sum by (state, severity) (portpatrol_alerts)`, "{{state}} {{severity}}"))).
			WithPanel(series("Notifications by receiver and outcome", "ops", 12,
				query(`sum by (provider, outcome) (rate(portpatrol_notifications_total[$__rate_interval]))`, "{{provider}} {{outcome}}"))).
			WithPanel(series("Outbox backlog (enqueued − delivered, failed, expired since start)", "short", 12,
				query(`clamp_min(sum(portpatrol_notifications_total{outcome="enqueued"}) - (sum(portpatrol_notifications_total{outcome=~"delivered|failed|expired"}) or vector(0)), 0)`, "backlog"))).
			WithPanel(series("Silences and maintenance windows", "short", 12,
				query(`portpatrol_silences_active`, "silences"),
				query(`portpatrol_maintenance_windows_open`, "maintenance windows"))).
			WithPanel(series("Scheduler lag p99", "s", 12,
				query(`histogram_quantile(0.99, sum by (le) (rate(portpatrol_scheduler_lag_seconds_bucket[$__rate_interval])))`, "p99"))).
			WithPanel(series("Config reload successful; history writes", "short", 12,
				query(`portpatrol_config_last_reload_successful`, "last reload ok"),
				query(`sum by (outcome) (rate(portpatrol_history_results_total[$__rate_interval]))`, "history {{outcome}}"))),

		"portpatrol-security": base("portpatrol-security", "portpatrol / Security & automation",
			"Scheduled exposure audits (open findings by kind and severity), intrusion detection (scans and brute force by kind, active bans, whether conntrack and nftables work), portpatrol's self-checks, and the audit chain that records automation's and bans' decisions. Intrusion panels need intrusion.enabled; audit panels need audits: in the config.").
			WithRow(dashboard.NewRowBuilder("Audits")).
			WithPanel(single("Open audit findings", "short", 6, query(`sum(portpatrol_audit_findings) or vector(0)`, "findings"))).
			WithPanel(single("P0/P1 audit findings", "short", 6, query(`sum(portpatrol_audit_findings{severity=~"P0|P1"}) or vector(0)`, "P0/P1"))).
			WithPanel(single("Since each audit last completed", "s", 12,
				query(`time() - portpatrol_audit_last_success_timestamp_seconds`, "{{audit}}"))).
			WithPanel(series("Audit findings by audit, kind and severity", "short", 24,
				query(`sum by (audit, kind, severity) (portpatrol_audit_findings) > 0`, "{{audit}} {{kind}} {{severity}}"))).
			WithRow(dashboard.NewRowBuilder("Intrusion detection and bans")).
			WithPanel(single("Active bans", "short", 6, query(`portpatrol_bans_active`, "bans"))).
			WithPanel(single("Bans in dry run (1 yes)", "short", 6, query(`portpatrol_bans_dry_run`, "dry run"))).
			WithPanel(single("Sources tracked", "short", 6, query(`portpatrol_intrusion_sources_tracked`, "sources"))).
			WithPanel(single("Working (1) or not (0)", "short", 6, query(`portpatrol_intrusion_available`, "{{part}} {{reason}}"))).
			WithPanel(series("Scans and brute force detected by kind", "short", 12,
				query(`sum by (class, kind) (increase(portpatrol_scans_detected_total[$__rate_interval]))`, "{{class}} {{kind}}"))).
			WithPanel(series("Active bans", "short", 12, query(`portpatrol_bans_active`, "bans"))).
			WithPanel(series("Conntrack events read and overruns", "ops", 12,
				query(`rate(portpatrol_conntrack_events_total[$__rate_interval])`, "events"),
				query(`rate(portpatrol_conntrack_events_lost_total[$__rate_interval])`, "overruns"))).
			WithPanel(series("conntrack / nftables working (1) or not (0)", "short", 12,
				query(`portpatrol_intrusion_available`, "{{part}} {{reason}}"))).
			WithRow(dashboard.NewRowBuilder("Self-checks and automation")).
			WithPanel(single("Healthy (1) or not (0)", "short", 6, query(`portpatrol_self_healthy`, "healthy"))).
			WithPanel(single("Failing self-checks", "short", 6, query(`count(portpatrol_self_check == 0) or vector(0)`, "failing"))).
			WithPanel(single("Decisions in the audit chain", "short", 12, query(`portpatrol_audit_chain_entries`, "entries"))).
			WithPanel(series("Self-checks passing (1) or failing (0)", "short", 12, query(`portpatrol_self_check`, "{{check}}"))).
			WithPanel(series("Automation and ban decisions recorded", "short", 12,
				query(`delta(portpatrol_audit_chain_entries[$__rate_interval])`, "new entries"))),
	}
}
