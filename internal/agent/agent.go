// Package agent is `portpatrol agent`: a probe-only member of a cluster for remote
// locations. It keeps no store and serves no dashboard; it takes its targets from the
// cluster (the alerting leader publishes the defaults, scheduler, modules and targets
// sections of its configuration), probes the share it owns by rendezvous hashing over
// the live members of its location, and sends every result to the cluster's stream.
// While NATS is unreachable it keeps probing what it owned and buffers the results
// (bounded; what is dropped is counted).
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portpatrol/portpatrol/internal/cluster"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/probe"
	"github.com/portpatrol/portpatrol/internal/schedule"
)

// Config is what an agent needs.
type Config struct {
	// Cluster is the member's settings; Role is set to "agent".
	Cluster cluster.Config
	// Listen, when set, serves /metrics and /-/ready there.
	Listen string
	// Logger receives the agent's log; nil discards it.
	Logger *slog.Logger
	// ProbeEnv is what probes dial with; nil means a new one, closed by Run.
	ProbeEnv *probe.Env
}

// Agent is a running agent.
type Agent struct {
	c    Config
	log  *slog.Logger
	node *cluster.Node
	// sched is built from the first targets document, with its scheduler section (the
	// cluster's flap detection, concurrency and fast confirmation); nil until then.
	sched     *schedule.Scheduler
	schedConf config.Scheduler
	errc      chan error      // the scheduler's Run returns here
	ownedIDs  map[string]bool // the targets of the last plan; nil before the first (replan's goroutine only)
	env       *probe.Env
	ownEnv    bool
	reg       *prometheus.Registry

	mu      sync.Mutex
	doc     []byte // the targets document the jobs were built from
	targets int    // targets in it
	owned   int    // of which this agent probes
	ready   bool

	results  prometheus.Counter
	failures prometheus.Counter
}

// New joins the cluster (it returns at once even when NATS is unreachable; the member
// connects in the background).
func New(ctx context.Context, c Config) (*Agent, error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.Cluster.Role = "agent"
	if c.Cluster.Logger == nil {
		c.Cluster.Logger = c.Logger.With("component", "cluster")
	}
	a := &Agent{c: c, log: c.Logger, env: c.ProbeEnv, reg: prometheus.NewRegistry()}
	if a.env == nil {
		a.env, a.ownEnv = new(probe.Env), true
	}
	node, err := cluster.Join(ctx, c.Cluster)
	if err != nil {
		return nil, err
	}
	a.node = node
	a.results = prometheus.NewCounter(prometheus.CounterOpts{Name: "portpatrol_agent_results_total", Help: "Probe results this agent sent to the cluster's stream (or buffered)."})
	a.failures = prometheus.NewCounter(prometheus.CounterOpts{Name: "portpatrol_agent_probe_failures_total", Help: "Probe results that were not up."})
	a.reg.MustRegister(node.Collector(), a.results, a.failures, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portpatrol_agent_targets", Help: "Targets the cluster publishes for agents."}, func() float64 {
			a.mu.Lock()
			defer a.mu.Unlock()
			return float64(a.targets)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "portpatrol_agent_owned_targets", Help: "Targets this agent probes: its share in its location."}, func() float64 {
			a.mu.Lock()
			defer a.mu.Unlock()
			return float64(a.owned)
		}))
	return a, nil
}

// Node is the agent's cluster member.
func (a *Agent) Node() *cluster.Node { return a.node }

// Owned returns how many targets the agent probes, of how many it was given.
func (a *Agent) Owned() (owned, targets int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.owned, a.targets
}

