// Package daemon is portpatrol's long-running process as a library: New builds every
// part from a resolved configuration (storage, scheduler, probes, alert engine,
// notification outbox, host watch, Kubernetes discovery, audits, the status page and
// the HTTP endpoints), Run runs them until its context ends, Reload swaps in a new
// configuration whole or not at all, and Close releases what New opened.
// cmd/portpatrol's serve command is a thin shell around it: flags, signals, a listener.
//
// Time comes from an injected Clock, so tests drive alert ticks, audits, compaction,
// orphan resolution and leadership on fake time.
package daemon

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/chatops"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/exporter"
	"github.com/portpatrol/portpatrol/internal/hostwatch"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/status"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/web"
)

// Clock is the daemon's source of time for its periodic work: alert ticks, audits,
// compaction, status history, orphan resolution and the outbox. Implementations must be
// safe for concurrent use. Probe deadlines and the scheduler follow the system clock.
type Clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives every d and a function that stops it.
	NewTicker(d time.Duration) (c <-chan time.Time, stop func())
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Config is what New needs besides the configuration file. The zero value runs on
// config.Default with the SQLite store in the default data directory.
type Config struct {
	// Path is the configuration file that ReloadFile re-reads; empty means the daemon
	// runs on Config (or config.Default) and a reload request has nothing to read.
	Path string
	// Config is the resolved configuration to start with; nil means load Path, or
	// config.Default when Path is empty.
	Config *config.Config
	// Store, when set, is used instead of opening the configured storage, and Close
	// leaves it open: replicas in one process share it as they would share PostgreSQL.
	Store Store
	// DataDir holds the SQLite store when the configuration names no storage, and the
	// local socket when api.socket names none; empty means store.DefaultDataDir (with
	// Store set and DataDir empty, no socket is served unless api.socket names one).
	DataDir string
	// Logger receives the daemon's log; nil discards it.
	Logger *slog.Logger
	// Clock is the time source; nil means the system clock.
	Clock Clock
	// KubeClient replaces the cluster connection that kubernetes.enabled opens; nil
	// means connect as the configuration says.
	KubeClient kube.API
	// ProbeEnv is what probes dial and resolve with, and owns what they share (the
	// half-open sockets, the connect poller); nil means a new zero Env. The daemon
	// closes it in Close.
	ProbeEnv *probe.Env
	// OrphanDelay is how long after Run starts the alerts of targets no longer
	// scheduled are resolved (default 2m, so discovery can bring its targets back).
	OrphanDelay time.Duration
	// Version is announced to the cluster in cluster mode.
	Version string
	// Cluster's non-zero URL, Name and Location override the configuration's cluster
	// section, at start and on every reload (serve --cluster, --location, --name).
	Cluster config.Cluster
	// AuditLog receives automation's decisions; nil means the store's hash chain
	// (AuditLog()), or the log when the store keeps none.
	AuditLog auditlog.Recorder
}

// Daemon is a running portpatrol. Build it with New, run it with Run, close it with
// Close; its methods are safe for concurrent use.
type Daemon struct {
	path    string
	logger  *slog.Logger
	clock   Clock
	metrics *exporter.Metrics
	sched   *schedule.Scheduler
	gen     atomic.Pointer[generation]
	ready   atomic.Bool
	// mu serialises reloads, leadership changes and re-applies of discovered targets.
	mu sync.Mutex

	db       Store
	dbName   string
	sharedDB bool // db was given in Config.Store: Close leaves it open
	batch    *store.BatchWriter
	alerts   atomic.Pointer[alert.Engine] // replaced on reload and when this replica becomes leader
	// leading is false while another replica holds the Kubernetes leader Lease: then
	// this one probes and serves, but raises no alerts.
	leading atomic.Bool
	// engineMu is held for reading around every call that changes the alert engine's
	// state, and for writing while the engine is rebuilt and replaced, so no change to
	// the old engine lands after the new one has loaded the store.
	engineMu sync.RWMutex
	// runCtx is Run's context, nil before Run; workers started by a reload use it.
	runCtx context.Context
	// stopNotifier ends the running dispatcher; notifierDone is closed when it has
	// returned. Both are set by runNotifier, under mu.
	stopNotifier context.CancelFunc
	notifierDone chan struct{}
	scheduled    map[string]bool // target IDs on the scheduler, as of the last apply; resultMu
	orphanDelay  time.Duration
	changeLog    *burstLog // target state changes: INFO up to a limit a minute, then DEBUG
	broker       *api.Broker
	probeEnv     *probe.Env       // the probes' shared sockets and pollers; Close closes it
	watch        *hostwatch.Watch // nil when host_watch is disabled
	hw           hostWiring       // the host watch's targets as of the last plan
	anomalies    *anomalyFeeder   // nil when anomaly.enabled is false
	self         *selfChecker     // portpatrol's checks of itself
	reserve      *diskReserve     // space kept beside a SQLite store for a full disk
	kube         *kubeWiring      // nil unless kubernetes.enabled
	automation   *automationWiring
	diag         diagnoser        // diagnoses P0 unreachable alerts in the background
	intrusion    *intrusionWiring // nil unless intrusion.enabled
	cluster      *clusterWiring   // nil unless cluster.url is set
	// clusterOverride is Config.Cluster, applied to every configuration loaded.
	clusterOverride config.Cluster
	status          *status.Page
	httpLimits      httpLimits // the HTTP server's timeouts; tests shorten them
	dataDir         string     // Config.DataDir: where the local socket goes by default
	// resultMu guards scheduled: a change of it (before the alerts of removed targets are
	// resolved) waits for a result being observed, which reads it.
	resultMu sync.RWMutex
	// diskUsage reads the store's file system (forecast.go); nil means statfs.
	diskUsage func(dir string) (used, limit float64, err error)
	closeOnce sync.Once
	workers   sync.WaitGroup // goroutines Run started
	// scrapeEnv is where /probe runs, with its allowlist; Close closes it.
	scrapeEnv *probe.Env
	probeNets atomic.Pointer[probeNets] // /probe's allowlist, for the running configuration
	// ctx lives as long as the daemon; Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	// auditLog is the chain of automation decisions, nil when the store keeps none.
	auditLog *auditlog.Log
}

