package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
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

type serveFlags struct {
	config    string
	dataDir   string
	listen    string
	logLevel  string
	logFormat string
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: watch this host, probe targets, alert, serve the dashboard and API",
		Long: `Run the daemon. With no config it watches this host's own listeners (a vanished one
is a P0 within a second); with -c it also probes the configured targets on the
scheduler, turns results into P0–P3 incidents, notifies through a durable outbox, and
runs scheduled exposure audits. State is kept in SQLite under --data-dir (or in
PostgreSQL, storage: postgres://…). On 127.0.0.1:9115 unless told otherwise it serves:

  /              the dashboard
  /api/v1/       the JSON API (bearer tokens; see portpatrol token create)
  /metrics       the daemon's own metrics (portpatrol_*)
  /probe         blackbox_exporter-compatible: /probe?target=HOST:PORT&module=tcp_connect
  /-/healthy     200 while the process runs
  /-/ready       200 once the configuration is loaded and the scheduler runs
  /-/reload      POST: reload the configuration (as does SIGHUP)

A reload with a bad file keeps the old configuration running and says why in the log
and in portpatrol_config_last_reload_successful. Targets, modules and labels change on
reload, and so do alerting and notify (open incidents carry over); storage, retention,
audits, host_watch, api, scheduler and listen take effect at the next start (a reload
that changes them says so in the log).`,
		Example: `  # On its defaults: watch this host; dashboard, API and /metrics on 127.0.0.1:9115
  portpatrol serve

  # With targets, on all interfaces
  portpatrol serve -c /etc/portpatrol/portpatrol.yaml --listen 0.0.0.0:9115

  # Reload after editing the file
  kill -HUP $(pidof portpatrol)   # or: curl -X POST http://127.0.0.1:9115/-/reload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			d, err := newDaemon(daemonOptions{configPath: f.config, dataDir: f.dataDir, logger: logger})
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			defer d.Close()
			addr := d.cfg().Listen
			if f.listen != "" {
				addr = f.listen
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return exitf(exitUnknown, "listen on %s: %v (is another portpatrol or blackbox_exporter running? try --listen 127.0.0.1:PORT)", addr, err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-hup:
						_ = d.reload()
					}
				}
			}()
			return d.run(ctx, ln)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "configuration file (YAML); see docs/config.md")
	fl.StringVar(&f.dataDir, "data-dir", "", "state directory for the SQLite store (default $PORTPATROL_DATA_DIR, /var/lib/portpatrol as root, else $XDG_STATE_HOME/portpatrol)")
	fl.StringVar(&f.listen, "listen", "", "address to serve on (default from config, else "+config.DefaultListen+")")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

func newLogger(w interface{ Write([]byte) (int, error) }, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// daemon wires the configuration, the scheduler, the probes, storage, the alert engine,
// the notification outbox and the HTTP endpoints.
type daemon struct {
	path    string
	logger  *slog.Logger
	metrics *exporter.Metrics
	sched   *schedule.Scheduler
	current atomic.Pointer[config.Config]
	ready   atomic.Bool
	mu      sync.Mutex // serialises reloads

	db        backend
	dbName    string
	batch     *store.BatchWriter
	alerts    atomic.Pointer[alert.Engine] // replaced when this replica becomes leader
	alertDeps alert.Deps
	// leading is false while another replica holds the Kubernetes leader Lease: then
	// this one probes and serves, but raises no alerts.
	leading  atomic.Bool
	notifier atomic.Pointer[notify.Dispatcher] // replaced when notify or alerting reloads
	// engineMu is held for reading around every call that changes the alert engine's
	// state, and for writing while the engine is replaced, so no save of the old engine
	// lands after the new one has loaded the store.
	engineMu sync.RWMutex
	// runCtx is run's context; stopNotifier ends the running dispatcher's Run.
	runCtx    context.Context
	scheduled map[string]bool // target IDs on the scheduler, as of the last apply
	// orphanDelay is how long after start resolveOrphans runs (default 2m).
	orphanDelay  time.Duration
	stopNotifier context.CancelFunc
	broker       *api.Broker
	probeEnv     probe.Env
	watch        *hostwatch.Watch // nil when host_watch is disabled
	kube         *kubeWiring      // nil unless kubernetes.enabled
	status       *status.Page
	audits       []*auditRunner // set by run before anything starts
	closeOnce    sync.Once
	workers      sync.WaitGroup // goroutines run started
	// ctx lives as long as the daemon; closing the daemon cancels it.
	ctx    context.Context
	cancel context.CancelFunc
}

// daemonOptions are what serve's flags give newDaemon.
type daemonOptions struct {
	configPath string
	dataDir    string
	logger     *slog.Logger
	// kubeClient and probeEnv replace the cluster connection and the probes' dialer
	// in tests; nil and the zero Env mean the real ones.
	kubeClient kube.API
	probeEnv   probe.Env
}

// newDaemon loads the configuration and opens everything serve keeps. Close it.
func newDaemon(opts daemonOptions) (_ *daemon, err error) {
	logger := opts.logger
	cfg := config.Default()
	if opts.configPath != "" {
		c, err := config.Load(opts.configPath)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &daemon{path: opts.configPath, logger: logger, metrics: exporter.NewMetrics(), probeEnv: opts.probeEnv,
		ctx: ctx, cancel: cancel}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.db, d.dbName, err = openBackend(ctx, cfg, opts.dataDir); err != nil {
		return nil, err
	}
	eng, n, err := d.buildAlerting(ctx, cfg)
	if err != nil {
		return nil, err
	}
	d.alerts.Store(eng)
	d.notifier.Store(n)
	d.leading.Store(true)
	if d.status, err = newStatusPage(ctx, d); err != nil {
		return nil, err
	}
	d.broker = api.NewBroker(api.BrokerConfig{})
	d.batch = store.NewBatchWriter(d.db, store.BatchConfig{Logger: logger.With("component", "history")})
	d.metrics.Registry.MustRegister(&engineCollector{alerts: d.engine, notifier: d.notifier.Load, batch: d.batch})
	if !cfg.HostWatch.Disabled {
		d.watch = hostwatch.New(hostwatch.Config{
			Store: d.db,
			Sink: hostwatch.SinkFunc(func(ctx context.Context, ev hostwatch.Event) error {
				return d.observeFinding(ctx, alert.Finding(ev))
			}),
			UDP:        cfg.HostWatch.UDP,
			Interval:   cfg.HostWatch.Interval,
			LearnAfter: cfg.HostWatch.LearnAfter,
			Logger:     logger.With("component", "hostwatch"),
		})
		d.metrics.Registry.MustRegister(d.watch.Collector())
	}
	if cfg.Kubernetes.Enabled {
		if d.kube, err = newKubeWiring(d, cfg.Kubernetes, opts.kubeClient); err != nil {
			return nil, err
		}
		if d.kube.leaderElection() {
			d.leading.Store(false) // until elected
		}
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
	if err := d.apply(cfg); err != nil {
		return nil, err
	}
	d.metrics.ConfigLoaded(true, time.Now())
	if len(cfg.Checks) == 0 {
		if d.watch != nil {
			logger.Info("no targets configured: watching this host's own listeners; add targets with -c FILE (see docs/config.md)")
		} else {
			logger.Info("no targets configured and host_watch disabled: probing nothing on a schedule; /probe works on demand")
		}
	}
	if len(n.Receivers()) == 0 {
		logger.Info("no notification receivers configured: alerts are kept and shown by the API only (see docs/alerting.md)")
	}
	return d, nil
}

// Close flushes history and closes storage. It is safe to call more than once; a
// result that arrives after it is refused by the closed history writer, not lost in a
// crash.
func (d *daemon) Close() {
	d.closeOnce.Do(func() {
		if d.batch != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := d.batch.Close(ctx); err != nil {
				d.logger.Error("flush history", "err", err)
			}
			cancel()
		}
		d.cancel()
		if d.db != nil {
			if err := d.db.Close(); err != nil {
				d.logger.Error("close storage", "err", err)
			}
		}
	})
}

func (d *daemon) cfg() *config.Config { return d.current.Load() }

// engine returns the alert engine.
func (d *daemon) engine() *alert.Engine { return d.alerts.Load() }

// withEngine calls f with the alert engine, never while the engine is being replaced.
func (d *daemon) withEngine(f func(*alert.Engine) error) error {
	d.engineMu.RLock()
	defer d.engineMu.RUnlock()
	return f(d.alerts.Load())
}

// observeFinding raises or clears a finding, if this replica leads.
func (d *daemon) observeFinding(ctx context.Context, f alert.Finding) error {
	if !d.leading.Load() {
		return nil
	}
	return d.withEngine(func(e *alert.Engine) error { return e.ObserveFinding(ctx, f) })
}

// buildAlerting builds the notification dispatcher and the alert engine of cfg; the
// engine loads its incidents and silences from the store.
func (d *daemon) buildAlerting(ctx context.Context, cfg *config.Config) (*alert.Engine, *notify.Dispatcher, error) {
	ncfg := cfg.Notify
	ncfg.Outbox.Logger = d.logger.With("component", "notify")
	n, err := notify.New(ncfg, d.db, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("notify: %w", err)
	}
	d.alertDeps = alert.Deps{Sink: &routedSink{next: n, known: n.Receivers(), logger: d.logger}, Store: d.db}
	eng, err := alert.New(ctx, cfg.Alerting, d.alertDeps)
	if err != nil {
		return nil, nil, err
	}
	return eng, n, nil
}

// swapAlerting replaces the alert engine (and, when given, the dispatcher) once no
// change to the old engine is in flight, and restarts the dispatcher.
func (d *daemon) swapAlerting(eng *alert.Engine, n *notify.Dispatcher) {
	d.engineMu.Lock()
	d.alerts.Store(eng)
	if n != nil {
		if d.stopNotifier != nil {
			d.stopNotifier()
		}
		d.notifier.Store(n)
	}
	d.engineMu.Unlock()
	if n != nil && d.runCtx != nil {
		d.startNotifier(d.runCtx)
	}
}

// startNotifier runs the current dispatcher until ctx ends or it is replaced.
func (d *daemon) startNotifier(ctx context.Context) {
	nctx, cancel := context.WithCancel(ctx)
	d.stopNotifier = cancel
	n := d.notifier.Load()
	d.spawn(func() {
		if err := n.Run(nctx); err != nil && nctx.Err() == nil {
			d.logger.Error("notification dispatcher stopped", "err", err)
		}
	})
}

// moduleRef is a module and the name it was given, if any.
type moduleRef struct {
	name   string
	module probe.Module
}

// jobSpec is one target to schedule, from the config, the host watch or Kubernetes.
type jobSpec struct {
	target           patrol.Target
	name             string
	module           moduleRef
	failure, success int
}

// apply builds every probe of cfg (plus the targets the host watch and Kubernetes
// discovered) and hands the jobs to the scheduler. Nothing changes unless every
// configured probe builds; a discovered target that does not build is logged and left
// out. A configured target wins over a discovered one with the same ID.
func (d *daemon) apply(cfg *config.Config) error {
	specs := make([]jobSpec, 0, len(cfg.Checks))
	for _, c := range cfg.Checks {
		specs = append(specs, jobSpec{target: c.Target, name: c.Name, module: moduleRef{c.ModuleName, c.Module},
			failure: c.FailureThreshold, success: c.SuccessThreshold})
	}
	configured := len(specs)
	specs = d.addHostTargets(cfg, specs)
	specs = d.addKubeTargets(cfg, specs)
	jobs := make([]schedule.Job, 0, len(specs))
	infos := make([]exporter.TargetInfo, 0, len(specs))
	have := make(map[string]bool, len(specs))
	for i, sp := range specs {
		t := sp.target
		if have[t.ID] {
			continue
		}
		p, err := probe.New(t, sp.module.module, d.probeEnv)
		if err != nil {
			if i < configured {
				return err
			}
			d.logger.Warn("discovered target left out", "target", t.ID, "err", err)
			continue
		}
		have[t.ID] = true
		jobs = append(jobs, schedule.Job{ID: t.ID, Host: t.Host, Interval: t.Interval, Timeout: t.Timeout,
			FailureThreshold: sp.failure, SuccessThreshold: sp.success, Run: p.Run, Try: p.Try(), Labels: t.Labels})
		infos = append(infos, exporter.TargetInfo{ID: t.ID, Scheme: t.Scheme, Name: sp.name, Module: sp.module.name, Labels: t.Labels})
	}
	if err := d.sched.Update(jobs); err != nil {
		return err
	}
	d.metrics.SetTargets(infos)
	d.current.Store(cfg)
	d.resolveRemoved(have)
	return nil
}

// resolveOrphans resolves the open alerts of probe targets that are not scheduled,
// such as a target taken out of the config while the daemon was down. It runs once,
// after discovery has had time to bring its targets back.
func (d *daemon) resolveOrphans() {
	d.mu.Lock()
	scheduled := d.scheduled
	d.mu.Unlock()
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
func (d *daemon) resolveRemoved(now map[string]bool) {
	prev := d.scheduled
	d.scheduled = now
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

// addHostTargets adds a probe of every listener the host watch expects, through its
// bind address.
func (d *daemon) addHostTargets(cfg *config.Config, specs []jobSpec) []jobSpec {
	if d.watch == nil {
		return specs
	}
	for _, l := range d.watch.Targets() {
		if l.Proto != "tcp" {
			continue
		}
		t, err := patrol.ParseTarget(l.Target)
		if err != nil {
			d.logger.Warn("host watch target", "target", l.Target, "err", err)
			continue
		}
		t.Interval, t.Timeout = cfg.Defaults.Interval, min(cfg.Defaults.Timeout, cfg.Defaults.Interval)
		t.Labels = map[string]string{"source": "host_watch"}
		if l.Process != "" {
			t.Labels["process"] = l.Process
		}
		specs = append(specs, jobSpec{target: t, name: l.Process, failure: cfg.Defaults.FailureThreshold, success: cfg.Defaults.SuccessThreshold})
	}
	return specs
}

// follow re-applies the configuration, in a worker of its own, whenever discovered
// targets change.
func (d *daemon) follow(ctx context.Context, changes <-chan struct{}) {
	d.spawn(func() { d.followLoop(ctx, changes) })
}

func (d *daemon) followLoop(ctx context.Context, changes <-chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			d.mu.Lock()
			if err := d.apply(d.cfg()); err != nil {
				d.logger.Warn("host watch targets", "err", err)
			}
			d.mu.Unlock()
		}
	}
}

// reload re-reads the configuration file. On any error the running configuration
// stays, and the error is logged and counted. Targets, modules and labels change at
// once; storage, alerting, notify and api take effect at the next start.
func (d *daemon) reload() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.path == "" {
		d.logger.Info("reload requested, but serve runs without a config file; nothing to reload")
		return nil
	}
	cfg, err := config.Load(d.path)
	var eng *alert.Engine
	var n *notify.Dispatcher
	if err == nil {
		sections := restartSections(d.cfg(), cfg)
		if slices.Contains(sections, "alerting") || slices.Contains(sections, "notify") {
			// Built before anything changes, so a failure keeps the running config.
			if eng, n, err = d.buildAlerting(d.ctx, cfg); err == nil {
				sections = slices.DeleteFunc(sections, func(s string) bool { return s == "alerting" || s == "notify" })
			}
		}
		if err == nil && len(sections) > 0 {
			d.logger.Warn("configuration changes that take effect only at the next start", "sections", strings.Join(sections, ", "))
		}
	}
	if err == nil {
		err = d.apply(cfg)
	}
	if err == nil && eng != nil {
		d.swapAlerting(eng, n)
		d.logger.Info("alerting and notification settings reloaded", "receivers", len(n.Receivers()))
	}
	if err != nil {
		d.metrics.ConfigLoaded(false, time.Now())
		d.logger.Error("reload failed; keeping the running configuration", "file", d.path, "err", err)
		return err
	}
	d.metrics.ConfigLoaded(true, time.Now())
	d.logger.Info("configuration reloaded", "file", d.path, "targets", len(cfg.Checks))
	return nil
}

// restartSections names the sections that differ between old and cur but are only
// read at start.
func restartSections(old, cur *config.Config) []string {
	var out []string
	strip := func(as []config.AuditConfig) []config.AuditConfig {
		out := make([]config.AuditConfig, len(as))
		for i, a := range as {
			a.Loaded, a.AllowNets = nil, nil
			out[i] = a
		}
		return out
	}
	for _, s := range []struct {
		name string
		a, b any
	}{
		{"storage", old.Storage, cur.Storage}, {"retention", old.Retention, cur.Retention},
		{"alerting", old.Alerting, cur.Alerting}, {"notify", old.Notify, cur.Notify},
		{"audits", strip(old.Audits), strip(cur.Audits)}, {"host_watch", old.HostWatch, cur.HostWatch},
		{"api", old.API, cur.API}, {"scheduler", old.Scheduler, cur.Scheduler}, {"listen", old.Listen, cur.Listen},
	} {
		if !reflect.DeepEqual(s.a, s.b) {
			out = append(out, s.name)
		}
	}
	return out
}

func (d *daemon) onResult(ev schedule.Event) {
	r := ev.Result
	scheme, host := "", ""
	if ev.Job != nil {
		host = ev.Job.Host
	}
	if i := strings.Index(r.Target, "://"); i > 0 {
		scheme = r.Target[:i]
	}
	d.metrics.Observe(&r, scheme, string(ev.State), ev.Flapping, ev.Lag)
	if err := d.batch.Write(d.ctx, r); err != nil && d.ctx.Err() == nil {
		d.logger.Warn("history write", "target", r.Target, "err", err)
	}
	var labels map[string]string
	if ev.Job != nil {
		labels = ev.Job.Labels
	}
	if ev.Changed || ev.FlapChanged {
		d.logger.Info("target state changed", "target", r.Target, "from", ev.Prev, "to", ev.State, "flapping", ev.Flapping, "class", r.Class, "err", r.Error)
		st := store.State{Target: r.Target, Status: store.Status(ev.State), Flapping: ev.Flapping, Since: r.Start, Labels: labels,
			Last: store.ResultSummary{Time: r.Start, Class: r.Class, Duration: r.Duration, Error: r.Error}}
		if err := d.db.PutStates(d.ctx, []store.State{st}); err != nil && d.ctx.Err() == nil {
			d.logger.Warn("state write", "target", r.Target, "err", err)
		}
		ts := api.TargetState{ID: r.Target, Status: api.Status(ev.State), Flapping: ev.Flapping, Since: r.Start, Labels: labels,
			Last: api.LastResult{Time: r.Start, Class: r.Class, Duration: r.Duration, Error: r.Error}}
		if err := d.broker.PublishTarget(ts); err != nil {
			d.logger.Debug("publish target change", "err", err)
		}
	}
	sig := alert.Signal{Target: r.Target, Host: host, Labels: labels, Result: r, State: string(ev.State), Flapping: ev.Flapping, At: r.Start}
	if d.kube != nil {
		d.kube.observe(r)
	}
	if !d.leading.Load() {
		return
	}
	if err := d.withEngine(func(e *alert.Engine) error { return e.Observe(d.ctx, sig) }); err != nil && d.ctx.Err() == nil {
		d.logger.Warn("alert engine", "target", r.Target, "err", err)
	}
}

func (d *daemon) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.metrics.Registry, promhttp.HandlerOpts{Registry: d.metrics.Registry}))
	mux.Handle("GET /probe", &exporter.ProbeHandler{
		Modules: func() map[string]probe.Module { return d.cfg().Modules },
		Logger:  d.logger,
	})
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
	mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, _ *http.Request) {
		if err := d.reload(); err != nil {
			http.Error(w, "reload failed, the running configuration stays: "+err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintln(w, "reloaded")
	})
	cfg := d.cfg()
	ad := &apiAdapter{d: d}
	mux.Handle(api.Prefix, api.New(api.Config{
		Targets: ad, History: ad, Alerts: ad, AlertActions: ad, Silences: ad, Windows: ad, Deliveries: ad, Audits: ad,
		Tokens: ad, TokenAdmin: ad, Broker: d.broker, AnonymousRead: cfg.API.AnonymousRead, Logger: d.logger.With("component", "api"),
	}))
	mux.Handle("GET /status", d.status)
	mux.Handle("GET /status.json", d.status)
	mux.Handle("/", web.New(web.Config{}))
	return mux
}

// run serves on ln and runs the scheduler until ctx is done, then shuts down cleanly.
func (d *daemon) run(ctx context.Context, ln net.Listener) error {
	cfg := d.cfg()
	d.audits = newAuditRunners(d, cfg)
	srv := &http.Server{
		Handler:           d.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	d.spawn(func() { errc <- d.sched.Run(ctx) })
	d.runCtx = ctx
	d.startNotifier(ctx)
	d.every(ctx, 100*time.Millisecond, "alert tick", func(now time.Time) error {
		if !d.leading.Load() {
			return nil
		}
		return d.withEngine(func(e *alert.Engine) error { return e.Tick(ctx, now) })
	})
	d.every(ctx, time.Minute, "compact", func(now time.Time) error {
		_, err := d.db.Compact(ctx, now)
		return err
	})
	srv.RegisterOnShutdown(d.broker.Close)
	if cfg.API.TLSCertFile != "" {
		tc, err := api.LoadTLSConfig(cfg.API.TLSCertFile, cfg.API.TLSKeyFile)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, tc)
	}
	for _, r := range d.audits {
		d.spawn(func() { r.run(ctx) })
	}
	if d.watch != nil {
		d.spawn(func() {
			if err := d.watch.Run(ctx); err != nil && ctx.Err() == nil {
				d.logger.Warn("host watch stopped", "err", err)
			}
		})
		d.follow(ctx, d.watch.Changes())
	}
	if d.kube != nil {
		d.kube.run(ctx)
		d.follow(ctx, d.kube.changed)
	}
	d.every(ctx, time.Minute, "status history", func(now time.Time) error { return d.status.Sync(ctx, now) })
	orphans := d.orphanDelay
	if orphans == 0 {
		orphans = 2 * time.Minute
	}
	d.spawn(func() {
		select {
		case <-ctx.Done():
		case <-time.After(orphans):
			d.resolveOrphans()
		}
	})
	var feed alertFeed
	d.every(ctx, 500*time.Millisecond, "alert events", func(time.Time) error { return feed.publish(d.engine(), d.broker) })
	d.spawn(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
			return
		}
		errc <- nil
	})
	d.ready.Store(true)
	d.logger.Info("portpatrol serving", "addr", ln.Addr().String(), "targets", len(d.cfg().Checks), "storage", d.dbName)
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	d.ready.Store(false)
	d.logger.Info("shutting down")
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		d.logger.Warn("http shutdown", "err", err)
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

// spawn runs f in a goroutine that run waits for before it returns.
func (d *daemon) spawn(f func()) {
	d.workers.Add(1)
	go func() {
		defer d.workers.Done()
		f()
	}()
}

// every calls f every interval, in a worker of its own, until ctx is done, logging its
// errors.
func (d *daemon) every(ctx context.Context, interval time.Duration, what string, f func(time.Time) error) {
	d.spawn(func() { d.tick(ctx, interval, what, f) })
}

func (d *daemon) tick(ctx context.Context, interval time.Duration, what string, f func(time.Time) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := f(now); err != nil && ctx.Err() == nil {
				d.logger.Warn(what, "err", err)
			}
		}
	}
}
