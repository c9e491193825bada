package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/scan"
	"github.com/portpatrol/portpatrol/internal/store"
)

// auditNamespace keeps, per scheduled audit, the findings whose alerts are open, so a
// finding that went away while the daemon was down is still resolved.
const auditNamespace = "audit.active"

// auditRunner runs one scheduled audit and turns its findings into alerts: one per
// host, kind, process and policy rule (see groupFindings), and an alert a later run no
// longer reports is resolved.
type auditRunner struct {
	cfg    config.Audit
	d      *Daemon
	inv    audit.Inventory
	active map[string]patrol.Finding // touched by run's goroutine, or by retire once run has returned
	mu     sync.Mutex
	report *audit.Report // the latest run's; nil until the first succeeds
	// cancel ends run early (a reload dropped or changed this audit); done is closed
	// when run returns. Both are nil until run starts.
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

// latest returns the latest report, or nil when the audit has not run yet.
func (r *auditRunner) latest() *audit.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report
}

// auditFinding is how a finding reaches the alert engine.
func auditFinding(name string, f audit.Finding, at time.Time) patrol.Finding {
	class := patrol.AlertSecurity
	if f.Kind == audit.PublicBind {
		class = patrol.AlertConfig
	}
	subject := "host:" + f.Host
	if f.Port != 0 {
		subject = fmt.Sprintf("%s:%d", f.Host, f.Port)
	}
	labels := map[string]string{"host": f.Host, "audit": name, "finding": string(f.Kind)}
	if f.Port != 0 {
		labels["port"] = strconv.Itoa(int(f.Port))
	}
	desc := ""
	if f.Rule != "" {
		desc = "policy rule at " + f.Rule
	}
	return patrol.Finding{Class: class, Rule: string(f.Kind), Subject: subject, Severity: f.Severity.String(),
		Summary: f.Message, Description: desc, Labels: labels, Active: true, At: at}
}

func (r *auditRunner) load(ctx context.Context) {
	r.active = map[string]patrol.Finding{}
	l, err := r.d.db.GetLearned(ctx, auditNamespace, r.cfg.Name)
	if errors.Is(err, store.ErrNotFound) {
		return
	}
	if err == nil {
		err = json.Unmarshal(l.Value, &r.active)
	}
	if err != nil {
		r.d.logger.Warn("load open audit findings", "audit", r.cfg.Name, "err", err)
	}
}

// run waits a spread offset within the first minute (by the audit's name), then
// audits every interval until ctx is done or stop is called.
func (r *auditRunner) run(ctx context.Context) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	defer close(r.done)
	r.mu.Unlock()
	r.load(ctx)
	h := fnv.New64a()
	h.Write([]byte(r.cfg.Name))
	first := time.Duration(h.Sum64()%uint64(min(r.cfg.Interval, time.Minute))) + time.Millisecond
	tick, stop := r.d.clock.NewTicker(first)
	for {
		select {
		case <-ctx.Done():
			stop()
			return
		case now := <-tick:
			if first > 0 {
				stop()
				tick, stop = r.d.clock.NewTicker(r.cfg.Interval)
				first = 0
			}
			if err := r.once(ctx, now); err != nil && ctx.Err() == nil {
				r.d.logger.Warn("scheduled audit", "audit", r.cfg.Name, "err", err)
			}
		}
	}
}

// stop ends run and waits for it to return; a runner stopped before it ran never runs.
func (r *auditRunner) stop() {
	r.mu.Lock()
	r.stopped = true
	cancel, done := r.cancel, r.done
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// retire resolves the alerts of every finding this audit still has open, for an audit
// a reload removed or replaced: nothing else would ever clear them. A replacement audit
// of the same name raises again what it still finds on its first run.
func (r *auditRunner) retire(ctx context.Context) {
	if r.active == nil {
		r.load(ctx)
	}
	now := r.d.clock.Now()
	for _, af := range r.active {
		af.Active, af.At = false, now
		if err := r.d.observeFinding(ctx, af); err != nil {
			r.d.logger.Warn("resolve the findings of a removed audit", "audit", r.cfg.Name, "err", err)
			return
		}
	}
	r.active = map[string]patrol.Finding{}
	if err := r.d.db.PutLearned(ctx, store.Learned{Namespace: auditNamespace, Key: r.cfg.Name, Value: []byte("{}"), UpdatedAt: now}); err != nil {
		r.d.logger.Warn("record open findings", "audit", r.cfg.Name, "err", err)
	}
}

// once runs the audit, raises what it found and resolves what it no longer finds.
func (r *auditRunner) once(ctx context.Context, now time.Time) error {
	sc := AuditScanner{Scanner: &scan.Scanner{Allow: r.cfg.Allow, Rate: r.cfg.Rate}}
	rep, err := audit.Run(ctx, r.cfg.Policy, sc, r.inv, now, r.cfg.Targets...)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.report = rep
	r.mu.Unlock()
	seen := map[string]patrol.Finding{}
	for _, g := range groupFindings(rep) {
		af := g.finding(r.cfg.Name, now, r.d.hostLabel)
		seen[g.key()] = af
		if err := r.d.observeFinding(ctx, af); err != nil {
			return err
		}
	}
	for k, af := range r.active {
		if _, still := seen[k]; !still {
			af.Active, af.At = false, now
			if err := r.d.observeFinding(ctx, af); err != nil {
				return err
			}
		}
	}
	r.active = seen
	b, err := json.Marshal(seen)
	if err != nil {
		return err
	}
	if err := r.d.db.PutLearned(ctx, store.Learned{Namespace: auditNamespace, Key: r.cfg.Name, Value: b, UpdatedAt: now}); err != nil {
		return fmt.Errorf("record open findings: %w", err)
	}
	r.d.logger.Info("scheduled audit", "audit", r.cfg.Name, "hosts", len(rep.Hosts), "findings", len(rep.Findings))
	return nil
}

// buildAudits returns a runner per audit of cfg, sharing one inventory. A runner of
// prev whose audit is unchanged is carried over as it is, with its schedule and open
// findings.
func (d *Daemon) buildAudits(cfg *config.Config, prev *generation) []*auditRunner {
	if len(cfg.Audits) == 0 {
		return nil
	}
	var inv audit.Inventory
	out := make([]*auditRunner, len(cfg.Audits))
	for i, a := range cfg.Audits {
		if prev != nil {
			for _, r := range prev.audits {
				if !changed(r.cfg, a) {
					out[i] = r
				}
			}
		}
		if out[i] == nil {
			if inv == nil {
				inv = AuditInventory{Inventory: inventory.New(inventory.Config{})}
			}
			out[i] = &auditRunner{cfg: a, d: d, inv: inv}
		}
	}
	return out
}