// generation is everything built from one configuration that a reload replaces as a
// whole: the configuration itself, the dispatcher and the alert engine's dependencies
// (which send to that dispatcher), and the scheduled audits. Readers load it once and
// use its parts together, so no caller mixes a running configuration with another.
type generation struct {
	cfg      *config.Config
	notifier *notify.Dispatcher
	deps     alert.Deps
	audits   []*auditRunner
}

// New loads the configuration and opens everything the daemon keeps. Close it.
func New(c Config) (_ *Daemon, err error) {
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	clock := c.Clock
	if clock == nil {
		clock = systemClock{}
	}
	cfg := c.Config
	if cfg == nil {
		cfg = config.Default()
		if c.Path != "" {
			if cfg, err = config.Load(c.Path); err != nil {
				return nil, err
			}
		}
	}
	if err := overrideCluster(cfg, c.Cluster); err != nil {
		return nil, err
	}
	logWarnings(logger, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	d := &Daemon{path: c.Path, logger: logger, clusterOverride: c.Cluster, clock: clock, metrics: exporter.NewMetrics(), probeEnv: c.ProbeEnv,
		orphanDelay: c.OrphanDelay, httpLimits: defaultHTTPLimits, dataDir: c.DataDir, ctx: ctx, cancel: cancel}
	if d.probeEnv == nil {
		d.probeEnv = new(probe.Env)
	}
	d.scrapeEnv = d.newScrapeEnv(d.probeEnv)
	if d.orphanDelay <= 0 {
		d.orphanDelay = 2 * time.Minute
	}
	d.changeLog = &burstLog{logger: logger, limit: changesLoggedPerMinute}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if c.Store != nil {
		d.db, d.dbName, d.sharedDB = c.Store, "shared", true
	} else if d.db, d.dbName, err = openStore(ctx, cfg, c.DataDir, logger); err != nil {
		return nil, err
	}
	d.broker = api.NewBroker(api.BrokerConfig{})
	d.auditLog = d.newAuditLog()
	rec := c.AuditLog
	if rec == nil && d.auditLog != nil {
		rec = d.auditLog // automation's decisions go into the store's hash chain
	}
	if d.automation, err = newAutomation(d, cfg, rec); err != nil {
		return nil, err
	}
	gen, err := d.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	eng, err := alert.New(ctx, cfg.Alerting, gen.deps)
	if err != nil {
		return nil, err
	}
	d.alerts.Store(eng)
	d.gen.Store(gen)
	d.leading.Store(true)
	d.anomalies = d.startAnomalies(ctx, cfg)
	if d.status, err = newStatusPage(ctx, d); err != nil {
		return nil, err
	}
	d.batch = store.NewBatchWriter(d.db, store.BatchConfig{Logger: logger.With("component", "history"), Hold: historyHold})
	d.hw.identity.Store(cfg)
	d.metrics.Registry.MustRegister(&engineCollector{alerts: d.engine, notifier: func() *notify.Dispatcher { return d.gen.Load().notifier }, batch: d.batch})
	d.self = newSelfChecker(d, cfg.SelfCheck)
	d.reserve = newDiskReserve(d.dbName)
	d.metrics.Registry.MustRegister(d.self)
	d.metrics.Registry.MustRegister(auditCollector{d})
	if !cfg.HostWatch.Disabled {
		d.watch = d.newWatch(cfg)
		d.metrics.Registry.MustRegister(d.watch.Collector())
	}
	d.intrusion = d.newIntrusion(cfg)
	if cfg.Kubernetes.Enabled {
		if d.kube, err = newKubeWiring(d, cfg.Kubernetes, c.KubeClient); err != nil {
			return nil, err
		}
		if d.kube.leaderElection() {
			d.leading.Store(false) // until elected
		}
	}
	if cfg.Cluster.On() {
		if d.cluster, err = newClusterWiring(d, cfg, c.Version); err != nil {
			return nil, err
		}
		d.leading.Store(false) // until this member holds the alerting lease
	}
	d.sched = schedule.New(schedule.Config{
		Concurrency:   cfg.Scheduler.Concurrency,
		PerHost:       cfg.Scheduler.PerHost,
		NoFastConfirm: cfg.Scheduler.FastConfirm != nil && !*cfg.Scheduler.FastConfirm,
		FlapWindow:    cfg.Scheduler.FlapWindow,
		FlapChanges:   cfg.Scheduler.FlapChanges,
		OnResult:      d.onResult,
		Logger:        logger,
	})
	p, err := d.plan(cfg)
	if err != nil {
		return nil, err
	}
	if err := d.sched.Update(p.jobs); err != nil {
		return nil, err
	}
	d.commitPlan(p)
	d.metrics.ConfigLoaded(true, d.clock.Now())
	if len(cfg.Checks) == 0 {
		if d.watch != nil {
			logger.Info("no targets configured: watching this host's own listeners; add targets with -c FILE (see docs/config.md)")
		} else {
			logger.Info("no targets configured and host_watch disabled: probing nothing on a schedule; /probe works on demand")
		}
	}
	if len(gen.notifier.Receivers()) == 0 {
		logger.Info("no notification receivers configured: alerts are kept and shown by the API only (see docs/alerting.md)")
	}
	return d, nil
}

// Close flushes history and closes storage. It is safe to call more than once; a
// result that arrives after it is refused by the closed history writer, not lost in a
// crash.
func (d *Daemon) Close() error {
	var err error
	d.closeOnce.Do(func() {
		if d.cluster != nil {
			// Leave first: the other members take this one's share at once.
			if e := d.cluster.node.Close(); e != nil {
				err = fmt.Errorf("leave the cluster: %w", e)
			}
		}
		if d.batch != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if e := d.batch.Close(ctx); e != nil {
				err = errors.Join(err, fmt.Errorf("flush history: %w", e))
			}
			cancel()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = errors.Join(err, d.flushAlerts(ctx))
		err = errors.Join(err, d.saveAnomalies(ctx, d.clock.Now()))
		cancel()
		d.cancel()
		if d.watch != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if e := d.watch.Close(ctx); e != nil {
				err = errors.Join(err, e)
			}
			cancel()
		}
		d.intrusion.close()
		// After Run, whose scheduler and HTTP server are done with the probes.
		if e := errors.Join(d.probeEnv.Close(), d.scrapeEnv.Close()); e != nil {
			err = errors.Join(err, fmt.Errorf("close the probe environment: %w", e))
		}
		if d.db != nil && !d.sharedDB {
			if e := d.db.Close(); e != nil {
				err = errors.Join(err, fmt.Errorf("close storage: %w", e))
			}
		}
	})
	return err
}