// Run probes until ctx ends, then leaves the cluster. It re-plans when the targets or
// the members change.
func (a *Agent) Run(ctx context.Context) error {
	defer a.close()
	var srv *http.Server
	if a.c.Listen != "" {
		ln, err := net.Listen("tcp", a.c.Listen)
		if err != nil {
			return fmt.Errorf("agent listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
			a.mu.Lock()
			ready := a.ready
			a.mu.Unlock()
			if !ready {
				http.Error(w, "waiting for targets from the cluster", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ready")
		})
		srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		a.log.Info("agent serving /metrics", "addr", ln.Addr().String())
	}
	a.errc = make(chan error, 1)
	a.log.Info("agent started", "member", a.node.ID(), "location", a.node.Location())
	if a.node.Config() == nil {
		a.log.Info("waiting for the targets from the cluster's alerting leader")
	}
	a.replan(ctx)
	for {
		select {
		case <-ctx.Done():
			if srv != nil {
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = srv.Shutdown(sctx)
				cancel()
			}
			if a.sched != nil {
				<-a.errc
			}
			return nil
		case err := <-a.errc:
			return err
		case <-a.node.ConfigChanges():
			a.replan(ctx)
		case <-a.node.Changes():
			a.replan(ctx)
		}
	}
}

func (a *Agent) close() {
	if err := a.node.Close(); err != nil {
		a.log.Warn("leave the cluster", "err", err)
	}
	if a.ownEnv {
		_ = a.env.Close()
	}
}

// replan builds the probes of the targets this agent owns. A document that does not
// parse is logged and the running probes are kept.
func (a *Agent) replan(ctx context.Context) {
	doc := a.node.Config()
	if doc == nil {
		return
	}
	cfg, err := config.Parse(doc, "cluster targets")
	if err != nil {
		a.log.Error("the cluster's targets do not load; keeping the running probes", "err", err)
		return
	}
	if a.sched == nil {
		sc := cfg.Scheduler
		a.sched = schedule.New(schedule.Config{Concurrency: sc.Concurrency, PerHost: sc.PerHost,
			NoFastConfirm: sc.FastConfirm != nil && !*sc.FastConfirm, FlapWindow: sc.FlapWindow, FlapChanges: sc.FlapChanges,
			OnResult: a.onResult, Logger: a.log})
		a.schedConf = sc
		go func() { a.errc <- a.sched.Run(ctx) }()
	} else if !reflect.DeepEqual(a.schedConf, cfg.Scheduler) {
		a.log.Warn("the cluster's scheduler settings changed; the agent applies them at its next start")
	}
	jobs, err := Share(cfg, a.node.Members(), a.node.ID(), a.node.Location(), a.env)
	if err != nil {
		a.log.Error("the cluster's targets do not build; keeping the running probes", "err", err)
		return
	}
	if a.ownedIDs != nil {
		for i := range jobs {
			if !a.ownedIDs[jobs[i].ID] {
				// Taken over from a member that left or died: probed again within a
				// quarter of its interval, not up to a whole one later.
				jobs[i].Soon = jobs[i].Interval / 4
			}
		}
	}
	if err := a.sched.Update(jobs); err != nil {
		a.log.Error("schedule", "err", err)
		return
	}
	a.mu.Lock()
	changed := !slices.Equal(a.doc, doc) || a.owned != len(jobs)
	a.doc, a.targets, a.owned, a.ready = doc, len(cfg.Checks), len(jobs), true
	a.ownedIDs = make(map[string]bool, len(jobs))
	for _, j := range jobs {
		a.ownedIDs[j.ID] = true
	}
	a.mu.Unlock()
	if changed {
		a.log.Info("probing this agent's share", "owned", len(jobs), "targets", len(cfg.Checks), "epoch", a.node.Epoch())
	}
}

// Share builds the jobs of cfg's targets that member self in location loc owns among
// members: targets whose locations include loc (or name none), owned by rendezvous
// hashing over the live members of loc.
func Share(cfg *config.Config, members []cluster.Member, self, loc string, env *probe.Env) ([]schedule.Job, error) {
	var jobs []schedule.Job
	zero := new(probe.Module)
	for _, c := range cfg.Checks {
		if c.Locations != nil && !slices.Contains(c.Locations, loc) {
			continue
		}
		if cluster.OwnerOf(members, loc, c.Target.ID) != self {
			continue
		}
		m := c.Module
		if m == nil {
			m = zero
		}
		pr, err := probe.NewShared(c.Target, m, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Target.ID, err)
		}
		t := c.Target
		jobs = append(jobs, schedule.Job{ID: t.ID, Host: t.Host, Interval: t.Interval, Timeout: t.Timeout,
			FailureThreshold: c.FailureThreshold, SuccessThreshold: c.SuccessThreshold, Run: pr.Run, Try: pr.Try(), Labels: t.Labels})
	}
	return jobs, nil
}

func (a *Agent) onResult(ev schedule.Event) {
	a.results.Inc()
	if !ev.Result.Up() {
		a.failures.Inc()
	}
	raw, err := json.Marshal(ev.Result)
	if err != nil {
		a.log.Warn("encode result", "target", ev.Result.Target, "err", err)
		return
	}
	err = a.node.Publish(cluster.Result{Target: ev.Result.Target, Status: string(ev.Status), Flapping: ev.Flapping,
		Changed: ev.Changed || ev.FlapChanged, Result: raw})
	if err != nil && !errors.Is(err, context.Canceled) {
		a.log.Warn("publish result", "target", ev.Result.Target, "err", err)
	}
}
