// Package config loads portpatrol's YAML configuration into a validated Config. Every
// error names file:line:column, the field path and what would be valid; unknown fields
// are rejected. Loading is pure: a caller that reloads keeps its old Config when Load
// fails.
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
	"github.com/portpatrol/portpatrol/internal/intrusion"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/scan"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// labelName is compiled on first use rather than at start-up.
var labelName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`) })

// Defaults applied where the file says nothing.
const (
	DefaultListen           = "127.0.0.1:9115"
	DefaultInterval         = 30 * time.Second
	DefaultTimeout          = 5 * time.Second
	DefaultFailureThreshold = 2
	DefaultSuccessThreshold = 1
)

// Source is the configuration as the user wrote it: the YAML fields and nothing
// computed from them, so two Sources compare equal exactly when the files say the same,
// the targets aside: Parse empties Targets once it has resolved them into
// Config.Checks, which hold everything a target said.
type Source struct {
	// Listen is the address of the HTTP server (metrics, /probe, API).
	Listen string `yaml:"listen"`
	// HostName names this host in every alert's host label, whatever names the source
	// gave it (127.0.0.1, localhost, an interface address); empty means the hostname.
	HostName  string                  `yaml:"host_name"`
	Defaults  TargetDefaults          `yaml:"defaults"`
	Scheduler Scheduler               `yaml:"scheduler"`
	Modules   map[string]probe.Module `yaml:"modules"`
	// ModulesFiles are blackbox_exporter configuration files whose modules are loaded
	// as they are, so an existing blackbox.yml keeps working.
	ModulesFiles []string `yaml:"modules_files"`
	// Targets are the targets as written. Parse resolves them into Config.Checks and
	// then sets Targets to nil: a daemon with 100,000 targets would otherwise keep the
	// list a second time (15 MB) for nothing.
	Targets []TargetConfig `yaml:"targets"`

	// Storage is where history, incidents, silences and the notification outbox are
	// kept: empty for SQLite in the data directory, a file path for SQLite elsewhere,
	// or a postgres:// DSN for state that several instances share.
	Storage   string    `yaml:"storage"`
	Retention Retention `yaml:"retention"`
	// Alerting configures the alert engine: rules, deadlines, escalation, grouping,
	// inhibition and maintenance windows. See docs/alerting.md.
	Alerting alert.Config `yaml:"alerting"`
	// Notify configures receivers and the durable outbox.
	Notify notify.Config `yaml:"notify"`
	API    API           `yaml:"api"`
	// Audits are exposure audits serve runs on a schedule; see docs/security.md.
	Audits []AuditConfig `yaml:"audits"`
	// HostWatch watches this host's own listening ports; it is on unless disabled.
	HostWatch HostWatch `yaml:"host_watch"`
	// Kubernetes discovers Services, EndpointSlices, NodePorts and Ingresses of a
	// cluster and probes every layer; see docs/kubernetes.md.
	Kubernetes Kubernetes `yaml:"kubernetes"`
	// Probe configures the /probe endpoint; see docs/security.md.
	Probe ProbeEndpoint `yaml:"probe"`
	// Metrics configures what /metrics exports and who may read it; see
	// docs/metrics.md.
	Metrics Metrics `yaml:"metrics"`
	// Status configures the public status page; see docs/status.md.
	Status Status `yaml:"status"`
	// Anomaly configures the learned-baseline anomaly detector; see docs/anomaly.md.
	Anomaly Anomaly `yaml:"anomaly"`
	// Automation configures remediation playbooks; off by default. See
	// docs/automation.md.
	Automation automation.Config `yaml:"automation"`
	// Intrusion configures scan and brute-force detection and bans; see
	// docs/security.md.
	Intrusion Intrusion `yaml:"intrusion"`
	// SelfCheck sets the limits of portpatrol's checks of itself; Heartbeat is its
	// dead man's switch. See docs/operations.md.
	SelfCheck SelfCheck `yaml:"self_check"`
	Heartbeat Heartbeat `yaml:"heartbeat"`
	// ChatOps answers commands from Slack and Mattermost; see docs/chatops.md.
	ChatOps ChatOps `yaml:"chatops"`
	// Cluster is cluster mode: targets shared by several processes over NATS
	// JetStream (docs/scale-out.md).
	Cluster Cluster `yaml:"cluster"`
}

// Config is a loaded, validated configuration: the Source as written, and what was
// resolved from it. Its fields shadow the Source fields of the same name with their
// resolved values (defaults applied, files loaded); cfg.Source holds what the file said.
// Its zero value is not valid; use Load, Parse or Default.
type Config struct {
	Source

	// Listen is Source.Listen, or DefaultListen.
	Listen string
	// HostName is Source.HostName, or os.Hostname; see HostLabel.
	HostName string
	// HostWatch is Source.HostWatch with ForgetAfter filled in; HostWatchIgnore is its
	// ignore list resolved, defaults included.
	HostWatch       HostWatch
	HostWatchIgnore hostwatch.Ignore
	// osHostName and localAddrs are this host's name and interface addresses at load
	// time, for HostLabel.
	osHostName string
	localAddrs []netip.Addr
	// Defaults are Source.Defaults with the default interval, timeout and thresholds
	// filled in.
	Defaults TargetDefaults
	// Modules are the built-in modules, then those of ModulesFiles, then those of
	// Source.Modules, by name.
	Modules map[string]probe.Module
	// Notify is Source.Notify with Dir set to the file's directory, for *_file paths.
	Notify notify.Config
	// Audits are the scheduled audits with their policies loaded.
	Audits []Audit
	// ProbeAllow are the networks of probe.allow, parsed; nil when it is not set,
	// and /probe then allows loopback and the configured targets' addresses.
	ProbeAllow []netip.Prefix
	// StatusLocation is the zone of status.timezone, loaded; UTC when it is not set.
	StatusLocation *time.Location
	// intrusionAllow is intrusion.allowlist parsed; see IntrusionAllow.
	intrusionAllow []intrusion.AllowRule
	// ChatOpsKeys are chatops' secrets, read from the file or inline.
	ChatOpsKeys ChatOpsKeys

	// Warnings are the settings read but not acted on (fields of blackbox_exporter's
	// module schema portpatrol does not honour yet), in file order; the config is
	// valid with them.
	Warnings []Warning

	// File is the path the config was loaded from, empty for Default.
	File string
	// Checks are the targets resolved against defaults and modules, in file order.
	Checks []Check
}

// Retention bounds stored history: raw results (default 48h), per-minute and
// per-hour rollups (default 90 days each).
type Retention struct {
	Raw    time.Duration `yaml:"raw"`
	Minute time.Duration `yaml:"minute"`
	Hour   time.Duration `yaml:"hour"`
}

// HostWatch configures the watch of this host's listeners: every listener is probed
// from the moment it is seen; one that has lived for LearnAfter becomes expected, and an
// expected one that disappears is a P0 within a second. The zero value is on, with the
// defaults.
type HostWatch struct {
	Disabled bool `yaml:"disabled"`
	// Interval between socket dumps (default 250ms).
	Interval time.Duration `yaml:"interval"`
	// LearnAfter is how long a listener must live to become expected (default 2m);
	// shorter-lived ones are learned, not paged.
	LearnAfter time.Duration `yaml:"learn_after"`
	// UDP watches UDP sockets too.
	UDP bool `yaml:"udp"`
	// ForgetAfter is how long a learned listener stays gone, its process exited and
	// not restarted, before it is retired: no longer probed, never paged again
	// (default 24h). Its one P0 is raised when it goes.
	ForgetAfter time.Duration `yaml:"forget_after"`
	// Ignore lists listeners never to learn.
	Ignore HostWatchIgnore `yaml:"ignore"`
}

// Kubernetes configures discovery in a cluster. The zero value is off.
type Kubernetes struct {
	Enabled bool `yaml:"enabled"`
	// Kubeconfig and Context pick the cluster; empty means $KUBECONFIG, then
	// ~/.kube/config, then the in-cluster service account.
	Kubeconfig string `yaml:"kubeconfig"`
	Context    string `yaml:"context"`
	// Namespace limits discovery to one namespace; Selector to the Services whose
	// labels match it ("team=payments,tier!=dev").
	Namespace string `yaml:"namespace"`
	Selector  string `yaml:"selector"`
	// NodeAddressType is the node address NodePort probes use (InternalIP by default).
	NodeAddressType string `yaml:"node_address_type"`
	// LeaderElection makes replicas elect one leader with a coordination.k8s.io Lease;
	// only the leader alerts, every replica probes and serves. On by default.
	LeaderElection *bool `yaml:"leader_election"`
	// LeaseNamespace holds the Lease; default $POD_NAMESPACE, else "default".
	LeaseNamespace string `yaml:"lease_namespace"`
}

// The values of Metrics.PerTarget.
const (
	PerTargetMinimal = "minimal"
	PerTargetFull    = "full"
)

// Metrics configures /metrics. The zero value exports the minimal per-target series to
// anyone who can reach the listen address.
type Metrics struct {
	// PerTarget is "minimal" (the default: success, last duration and state, three
	// series per target) or "full" (those plus every per-target series of earlier
	// releases: duration histograms, failures by class, state by name, flapping,
	// info, capacity, certificate expiry). /metrics/target serves the full set of one
	// target either way.
	PerTarget string `yaml:"per_target"`
	// RequireToken makes /metrics (and /metrics/target) need a token of the viewer
	// role or above, even from loopback with api.anonymous_read.
	RequireToken bool `yaml:"require_token"`
}

// AuditConfig schedules one exposure audit.
type AuditConfig struct {
	// Name identifies the audit in logs and alerts; default the policy's file name.
	Name string `yaml:"name"`
	// Policy is the policy file (relative to this file).
	Policy string `yaml:"policy"`
	// Interval is the time between runs (default 1h, at least 1s).
	Interval time.Duration `yaml:"interval"`
	// Targets limits the run to these of the policy's targets; empty means all.
	Targets []string `yaml:"targets"`
	// Allow lists the networks the scan may touch (default 127.0.0.0/8 and ::1/128).
	Allow []string `yaml:"allow"`
	// Rate caps connects per second (default 500).
	Rate float64 `yaml:"rate"`
}

// Audit is a scheduled audit resolved from its AuditConfig: defaults applied, policy
// loaded, networks parsed.
type Audit struct {
	// Name identifies the audit; the policy file's base name when none was given.
	Name string
	// PolicyFile is the policy path as written; Policy is the policy it holds.
	PolicyFile string
	Policy     *audit.Policy
	// Interval is the time between runs.
	Interval time.Duration
	// Targets limits the run to these of the policy's targets; empty means all.
	Targets []string
	// Allow are the networks the scan may touch.
	Allow []netip.Prefix
	// Rate caps connects per second.
	Rate float64
}

// ProbeEndpoint configures /probe. The zero value serves it on the main listener and
// lets it reach loopback and the configured targets' addresses only.
type ProbeEndpoint struct {
	// Allow lists the networks /probe may connect to (CIDRs or addresses); anything
	// else is refused with 403 before a packet is sent. Empty means 127.0.0.0/8,
	// ::1/128 and the addresses of the configured targets.
	Allow []string `yaml:"allow"`
	// Listen, when set, serves /probe, and nothing else, on this address of its own,
	// and takes it off the main listener: Prometheus can reach it there while the API
	// stays on loopback.
	Listen string `yaml:"listen"`
	// MaxInflightPerClient caps the /probe requests one client address may have in
	// flight (default 128): one Prometheus scrapes every blackbox-style target at once
	// from one address, so the API's per-client limit would be too tight here.
	MaxInflightPerClient int `yaml:"max_inflight_per_client"`
}

// DefaultProbeInflightPerClient is probe.max_inflight_per_client when unset.
const DefaultProbeInflightPerClient = 128

// API configures the HTTP API and dashboard on the listen address.
type API struct {
	// AnonymousRead lets requests from loopback addresses read without a token.
	AnonymousRead bool `yaml:"anonymous_read"`
	// TLSCertFile and TLSKeyFile serve HTTPS instead of HTTP.
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// Hosts are the names, besides the listen address's host and loopback, that
	// requests may carry in their Host header (no port); others are answered 421, so
	// a DNS-rebinding page cannot read the API. ["*"] turns the check off.
	Hosts []string `yaml:"hosts"`
	// MaxInflightPerClient caps the expensive requests (history, audits, /probe,
	// /metrics) one client address may have in flight on each of those routes;
	// default 8.
	MaxInflightPerClient int `yaml:"max_inflight_per_client"`
	// Socket is the local Unix socket on which root and the daemon's own user reach
	// the API as admin without a token, authorised by the peer's uid: empty means
	// portpatrol.sock in the data directory, "off" serves none, a relative path is
	// relative to the configuration file. Read at start; a reload keeps the old one.
	Socket string `yaml:"socket"`
}

// SocketOff is the api.socket value that serves no local socket.
const SocketOff = "off"

// TargetDefaults apply to every target that does not set its own value.
type TargetDefaults struct {
	Interval         time.Duration     `yaml:"interval"`
	Timeout          time.Duration     `yaml:"timeout"`
	Warn             WarnThreshold     `yaml:"warn"`
	FailureThreshold int               `yaml:"failure_threshold"`
	SuccessThreshold int               `yaml:"success_threshold"`
	Labels           map[string]string `yaml:"labels"`
}

// Scheduler tunes how probes are run.
type Scheduler struct {
	// Concurrency caps probes in flight (default 256); PerHost caps them per host
	// (default 8).
	Concurrency int `yaml:"concurrency"`
	PerHost     int `yaml:"per_host"`
	// FastConfirm re-checks at once after a first failure (default true).
	FastConfirm *bool `yaml:"fast_confirm"`
	// A target that changes state FlapChanges times within FlapWindow is flapping
	// (defaults 10m and 5).
	FlapWindow  time.Duration `yaml:"flap_window"`
	FlapChanges int           `yaml:"flap_changes"`
}

// TargetConfig is one entry of `targets:`.
type TargetConfig struct {
	// URL is the target: scheme://host:port[/path][?options], or host:port for tcp.
	URL  string `yaml:"url"`
	Name string `yaml:"name"`
	// Module names an entry of `modules:` or a built-in module.
	Module           string            `yaml:"module"`
	Interval         time.Duration     `yaml:"interval"`
	Timeout          time.Duration     `yaml:"timeout"`
	Warn             WarnThreshold     `yaml:"warn"`
	FailureThreshold int               `yaml:"failure_threshold"`
	SuccessThreshold int               `yaml:"success_threshold"`
	Labels           map[string]string `yaml:"labels"`
	// Username/Password (or PasswordFile) are credentials for protocol probes;
	// prefer ${ENV} or password_file to a password written inline.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Locations are the cluster locations that must watch the target (default every
	// location with a live member); Quorum is how many of them must see it down for
	// it to be down (default a majority). Both need cluster mode.
	Locations []string `yaml:"locations"`
	Quorum    int      `yaml:"quorum"`
}

// Check is a target resolved against defaults and its module: everything needed to
// build and schedule its probe.
type Check struct {
	Target patrol.Target
	Name   string
	// Module is the settings of the target's module, shared by every check of that
	// module (one value per module, not one per target: a module is kilobytes and a
	// configuration may hold a million checks); nil means the scheme's built-in
	// default. Treat it as read-only.
	Module           *probe.Module
	ModuleName       string
	FailureThreshold int
	SuccessThreshold int
	// AutoWarn is `warn: auto`: the target's slow threshold is learned from its own
	// baseline by the daemon's anomaly detector (Target.Warn is then zero).
	AutoWarn bool
	// Locations and Quorum are the target's placement in cluster mode: the locations
	// that must watch it (nil: all) and how many must agree it is down (0: a
	// majority).
	Locations []string
	Quorum    int
}

// BuiltinModules are the modules every config has, named as in blackbox_exporter's
// example config, plus one per portpatrol prober.
func BuiltinModules() map[string]probe.Module {
	m := map[string]probe.Module{
		"tcp_connect":   {Prober: "tcp"},
		"tls_connect":   {Prober: "tcp", TCP: probe.TCPModule{TLS: true}},
		"http_2xx":      {Prober: "http"},
		"http_post_2xx": {Prober: "http", HTTP: probe.HTTPModule{Method: "POST"}},
	}
	for name := range patrol.Schemes {
		if name == "https" {
			continue
		}
		if _, ok := m[name]; !ok {
			m[name] = probe.Module{Prober: name}
		}
	}
	return m
}

// Default returns the configuration used when no file is given.
func Default() *Config {
	c := &Config{Modules: BuiltinModules()}
	c.applyDefaults()
	c.resolveHost(func(string, string, ...any) {})
	return c
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, path)
}

// Parse validates YAML read from file (the name is used in errors and to resolve
// relative paths). The error, when not nil, is an *Errors.
func Parse(data []byte, file string) (*Config, error) {
	errs := &Errors{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, errEOF) {
			doc = yaml.Node{} // an empty file is an empty config
		} else {
			errs.addYAML(file, err)
			return nil, errs
		}
	}
	c := &Config{File: file}
	idx := index{}
	var bad badPaths
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		w := &walker{file: file, idx: idx, errs: errs, getenv: lookupEnv}
		w.walk(root, typeOfConfig, "")
		bad = w.bad
		// The walker nulled what it refused, so decoding goes on to every other field
		// and the checks below report their problems in the same run. yaml.v3 decodes
		// around a type error and lists them all in one *yaml.TypeError; any the walker
		// did not foresee are reported as they are, and checking goes on.
		if err := root.Decode(&c.Source); err != nil {
			errs.addYAML(file, err)
			var te *yaml.TypeError
			if !errors.As(err, &te) {
				return nil, errs
			}
		}
	}
	c.resolve(idx, bad, errs)
	if errs.Len() > 0 {
		return nil, errs
	}
	return c, nil
}

// applyDefaults sets the resolved Listen and Defaults from the Source and the defaults.
func (c *Config) applyDefaults() {
	c.Listen, c.Defaults = c.Source.Listen, c.Source.Defaults
	c.Defaults.Labels = maps.Clone(c.Source.Defaults.Labels)
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	// The learned-baseline detector replaces the alert engine's p95 anomaly rule.
	c.Alerting.Rules.Anomaly.Learned = c.Anomaly.On()
	d := &c.Defaults
	if d.Interval == 0 {
		d.Interval = DefaultInterval
	}
	if d.Timeout == 0 {
		d.Timeout = min(DefaultTimeout, d.Interval)
	}
	if d.FailureThreshold == 0 {
		d.FailureThreshold = DefaultFailureThreshold
	}
	if d.SuccessThreshold == 0 {
		d.SuccessThreshold = DefaultSuccessThreshold
	}
}

// resolve validates field values, loads module files and builds Checks. It is the one
// place a configuration is judged: serve, reload and config check all load through it,
// so whatever the daemon would refuse later (the scheduler, a probe, the listener) is
// refused here, with its position. Errors about fields in bad (which the walker could
// not read) are left out.
func (c *Config) resolve(idx index, bad badPaths, errs *Errors) {
	at := func(path, format string, args ...any) {
		if bad.covers(path) {
			return
		}
		n := idx.near(path)
		errs.add(c.File, n.Line, n.Column, path, fmt.Sprintf(format, args...))
	}
	defaultsOK := c.resolveDefaults(at, bad)
	// Probes are built, not run: the Env only opens the half-open prober, for
	// handshake=half to fail here as it would in the daemon. Closing it cannot fail a
	// configuration, so its error is dropped.
	env := new(probe.Env)
	defer func() { _ = env.Close() }()
	c.resolveModules(at, idx, env)
	c.resolveAnomaly(at)
	c.resolveAlerting(at)
	c.resolveAudits(at)
	c.resolveProbe(at)
	c.resolveStatus(at)
	c.resolveAutomation(at)
	c.resolveHost(at)
	c.resolveIntrusion(at, idx)
	c.resolveHeartbeat(at)
	c.resolveChatOps(at)
	c.resolveCluster(at)
	c.checkSections(at)
	seen := make(map[string]int, len(c.Targets))
	sh := shared{modules: map[string]*probe.Module{}, labels: map[string]map[string]string{}, zero: new(probe.Module)}
	c.Checks = make([]Check, 0, len(c.Targets))
	for i, tc := range c.Targets {
		c.resolveTarget(at, bad, env, defaultsOK, seen, sh, i, tc)
	}
	c.Targets = nil
}

// resolveDefaults applies the defaults and checks listen, defaults and scheduler. It
// reports whether the default interval and timeout were read and are valid, so a target
// is not also blamed for them.
func (c *Config) resolveDefaults(at func(path, format string, args ...any), bad badPaths) bool {
	c.applyDefaults()
	if msg := listenProblem(c.Listen); msg != "" {
		at("listen", "%s", msg)
	}
	sd := c.Source.Defaults
	okInterval := checkPeriod(at, "defaults.interval", sd.Interval)
	okTimeout := checkPeriod(at, "defaults.timeout", sd.Timeout)
	checkNotNegative(at, "defaults.warn", sd.Warn.Duration)
	d := c.Defaults
	if okInterval && okTimeout && !bad["defaults.interval"] && d.Timeout > d.Interval {
		at("defaults.timeout", "timeout %s is longer than the interval %s", d.Timeout, d.Interval)
	}
	for _, p := range []struct {
		path string
		v    int
	}{{"defaults.failure_threshold", d.FailureThreshold}, {"defaults.success_threshold", d.SuccessThreshold},
		{"scheduler.concurrency", c.Scheduler.Concurrency}, {"scheduler.per_host", c.Scheduler.PerHost},
		{"scheduler.flap_changes", c.Scheduler.FlapChanges}} {
		if p.v < 0 {
			at(p.path, "must not be negative, got %d", p.v)
		}
	}
	// The scheduler sizes its work queue by concurrency: an absurd value would take the
	// memory at start instead of failing.
	if c.Scheduler.Concurrency > MaxConcurrency {
		at("scheduler.concurrency", "must be at most %d, got %d", MaxConcurrency, c.Scheduler.Concurrency)
	}
	checkNotNegative(at, "scheduler.flap_window", c.Scheduler.FlapWindow)

	checkLabels(d.Labels, "defaults.labels", at)
	return okInterval && okTimeout && !bad["defaults.interval"]
}

// resolveModules loads the modules of modules_files and checks those of modules, over
// the built-in ones.
func (c *Config) resolveModules(at func(path, format string, args ...any), idx index, env *probe.Env) {
	modules := BuiltinModules()
	for i, f := range c.ModulesFiles {
		path := f
		if !filepath.IsAbs(path) && c.File != "" {
			path = filepath.Join(filepath.Dir(c.File), path)
		}
		mods, warns, err := LoadBlackboxModules(path)
		if err != nil {
			at(fmt.Sprintf("modules_files[%d]", i), "%v", err)
			continue
		}
		c.Warnings = append(c.Warnings, warns...)
		for k, v := range mods {
			modules[k] = v
		}
	}
	var own []Warning
	for _, k := range sortedKeys(c.Source.Modules) {
		m := c.Source.Modules[k]
		own = append(own, checkBlackboxModule(at, c.File, idx, "modules."+k, m, env)...)
		modules[k] = m
	}
	c.Warnings = append(c.Warnings, sortWarnings(own)...)
	c.Modules = modules

}

// checkSections checks host_watch, kubernetes and metrics.
func (c *Config) checkSections(at func(path, format string, args ...any)) {
	if c.HostWatch.Interval < 0 || (c.HostWatch.Interval > 0 && c.HostWatch.Interval < 50*time.Millisecond) {
		at("host_watch.interval", "must be at least 50ms, got %s", c.HostWatch.Interval)
	}
	switch c.Kubernetes.NodeAddressType {
	case "", "InternalIP", "ExternalIP", "Hostname", "InternalDNS", "ExternalDNS":
	default:
		at("kubernetes.node_address_type", "%q: want InternalIP, ExternalIP, Hostname, InternalDNS or ExternalDNS", c.Kubernetes.NodeAddressType)
	}
	if c.HostWatch.LearnAfter < 0 {
		at("host_watch.learn_after", "must not be negative, got %s", c.HostWatch.LearnAfter)
	}
	if c.Kubernetes.Selector != "" {
		if _, err := labels.Parse(c.Kubernetes.Selector); err != nil {
			at("kubernetes.selector", "%q: %v", c.Kubernetes.Selector, err)
		}
	}
	switch c.Metrics.PerTarget {
	case "", PerTargetMinimal, PerTargetFull:
	default:
		at("metrics.per_target", "%q: want minimal or full", c.Metrics.PerTarget)
	}
}

// resolveTarget checks targets[i] and, when it builds, appends its Check. seen maps the
// target IDs resolved so far to their index; sh holds what the checks share.
func (c *Config) resolveTarget(at func(path, format string, args ...any), bad badPaths, env *probe.Env, defaultsOK bool,
	seen map[string]int, sh shared, i int, tc TargetConfig) {
	d := c.Defaults
	p := fmt.Sprintf("targets[%d]", i)
	// Checked first: a target whose url is wrong still has its other fields judged.
	okI, okT := checkPeriod(at, p+".interval", tc.Interval), checkPeriod(at, p+".timeout", tc.Timeout)
	checkNotNegative(at, p+".warn", tc.Warn.Duration)
	if tc.Warn.Auto && !c.Anomaly.On() {
		at(p+".warn", "warn: auto learns the threshold with the anomaly detector, which anomaly.enabled turns off; give a duration or enable it")
	}
	checkLabels(tc.Labels, p+".labels", at)
	checkPlacement(at, p, tc)
	for _, th := range []struct {
		field string
		v     int
	}{{"failure_threshold", tc.FailureThreshold}, {"success_threshold", tc.SuccessThreshold}} {
		if th.v < 0 {
			at(p+"."+th.field, "must not be negative, got %d", th.v)
		}
	}
	if tc.URL == "" {
		at(p, "missing url (e.g. url: tcp://10.0.0.5:6379)")
		return
	}
	t, err := patrol.ParseTarget(tc.URL)
	if err != nil {
		at(p+".url", "%s", err.(*patrol.TargetError).Reason)
		return
	}
	if tc.Username != "" || tc.Password != "" || tc.PasswordFile != "" {
		user := tc.Username
		if user == "" && t.User != nil {
			user = t.User.Username()
		}
		pass := tc.Password
		if tc.PasswordFile != "" {
			if tc.Password != "" {
				at(p+".password_file", "give password or password_file, not both")
			}
			pf := tc.PasswordFile
			if !filepath.IsAbs(pf) && c.File != "" {
				pf = filepath.Join(filepath.Dir(c.File), pf)
			}
			b, err := os.ReadFile(pf)
			if err != nil {
				at(p+".password_file", "%v", err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		}
		t = withCredentials(t, user, pass)
	}
	if tc.Module != "" {
		// One address may be checked by several modules; the module keeps their
		// IDs apart ("#" cannot occur in a parsed target).
		t.ID += "#" + tc.Module
	}
	if j, dup := seen[t.ID]; dup {
		at(p+".url", "target %s is already defined at targets[%d]", t.ID, j)
		return
	}
	seen[t.ID] = i
	t.Interval = pick(tc.Interval, d.Interval)
	t.Timeout = pick(tc.Timeout, min(d.Timeout, t.Interval))
	warn := tc.Warn
	if warn == (WarnThreshold{}) {
		warn = d.Warn
	}
	t.Warn = warn.Duration
	// A timeout over an interval that is itself wrong, or was not read, would be
	// a second error for one mistake.
	if okI && okT && defaultsOK && !bad[p+".interval"] && t.Timeout > t.Interval {
		at(p+".timeout", "timeout %s is longer than the interval %s", t.Timeout, t.Interval)
	}
	t.Labels = sh.intern(mergeLabels(d.Labels, tc.Labels))
	t.Module = tc.Module
	var m *probe.Module
	if tc.Module != "" {
		if m = sh.modules[tc.Module]; m == nil {
			mm, ok := c.Modules[tc.Module]
			if !ok {
				at(p+".module", "unknown module %q; defined: %s", tc.Module, strings.Join(sortedKeys(c.Modules), ", "))
				return
			}
			m = &mm
			sh.modules[tc.Module] = m
		}
	}
	pm := m
	if pm == nil {
		pm = sh.zero
	}
	if _, err := probe.NewShared(t, pm, env); err != nil {
		at(p, "%v", err)
		return
	}
	c.Checks = append(c.Checks, Check{
		Target:           t,
		Name:             tc.Name,
		Module:           m,
		ModuleName:       tc.Module,
		FailureThreshold: pickInt(tc.FailureThreshold, d.FailureThreshold),
		SuccessThreshold: pickInt(tc.SuccessThreshold, d.SuccessThreshold),
		AutoWarn:         warn.Auto,
		Locations:        tc.Locations,
		Quorum:           tc.Quorum,
	})
}

// ModuleOf returns the module m points to, or the zero Module (the scheme's built-in
// default) when m is nil, as in a Check without a module.
func ModuleOf(m *probe.Module) probe.Module {
	if m == nil {
		return probe.Module{}
	}
	return *m
}

// MaxConcurrency is the largest scheduler.concurrency a configuration may ask for.
const MaxConcurrency = 1 << 16

// checkPeriod reports an interval or timeout the scheduler cannot run: negative, or
// shorter than schedule.MinInterval. Zero means the default and is fine. It returns
// whether v is usable.
func checkPeriod(at func(path, format string, args ...any), path string, v time.Duration) bool {
	switch {
	case v < 0:
		at(path, "must not be negative, got %s", v)
		return false
	case v > 0 && v < schedule.MinInterval:
		at(path, "must be at least %s, got %s", schedule.MinInterval, v)
		return false
	}
	return true
}

// checkNotNegative reports a negative duration where zero means off or the default.
func checkNotNegative(at func(path, format string, args ...any), path string, v time.Duration) {
	if v < 0 {
		at(path, "must not be negative, got %s", v)
	}
}

// listenProblem says what is wrong with a listen address, or returns "" when
// net.Listen could take it: host:port with a numeric port, and a host that is empty
// (every address), an IP address or a host name. Whether a name resolves, or the port
// is free, is known only when serve starts.
func listenProblem(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (e.g. 127.0.0.1:9115)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return fmt.Sprintf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" || isHostName(host) {
		return ""
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Sprintf("%q: host %q is not an IP address or a host name", addr, host)
	}
	return ""
}

// isHostName reports whether s is a DNS name by RFC 1123: dot-separated labels of
// letters, digits and inner hyphens, and a last label that is not all digits, so a
// mistyped IPv4 address such as 999.1.1.1 is not taken for a name.
func isHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	parts := strings.Split(s, ".")
	for _, l := range parts {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	last := parts[len(parts)-1]
	return strings.Trim(last, "0123456789") != ""
}

// checkModule builds m against a sample target of its prober, so a bad setting is
// reported at load even when no target uses the module yet.
func checkModule(m probe.Module, env *probe.Env) error {
	u := m.Prober + "://127.0.0.1:1"
	if patrol.Portless(m.Prober) {
		u = m.Prober + "://127.0.0.1"
	}
	if m.Prober == "http" {
		u += "/"
	}
	t, err := patrol.ParseTarget(u)
	if err != nil {
		return nil // a prober without a scheme of its own: checked where it is used
	}
	_, err = probe.New(t, m, env)
	var se *probe.SetupError
	if errors.As(err, &se) {
		return se.Err // without the sample target's ID
	}
	return err
}

// reservedLabels are label names portpatrol's own metrics use.
var reservedLabels = map[string]bool{"target": true, "scheme": true, "name": true, "module": true, "class": true, "state": true, "instance": true, "job": true}

func checkLabels(ls map[string]string, path string, at func(path, format string, args ...any)) {
	for _, k := range sortedKeys(ls) {
		switch {
		case !labelName().MatchString(k) || strings.HasPrefix(k, "__"):
			at(path+"."+k, "%q is not a valid label name; use letters, digits and _ (not starting with a digit or __)", k)
		case reservedLabels[k]:
			at(path+"."+k, "label %q is reserved for portpatrol's own use; pick another name", k)
		}
	}
}

func pick(v, def time.Duration) time.Duration {
	if v != 0 {
		return v
	}
	return def
}

func pickInt(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

// shared holds the values the checks of one configuration share instead of each
// keeping a copy: at a million targets, a module per check would be gigabytes, and a
// fleet's targets carry a few label sets over and over. Shared values are read-only.
type shared struct {
	modules map[string]*probe.Module     // by module name
	labels  map[string]map[string]string // by labelsKey
	zero    *probe.Module                // the built-in default, for the probes checked here
}

// intern returns the map of sh equal to m, adding m if there is none.
func (sh shared) intern(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	k := labelsKey(m)
	if v, ok := sh.labels[k]; ok {
		return v
	}
	sh.labels[k] = m
	return m
}

// labelsKey is a label set in one string, sorted by name, with lengths so no two sets
// share a key.
func labelsKey(m map[string]string) string {
	keys := sortedKeys(m)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(strconv.Itoa(len(k)))
		b.WriteByte(':')
		b.WriteString(k)
		b.WriteString(strconv.Itoa(len(m[k])))
		b.WriteByte(':')
		b.WriteString(m[k])
	}
	return b.String()
}

func mergeLabels(a, b map[string]string) map[string]string {
	if len(a)+len(b) == 0 {
		return nil
	}
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func proberList() []string {
	var out []string
	for _, n := range patrol.SchemeNames() {
		if probe.Supported(n) {
			out = append(out, n)
		}
	}
	return out
}

// resolveAlerting validates the storage, alerting and notify sections, and that every
// receiver an escalation names exists.
func (c *Config) resolveAlerting(at func(path, format string, args ...any)) {
	if (c.API.TLSCertFile == "") != (c.API.TLSKeyFile == "") {
		at("api", "tls_cert_file and tls_key_file go together")
	} else if c.API.TLSCertFile != "" {
		c.checkKeyPair(at)
	}
	c.checkAPI(at)
	for _, r := range []struct {
		path string
		v    time.Duration
	}{{"retention.raw", c.Retention.Raw}, {"retention.minute", c.Retention.Minute}, {"retention.hour", c.Retention.Hour}} {
		if r.v < 0 {
			at(r.path, "must not be negative, got %s", r.v)
		}
	}
	c.Notify = c.Source.Notify
	if c.File != "" {
		c.Notify.Dir = filepath.Dir(c.File)
	}
	for _, err := range unjoin(c.Alerting.Validate()) {
		var ce *alert.ConfigError
		if errors.As(err, &ce) {
			at("alerting."+ce.Field, "%s", ce.Reason)
		} else {
			at("alerting", "%v", err)
		}
	}
	if _, err := notify.New(c.Notify, &notify.MemStore{}, nil); err != nil {
		for _, e := range unjoin(err) {
			var fe *notify.FieldError
			if errors.As(e, &fe) {
				at("notify."+fe.Path, "%s", fe.Msg)
			} else {
				at("notify", "%v", e)
			}
		}
	}
	known := map[string]bool{}
	for _, r := range c.Source.Notify.Receivers {
		known[r.Name] = true
	}
	if c.Alerting.Escalations == nil && len(known) > 0 && !known[alert.DefaultReceiver] {
		at("notify.receivers", "with no alerting.escalations, alerts go to the receiver named %q; name one receiver %q or configure alerting.escalations",
			alert.DefaultReceiver, alert.DefaultReceiver)
	}
	for _, name := range sortedKeys(c.Alerting.Escalations) {
		for i, step := range c.Alerting.Escalations[name] {
			for j, r := range step.Receivers {
				if !known[r] {
					at(fmt.Sprintf("alerting.escalations.%s[%d].receivers[%d]", name, i, j),
						"no receiver named %q under notify.receivers; defined: %s", r, strings.Join(sortedKeys(known), ", "))
				}
			}
		}
	}
	for _, aud := range sortedKeys(c.Alerting.Impact.Receivers) {
		for j, r := range c.Alerting.Impact.Receivers[aud] {
			if !known[r] {
				at(fmt.Sprintf("alerting.impact.receivers.%s[%d]", aud, j),
					"no receiver named %q under notify.receivers; defined: %s", r, strings.Join(sortedKeys(known), ", "))
			}
		}
	}
}

// unjoin flattens an errors.Join tree.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// resolveAudits loads every scheduled audit's policy and checks its settings.
func (c *Config) resolveAudits(at func(path, format string, args ...any)) {
	names := map[string]int{}
	for i, ac := range c.Source.Audits {
		p := fmt.Sprintf("audits[%d]", i)
		if ac.Policy == "" {
			at(p, "missing policy (the path of a port policy file)")
			continue
		}
		path := ac.Policy
		if !filepath.IsAbs(path) && c.File != "" {
			path = filepath.Join(filepath.Dir(c.File), path)
		}
		pol, err := audit.Load(path)
		if err != nil {
			at(p+".policy", "%v", err)
			continue
		}
		a := Audit{Name: ac.Name, PolicyFile: ac.Policy, Policy: pol, Interval: ac.Interval, Targets: ac.Targets, Rate: ac.Rate}
		if a.Name == "" {
			a.Name = strings.TrimSuffix(filepath.Base(ac.Policy), filepath.Ext(ac.Policy))
		}
		if j, dup := names[a.Name]; dup {
			at(p+".name", "audit %q is already defined at audits[%d]", a.Name, j)
		}
		names[a.Name] = i
		switch {
		case a.Interval == 0:
			a.Interval = time.Hour
		case a.Interval < time.Second:
			at(p+".interval", "must be at least 1s, got %s", a.Interval)
		}
		if a.Rate < 0 {
			at(p+".rate", "must not be negative, got %v", a.Rate)
		} else if a.Rate == 0 {
			a.Rate = 500
		}
		allow := ac.Allow
		if len(allow) == 0 {
			allow = []string{"127.0.0.0/8", "::1/128"}
		}
		if a.Allow, err = scan.ParseAllow(allow); err != nil {
			at(p+".allow", "%v", err)
		}
		for j, tg := range a.Targets {
			if !pol.Names(tg) {
				at(fmt.Sprintf("%s.targets[%d]", p, j), "the policy %s does not name %q; it names: %s", ac.Policy, tg, strings.Join(pol.Targets(), ", "))
			}
		}
		c.Audits = append(c.Audits, a)
	}
}

// resolveProbe checks the probe section and parses its networks.
func (c *Config) resolveProbe(at func(path, format string, args ...any)) {
	p := c.Source.Probe
	if p.MaxInflightPerClient < 0 {
		at("probe.max_inflight_per_client", "must not be negative, got %d", p.MaxInflightPerClient)
	}
	if p.Listen != "" {
		if _, _, err := net.SplitHostPort(p.Listen); err != nil {
			at("probe.listen", "%q is not host:port (e.g. 0.0.0.0:9116)", p.Listen)
		} else if p.Listen == c.Listen {
			at("probe.listen", "%q is the main listen address; give /probe an address of its own, or leave probe.listen out", p.Listen)
		}
	}
	if len(p.Allow) > 0 {
		allow, err := scan.ParseAllow(p.Allow)
		if err != nil {
			at("probe.allow", "%v", err)
		}
		c.ProbeAllow = allow
	}
}

// checkKeyPair loads the API's certificate and key as serve will, from the paths as
// written, so a missing or mismatched file is refused here rather than when the
// listener starts.
func (c *Config) checkKeyPair(at func(path, format string, args ...any)) {
	cert, err := os.ReadFile(c.API.TLSCertFile)
	if err != nil {
		at("api.tls_cert_file", "%v", err)
	}
	key, kerr := os.ReadFile(c.API.TLSKeyFile)
	if kerr != nil {
		at("api.tls_key_file", "%v", kerr)
	}
	if err != nil || kerr != nil {
		return
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		at("api.tls_cert_file", "with tls_key_file %s: %v", c.API.TLSKeyFile, err)
	}
}