// Listen is the address the configuration asks to serve on.
func (d *Daemon) Listen() string { return d.cfg().Listen }

// Storage describes where state is kept, for logs; it never includes a password.
func (d *Daemon) Storage() string { return d.dbName }

func (d *Daemon) cfg() *config.Config { return d.gen.Load().cfg }

// engine returns the alert engine.
func (d *Daemon) engine() *alert.Engine { return d.alerts.Load() }

// withEngine calls f with the alert engine, never while the engine is being replaced.
func (d *Daemon) withEngine(f func(*alert.Engine) error) error {
	d.engineMu.RLock()
	defer d.engineMu.RUnlock()
	return f(d.alerts.Load())
}

// observeFinding raises or clears a finding, if this replica leads.
func (d *Daemon) observeFinding(ctx context.Context, f patrol.Finding) error {
	if !d.leading.Load() {
		return nil
	}
	return d.withEngine(func(e *alert.Engine) error { return e.ObserveFinding(ctx, f) })
}

// build makes the parts of a generation for cfg: the dispatcher, the alert engine's
// dependencies and the audit runners. Parts whose configuration did not change since
// prev are carried over, so a reload that only edits targets keeps the running
// dispatcher, and an unchanged audit keeps its state. Nothing runs until the
// generation is started.
func (d *Daemon) build(cfg *config.Config, prev *generation) (*generation, error) {
	g := &generation{cfg: cfg}
	if prev != nil && sameAlerting(prev.cfg, cfg) {
		g.notifier, g.deps = prev.notifier, prev.deps
	} else {
		ncfg := cfg.Notify
		ncfg.Outbox.Logger = d.logger.With("component", "notify")
		n, err := notify.New(ncfg, d.db, d.clock)
		if err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		// Replicas and cluster members share a PostgreSQL outbox: only the one that
		// leads delivers, so no notification goes out twice.
		n.Standby(func() bool { return !d.leading.Load() })
		g.notifier = n
		sink := &triedSink{next: &routedSink{next: n, known: n.Receivers(), logger: d.logger}, w: func() *automationWiring { return d.automation }}
		g.deps = alert.Deps{Sink: sink, Store: d.db, Now: d.clock.Now,
			OnChange: d.publishAlert}
	}
	g.audits = d.buildAudits(cfg, prev)
	return g, nil
}

