package daemon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

// kubeWiring connects Kubernetes discovery to the daemon: its targets join the
// scheduler, its findings (and the findings probe results reveal, such as one bad
// endpoint) go to the alert engine, and leader election decides which replica alerts.
type kubeWiring struct {
	d       *Daemon
	cfg     config.Kubernetes
	client  kube.API
	disc    *kube.Discovery
	tracker *kube.Tracker
	changed chan struct{}

	mu      sync.Mutex
	targets []patrol.Target
}

// newKubeWiring connects to the cluster cfg names (or uses client, when given).
func newKubeWiring(d *Daemon, cfg config.Kubernetes, client kube.API) (*kubeWiring, error) {
	if client == nil {
		c, _, err := kube.NewClient(cfg.Kubeconfig, cfg.Context)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: %w", err)
		}
		client = c
	}
	var err error
	k := &kubeWiring{d: d, cfg: cfg, client: client, tracker: kube.NewTracker(), changed: make(chan struct{}, 1)}
	k.disc, err = kube.NewDiscovery(kube.DiscoveryConfig{
		Client:    client,
		Namespace: cfg.Namespace,
		Selector:  cfg.Selector,
		Options:   kube.Options{NodeAddressType: corev1.NodeAddressType(cfg.NodeAddressType), Node: os.Getenv("NODE_NAME")},
		OnUpdate:  k.update,
		Logger:    d.logger.With("component", "kube"),
	})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: %w", err)
	}
	return k, nil
}

func (k *kubeWiring) leaderElection() bool {
	return k.cfg.LeaderElection == nil || *k.cfg.LeaderElection
}

// update takes a new snapshot: its targets, and the findings it raises or clears.
func (k *kubeWiring) update(s *kube.Snapshot) {
	k.mu.Lock()
	k.targets = s.Targets
	k.mu.Unlock()
	k.raise(k.tracker.Update(s))
	k.d.intrusion.setKubeRanges(s.NodeRanges)
	select {
	case k.changed <- struct{}{}:
	default:
	}
}

// observe lets the tracker judge a probe result (one endpoint failing among good ones,
// a NodePort answering on some nodes only).
func (k *kubeWiring) observe(r patrol.Result) { k.raise(k.tracker.Observe(r)) }

func (k *kubeWiring) raise(fs []kube.Finding) {
	now := k.d.clock.Now()
	for _, f := range fs {
		if err := k.d.observeFinding(k.d.ctx, kubeAlertFinding(f, now)); err != nil && k.d.ctx.Err() == nil {
			k.d.logger.Warn("kube finding", "subject", f.Subject, "err", err)
		}
	}
}

func (k *kubeWiring) currentTargets() []patrol.Target {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.targets
}

// run starts discovery and, when enabled, leader election, until ctx is done.
func (k *kubeWiring) run(ctx context.Context) {
	k.d.spawn(func() {
		if err := k.disc.Run(ctx); err != nil && ctx.Err() == nil {
			k.d.logger.Error("kubernetes discovery stopped", "err", err)
		}
	})
	if !k.leaderElection() {
		return
	}
	ns := k.cfg.LeaseNamespace
	if ns == "" {
		ns = os.Getenv("POD_NAMESPACE")
	}
	if ns == "" {
		ns = "default"
	}
	id := os.Getenv("POD_NAME")
	if id == "" {
		id, _ = os.Hostname()
	}
	k.d.spawn(func() {
		err := kube.RunLeader(ctx, kube.LeaderConfig{Client: k.client, Namespace: ns, Name: "portpatrol", Identity: id,
			Logger: k.d.logger.With("component", "leader")},
			func(lctx context.Context) { k.d.lead(lctx, k) },
			func() { k.d.stepDown() })
		if err != nil && ctx.Err() == nil {
			k.d.logger.Error("leader election stopped", "err", err)
		}
	})
}

// lead makes this replica the one that alerts: the alert engine is rebuilt from the
// store with the running generation's configuration and dependencies (a shared
// PostgreSQL store carries the previous leader's incidents over), and the findings
// active now are raised again.
func (d *Daemon) lead(ctx context.Context, k *kubeWiring) {
	if d.takeLead(ctx) {
		k.raise(k.tracker.Active())
	}
}

// takeLead rebuilds the alert engine from the store with the running generation's
// configuration and dependencies, and makes this replica the one that alerts. It
// reports false, and leaves the replica following, when the engine does not build.
func (d *Daemon) takeLead(ctx context.Context) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	g := d.gen.Load()
	d.engineMu.Lock()
	eng, err := alert.New(ctx, g.cfg.Alerting, g.deps)
	if err != nil {
		d.engineMu.Unlock()
		d.logger.Error("take over alerting", "err", err)
		return false
	}
	d.swapEngine(eng)
	d.leading.Store(true)
	d.engineMu.Unlock()
	d.logger.Info("leading: this replica now raises alerts")
	return true
}

// stepDown stops this replica raising alerts; it keeps probing and serving.
func (d *Daemon) stepDown() {
	d.leading.Store(false)
	if err := d.flushAlerts(d.ctx); err != nil && d.ctx.Err() == nil {
		d.logger.Warn("stepping down", "err", err)
	}
	d.logger.Info("following: another replica raises alerts")
}

// addKubeTargets adds the probes of every layer discovery found, with the module their
// annotation names.
func (d *Daemon) addKubeTargets(cfg *config.Config, jobs []jobSpec) []jobSpec {
	if d.kube == nil {
		return jobs
	}
	mods := map[string]*probe.Module{} // one copy per module, shared by its targets
	for _, t := range d.kube.currentTargets() {
		var m moduleRef
		if t.Module != "" {
			mod, ok := mods[t.Module]
			if !ok {
				if v, found := cfg.Modules[t.Module]; found {
					mod, mods[t.Module] = &v, &v
				}
			}
			if mod == nil {
				d.logger.Warn("kube target names an unknown module; using its scheme's default", "target", t.ID, "module", t.Module)
			} else {
				m = moduleRef{name: t.Module, module: mod}
			}
		}
		if t.Interval == 0 {
			t.Interval = cfg.Defaults.Interval
		}
		t.Timeout = min(cfg.Defaults.Timeout, t.Interval)
		jobs = append(jobs, jobSpec{target: t, module: m, failure: cfg.Defaults.FailureThreshold, success: cfg.Defaults.SuccessThreshold})
	}
	return jobs
}

// kubeAlertFinding is how a Kubernetes finding reaches the alert engine
// (Engine.ObserveFinding): a transition of kube.Tracker becomes a finding that raises
// (Active) or clears the alert of the same rule and subject.
func kubeAlertFinding(f kube.Finding, at time.Time) patrol.Finding {
	return patrol.Finding{
		Class:       f.Class,
		Rule:        string(f.Rule),
		Subject:     f.Subject,
		Severity:    f.Severity.String(),
		Summary:     f.Summary,
		Description: f.Description,
		Labels:      f.Labels,
		Active:      f.Active,
		At:          at,
	}
}