// publishAlert tells the event stream of a change of an alert; the alert engine calls
// it (alert.Deps.OnChange).
func (d *Daemon) publishAlert(a patrol.Alert) {
	if err := d.broker.PublishAlert(a); err != nil {
		d.logger.Debug("publish alert change", "alert", a.ID, "err", err)
	}
	d.automation.observe(a)
	d.considerDiagnosis(a)
}

// swapEngine makes eng the alert engine; the caller holds engineMu for writing. The
// event stream is told every alert of the new engine, which may hold what the old one
// did not (a new leader's engine loads what the old leader saved); nothing changes the
// new engine before the swap is done, so no later change is published before these.
func (d *Daemon) swapEngine(eng *alert.Engine) {
	d.alerts.Store(eng)
	for _, a := range eng.List(alert.Filter{States: patrol.AlertStates}) {
		d.publishAlert(a)
	}
}

// sameAlerting reports whether the alerting and notify sections of two configurations
// agree, so their dispatcher and engine can be shared.
func sameAlerting(a, b *config.Config) bool {
	return !changed(a.Alerting, b.Alerting) && !changed(a.Notify, b.Notify)
}

// start runs the generation's dispatcher and audits until Run's context ends; the
// caller holds mu.
func (d *Daemon) start(g *generation) {
	d.runNotifier(g.notifier)
	for _, r := range g.audits {
		d.spawn(func() { r.run(d.runCtx) })
	}
}

// runNotifier runs n until Run's context ends or a reload replaces it; the caller
// holds mu.
func (d *Daemon) runNotifier(n *notify.Dispatcher) {
	ctx, cancel := context.WithCancel(d.runCtx)
	done := make(chan struct{})
	d.stopNotifier, d.notifierDone = cancel, done
	d.spawn(func() {
		defer close(done)
		if err := n.Run(ctx); err != nil && ctx.Err() == nil {
			d.logger.Error("notification dispatcher stopped", "err", err)
		}
	})
}

// stopRunningNotifier ends the running dispatcher and waits until it has returned,
// having recorded the outcome of the send it was making: the next dispatcher reads the
// same outbox, and must not find that delivery still pending and send it again. The
// caller holds mu.
func (d *Daemon) stopRunningNotifier() {
	if d.stopNotifier == nil {
		return
	}
	d.stopNotifier()
	select {
	case <-d.notifierDone:
	case <-time.After(15 * time.Second):
		d.logger.Warn("the replaced notification dispatcher did not stop within 15s; a delivery it was making may be sent twice")
	}
}

// jobSpec is one target to schedule, from the config, the host watch or Kubernetes.
type jobSpec struct {
	target           patrol.Target
	name             string
	module           moduleRef
	failure, success int
	soon             bool // taken over from another cluster member: first probed within a quarter interval
}

// moduleRef is a module and the name it was given, if any; a nil module is the
// scheme's built-in default. The module is shared with the configuration.
type moduleRef struct {
	name   string
	module *probe.Module
}

// plan is what the scheduler and the metrics will run for one configuration.
type plan struct {
	jobs  []schedule.Job
	infos []exporter.TargetInfo
	ids   map[string]bool
	full  bool // metrics.per_target: full
	// places are every known target's placement in cluster mode (this member's share
	// is jobs); nil otherwise.
	places map[string]placement
}

// plan builds every probe of cfg, plus the targets the host watch and Kubernetes
// discovered. It fails when a configured probe does not build; a discovered target that
// does not build is logged and left out. A configured target wins over a discovered
// one with the same ID.
func (d *Daemon) plan(cfg *config.Config) (plan, error) {
	specs := make([]jobSpec, 0, len(cfg.Checks))
	for _, c := range cfg.Checks {
		specs = append(specs, jobSpec{target: c.Target, name: c.Name, module: moduleRef{c.ModuleName, c.Module},
			failure: c.FailureThreshold, success: c.SuccessThreshold})
	}
	configured := len(specs)
	var places map[string]placement
	if d.cluster == nil {
		specs = d.addHostTargets(cfg, specs)
	}
	specs = d.addKubeTargets(cfg, specs)
	if d.cluster != nil {
		specs, configured, places = d.cluster.share(specs, configured, cfg)
	}
	p := plan{jobs: make([]schedule.Job, 0, len(specs)), infos: make([]exporter.TargetInfo, 0, len(specs)),
		ids: make(map[string]bool, len(specs)), full: cfg.Metrics.PerTarget == config.PerTargetFull, places: places}
	zero := new(probe.Module) // the scheme's default module, shared by the probes without one
	for i, sp := range specs {
		t := sp.target
		if p.ids[t.ID] {
			continue
		}
		m := sp.module.module
		if m == nil {
			m = zero
		}
		pr, err := probe.NewShared(t, m, d.probeEnv)
		if err != nil {
			if i < configured {
				return plan{}, err
			}
			d.logger.Warn("discovered target left out", "target", t.ID, "err", err)
			continue
		}
		p.ids[t.ID] = true
		p.jobs = append(p.jobs, schedule.Job{ID: t.ID, Host: t.Host, Interval: t.Interval, Timeout: t.Timeout,
			FailureThreshold: sp.failure, SuccessThreshold: sp.success, Run: pr.Run, Try: pr.Try(), Labels: t.Labels, Soon: soonOf(sp, t.Interval)})
		p.infos = append(p.infos, exporter.TargetInfo{ID: t.ID, Scheme: t.Scheme, Name: sp.name, Module: sp.module.name, Labels: t.Labels})
	}
	return p, nil
}

// commitPlan records a plan the scheduler has taken: the targets' metrics, and the
// resolution of alerts of targets no longer scheduled.
func (d *Daemon) commitPlan(p plan) {
	ids := p.ids
	if d.cluster != nil && p.places != nil {
		// Alerts follow every target the cluster watches, not only this member's share.
		d.cluster.places.Store(&p.places)
		d.cluster.owned = p.ids
		ids = make(map[string]bool, len(p.places))
		for id := range p.places {
			ids[id] = true
		}
	}
	d.metrics.SetTargets(p.infos)
	d.metrics.SetFull(p.full)
	d.resolveRemoved(ids)
	d.automation.setPools(p.infos)
}

// reapply rebuilds the scheduled jobs of the running configuration, when discovered
// targets change.
func (d *Daemon) reapply() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, err := d.plan(d.cfg())
	if err != nil {
		return err
	}
	if err := d.sched.Update(p.jobs); err != nil {
		return err
	}
	d.commitPlan(p)
	return nil
}

// ReloadFile re-reads the configuration file and reloads it. Without a file it does
// nothing and says so in the log.
func (d *Daemon) ReloadFile() error {
	if d.path == "" {
		d.logger.Info("reload requested, but serve runs without a config file; nothing to reload")
		return nil
	}
	cfg, err := config.Load(d.path)
	if err != nil {
		d.metrics.ConfigLoaded(false, d.clock.Now())
		d.logger.Error("reload failed; keeping the running configuration", "file", d.path, "err", err)
		return err
	}
	logWarnings(d.logger, cfg)
	return d.Reload(cfg)
}

// logWarnings logs the settings of cfg that are read but not acted on, one line each
// with its position, so that an operator migrating a blackbox.yml sees them.
func logWarnings(logger *slog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		logger.Warn("configuration setting not honoured", "at", fmt.Sprintf("%s:%d:%d", w.File, w.Line, w.Column), "field", w.Path, "why", w.Msg)
	}
}

// Reload replaces the running configuration with cfg, whole or not at all: the new
// dispatcher, alert engine, audits and probes are built first, and only when every one
// of them builds are they swapped in; on any error the running configuration stays,
// and the error is logged, counted and returned. Targets, modules, labels, alerting,
// notify, audits and intrusion (but for its enabled and netns) change at once (open
// incidents carry over through the store); storage, retention, host_watch, api,
// scheduler, kubernetes and listen take effect at the next start, and a reload that
// changes them says so.
func (d *Daemon) Reload(cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := overrideCluster(cfg, d.clusterOverride)
	if err == nil {
		err = d.reload(cfg)
	}
	if err != nil {
		d.metrics.ConfigLoaded(false, d.clock.Now())
		d.logger.Error("reload failed; keeping the running configuration", "file", cfg.File, "err", err)
		return err
	}
	d.metrics.ConfigLoaded(true, d.clock.Now())
	d.logger.Info("configuration reloaded", "file", cfg.File, "targets", len(cfg.Checks))
	return nil
}

func (d *Daemon) reload(cfg *config.Config) error {
	prev := d.gen.Load()
	if s := restartSections(prev.cfg, cfg); len(s) > 0 {
		d.logger.Warn("configuration changes that take effect only at the next start", "sections", strings.Join(s, ", "))
	}
	g, err := d.build(cfg, prev)
	if err != nil {
		return err
	}
	p, err := d.plan(cfg)
	if err != nil {
		return err
	}
	applyIntrusion, err := d.intrusion.prepareReload(cfg)
	if err != nil {
		return err
	}
	// The engine is rebuilt and swapped with no change to the old one in flight, so
	// nothing the old engine saves lands after the new one loaded the store.
	d.engineMu.Lock()
	var eng *alert.Engine
	if g.notifier != prev.notifier && d.leading.Load() {
		if err := d.flushAlerts(d.ctx); err != nil {
			d.engineMu.Unlock()
			return err
		}
		if eng, err = alert.New(d.ctx, cfg.Alerting, g.deps); err != nil {
			d.engineMu.Unlock()
			return err
		}
	}
	if err := d.sched.Update(p.jobs); err != nil {
		d.engineMu.Unlock()
		return err
	}
	if eng != nil {
		d.swapEngine(eng)
	}
	d.gen.Store(g)
	d.engineMu.Unlock()
	d.commitPlan(p)
	applyIntrusion()
	d.restart(g, prev)
	if d.cluster != nil && d.leading.Load() {
		d.cluster.publishTargets(d.ctx) // the agents' targets follow the file
	}
	if g.notifier != prev.notifier {
		d.logger.Info("alerting and notification settings reloaded", "receivers", len(g.notifier.Receivers()))
	}
	return nil
}

// restart stops the parts of prev that g replaced and starts g's, when Run is running.
// Audits whose configuration did not change are carried over by build and keep
// running in their new generation.
func (d *Daemon) restart(g, prev *generation) {
	for _, r := range prev.audits {
		if !slices.Contains(g.audits, r) {
			r.stop()
			r.retire(d.ctx)
		}
	}
	if d.runCtx == nil {
		return
	}
	if g.notifier != prev.notifier {
		d.stopRunningNotifier()
		d.runNotifier(g.notifier)
	}
	for _, r := range g.audits {
		if !slices.Contains(prev.audits, r) {
			d.spawn(func() { r.run(d.runCtx) })
		}
	}
}

// resolveOrphans resolves the open alerts of probe targets that are not scheduled,
// such as a target taken out of the config while the daemon was down. It runs once,
// after discovery has had time to bring its targets back.
func (d *Daemon) resolveOrphans() {
	d.resultMu.RLock()
	scheduled := d.scheduled
	d.resultMu.RUnlock()
	if !d.leading.Load() {
		return
	}
	for _, a := range d.engine().List(alert.Filter{}) {
		if !strings.Contains(a.Target, "://") || scheduled[a.Target] {
			continue // findings about hosts and Services, or a target still watched
		}
		err := d.withEngine(func(e *alert.Engine) error {
			return e.Resolve(d.ctx, a.ID, "portpatrol", "the target is no longer configured")
		})
		if err != nil && !errors.Is(err, alert.ErrResolved) {
			d.logger.Warn("resolve the alert of a target no longer configured", "target", a.Target, "alert", a.ID, "err", err)
		}
	}
}

// resolveRemoved resolves the open alerts of targets that are no longer scheduled (taken
// out of the config, or gone from discovery): nothing will ever clear them otherwise.
func (d *Daemon) resolveRemoved(now map[string]bool) {
	// From here on, a result still in flight for a removed target is dropped by
	// onResult rather than opening its alert again after the resolve below.
	d.resultMu.Lock()
	prev := d.scheduled
	d.scheduled = now
	d.resultMu.Unlock()
	if !d.leading.Load() || d.alerts.Load() == nil {
		return
	}
	for id := range prev {
		if now[id] {
			continue
		}
		for _, a := range d.engine().List(alert.Filter{Target: id}) {
			err := d.withEngine(func(e *alert.Engine) error {
				return e.Resolve(d.ctx, a.ID, "portpatrol", "the target was removed")
			})
			if err != nil && !errors.Is(err, alert.ErrResolved) {
				d.logger.Warn("resolve the alert of a removed target", "target", id, "alert", a.ID, "err", err)
			}
		}
	}
}

// follow re-applies the configuration, in a worker of its own, whenever discovered
// targets change.
func (d *Daemon) follow(ctx context.Context, changes <-chan struct{}) {
	d.spawn(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-changes:
				if err := d.reapply(); err != nil {
					d.logger.Warn("discovered targets", "err", err)
				}
			}
		}
	})
}

func (d *Daemon) onResult(ev schedule.Event) {
	r := ev.Result
	d.anomalies.feed(d.ctx, ev.Job, &r) // warn: auto may turn r slow
	scheme, host := "", ""
	if ev.Job != nil {
		host = ev.Job.Host
	}
	if i := strings.Index(r.Target, "://"); i > 0 {
		scheme = r.Target[:i]
	}
	d.metrics.Observe(&r, scheme, ev.Status, ev.Flapping, ev.Lag)
	if err := d.batch.Write(d.ctx, r); err != nil && d.ctx.Err() == nil {
		d.logger.Warn("history write", "target", r.Target, "err", err)
	}
	var labels map[string]string
	if ev.Job != nil {
		labels = ev.Job.Labels
	}
	if ev.Changed || ev.FlapChanged {
		d.changeLog.log(d.clock.Now(), "target state changed", "target", r.Target, "from", ev.Prev, "to", ev.Status, "flapping", ev.Flapping, "class", r.Class, "err", r.Error)
		st := ev.TargetState()
		if err := d.db.PutStates(d.ctx, []patrol.TargetState{st}); err != nil && d.ctx.Err() == nil {
			d.logger.Warn("state write", "target", r.Target, "err", err)
		}
		if err := d.broker.PublishTarget(st); err != nil {
			d.logger.Debug("publish target change", "err", err)
		}
	}
	sig := alert.Signal{Target: r.Target, Host: d.hostLabel(host), Labels: labels, Result: r, Status: ev.Status, Flapping: ev.Flapping, At: r.Start}
	if d.kube != nil {
		d.kube.observe(r)
	}
	if d.cluster != nil {
		d.cluster.publish(ev) // the leader judges it with the other locations' verdicts
		return
	}
	if !d.leading.Load() || d.learningTarget(r.Target) {
		return
	}
	d.resultMu.RLock()
	defer d.resultMu.RUnlock()
	if d.scheduled != nil && !d.scheduled[r.Target] {
		return // a probe that was in flight when its target was removed
	}
	if err := d.withEngine(func(e *alert.Engine) error { return e.Observe(d.ctx, sig) }); err != nil && d.ctx.Err() == nil {
		d.logger.Warn("alert engine", "target", r.Target, "err", err)
	}
}

// Handler serves the dashboard, the API, /metrics, /metrics/target, /probe (unless
// probe.listen gives it a listener of its own) and the /-/ endpoints. It refuses
// cross-site state-changing requests and caps each client's expensive requests in
// flight; Run puts it behind the Host allowlist of its listener.
func (d *Daemon) Handler() http.Handler {
	cfg := d.cfg()
	apiSrv := d.newAPI()
	mux := http.NewServeMux()
	metricsHandler := func(h http.Handler) http.Handler {
		if !cfg.Metrics.RequireToken {
			return h
		}
		return apiSrv.RequireToken(api.RoleViewer, func(w http.ResponseWriter, r *http.Request, _ api.Identity) { h.ServeHTTP(w, r) })
	}
	mux.Handle("GET /metrics", metricsHandler(d.metrics.Handler()))
	mux.Handle("GET /metrics/target", metricsHandler(d.metrics.TargetHandler()))
	if cfg.Probe.Listen == "" {
		mux.Handle("GET /probe", d.probeHandler(apiSrv))
	}
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "portpatrol is healthy.")
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !d.ready.Load() {
			http.Error(w, "portpatrol is not ready.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "portpatrol is ready.")
	})
	// Only an admin may reload, and only an admin reads why a reload failed: the
	// error quotes the file.
	mux.Handle("POST /-/reload", apiSrv.RequireToken(api.RoleAdmin, func(w http.ResponseWriter, _ *http.Request, who api.Identity) {
		d.logger.Info("reload requested over HTTP", "token", who.TokenID, "name", who.Name)
		if err := d.ReloadFile(); err != nil {
			http.Error(w, "reload failed, the running configuration stays: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "reloaded")
	}))
	mux.HandleFunc("GET /-/self", d.serveSelf)
	mux.Handle(api.Prefix, apiSrv)
	chat := d.chatopsHandler()
	mux.Handle("POST "+chatops.SlackPath, chat)
	mux.Handle("POST "+chatops.MattermostPath, chat)
	mux.Handle("GET /status", d.status)
	mux.Handle("GET /status.json", d.status)
	mux.Handle("/", web.New(web.Config{}))
	return crossOrigin(d.limit(cfg, mux))
}

// limit caps each client's expensive requests in flight and gives /probe the write
// deadline its module's timeout needs.
func (d *Daemon) limit(cfg *config.Config, h http.Handler) http.Handler {
	perClient := cfg.API.MaxInflightPerClient
	if perClient == 0 {
		perClient = d.httpLimits.inflightPerClient
	}
	lim := newClientLimiter(perClient)
	lim.perRoute = map[string]int{"GET /probe": cmp.Or(cfg.Probe.MaxInflightPerClient, config.DefaultProbeInflightPerClient)}
	return lim.wrap(
		probeDeadline(d.httpLimits.write, func() map[string]probe.Module { return d.cfg().Modules }, h))
}

// Run serves on ln and runs the scheduler, the dispatcher, the alert engine's ticks,
// the host watch, discovery and the audits until ctx is done, then shuts down cleanly:
// every worker it started has returned when Run returns. Close the daemon afterwards.
func (d *Daemon) Run(ctx context.Context, ln net.Listener) error {
	cfg := d.cfg()
	srv := d.serverFor(cfg, ln, d.Handler())
	srv.ErrorLog = slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn)
	var tc *tls.Config
	if cfg.API.TLSCertFile != "" {
		var err error
		if tc, err = api.LoadTLSConfig(cfg.API.TLSCertFile, cfg.API.TLSKeyFile); err != nil {
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	psrv, pln, err := d.listenProbe(cfg, tc)
	if err != nil {
		return err
	}
	ssrv, sln, err := d.listenStatus(cfg)
	if err != nil {
		if pln != nil {
			pln.Close()
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 5)
	d.spawn(func() { errc <- d.sched.Run(ctx) })
	d.mu.Lock()
	d.runCtx = ctx
	d.start(d.gen.Load())
	d.mu.Unlock()
	d.automation.run(ctx)
	d.every(ctx, 100*time.Millisecond, "alert tick", func(now time.Time) error {
		if !d.leading.Load() {
			return nil
		}
		return d.withEngine(func(e *alert.Engine) error { return e.Tick(ctx, now) })
	})
	d.every(ctx, anomalySaveEvery, "anomaly baselines", func(now time.Time) error {
		return errors.Join(d.forecastStoreDisk(ctx, now), d.saveAnomalies(ctx, now))
	})
	d.every(ctx, time.Minute, "compact", func(now time.Time) error {
		_, err := d.db.Compact(ctx, now)
		return err
	})
	srv.RegisterOnShutdown(d.broker.Close)
	if d.watch != nil {
		d.spawn(func() {
			if err := d.watch.Run(ctx); err != nil && ctx.Err() == nil {
				d.logger.Warn("host watch stopped", "err", err)
			}
		})
		d.follow(ctx, d.watch.Changes())
		d.every(ctx, quietExitedInterval, "gone learned listeners", func(time.Time) error { return d.quietExited(ctx) })
	}
	if d.kube != nil {
		d.kube.run(ctx)
		d.follow(ctx, d.kube.changed)
	}
	if d.intrusion != nil {
		d.intrusion.run(ctx)
	}
	if d.cluster != nil {
		d.cluster.run(ctx)
	}
	d.every(ctx, time.Minute, "status history", func(now time.Time) error { return d.status.Sync(ctx, now) })
	d.every(ctx, time.Minute, "state change log", func(now time.Time) error { d.changeLog.flush(now); return nil })
	d.runAuditLog(ctx)
	d.once(ctx, d.orphanDelay, d.resolveOrphans)
	d.runSelfChecks(ctx)
	d.runHeartbeat(ctx)
	d.spawn(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
			return
		}
		errc <- nil
	})
	if psrv != nil {
		d.spawn(func() {
			if err := psrv.Serve(pln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("probe server: %w", err)
				return
			}
			errc <- nil
		})
		d.logger.Info("serving /probe on its own listener", "addr", pln.Addr().String())
	}
	if ssrv != nil {
		d.spawn(func() {
			if err := ssrv.Serve(sln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("status page server: %w", err)
				return
			}
			errc <- nil
		})
		d.logger.Info("serving the status page on its own listener", "addr", sln.Addr().String())
	}
	stopSocket := d.serveSocket(cfg, errc)
	d.ready.Store(true)
	sdStopping := d.notifyReady(ctx) // systemd: READY=1, then the watchdog
	d.logger.Info("portpatrol serving", "addr", ln.Addr().String(), "targets", len(cfg.Checks), "storage", d.dbName)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	d.ready.Store(false)
	sdStopping()
	d.logger.Info("shutting down")
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		d.logger.Warn("http shutdown", "err", err)
	}
	stopSocket(sctx)
	if psrv != nil {
		if err := psrv.Shutdown(sctx); err != nil {
			d.logger.Warn("probe server shutdown", "err", err)
		}
	}
	if ssrv != nil {
		if err := ssrv.Shutdown(sctx); err != nil {
			d.logger.Warn("status page server shutdown", "err", err)
		}
	}
	// Every worker — the scheduler recording its last results, the dispatcher, the
	// watch, the audits — finishes before Close flushes history and closes storage.
	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		d.logger.Warn("workers did not stop within 5s")
	}
	return runErr
}

// spawn runs f in a goroutine that Run waits for before it returns.
func (d *Daemon) spawn(f func()) {
	d.workers.Add(1)
	go func() {
		defer d.workers.Done()
		f()
	}()
}

// every calls f every interval of the daemon's clock, in a worker of its own, until
// ctx is done, logging its errors.
func (d *Daemon) every(ctx context.Context, interval time.Duration, what string, f func(time.Time) error) {
	tick, stop := d.clock.NewTicker(interval)
	d.spawn(func() {
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick:
				if err := f(now); err != nil && ctx.Err() == nil {
					d.logger.Warn(what, "err", err)
				}
			}
		}
	})
}

// once calls f once, after delay on the daemon's clock, unless ctx ends first.
func (d *Daemon) once(ctx context.Context, delay time.Duration, f func()) {
	tick, stop := d.clock.NewTicker(delay)
	d.spawn(func() {
		defer stop()
		select {
		case <-ctx.Done():
		case <-tick:
			f()
		}
	})
}
