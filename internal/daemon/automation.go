package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/exporter"
	"github.com/portpatrol/portpatrol/internal/kube"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
)

// automationActor is the name automation resolves alerts under.
const automationActor = "automation"

// automationWiring feeds alert changes to the remediation engine, verifies with the
// daemon's own probes, resolves recovered alerts, adds what was tried to the
// notifications of alerts it could not recover, and pages through a finding when a
// breaker or the fleet limit stops it. The automation section is read at start.
type automationWiring struct {
	d   *Daemon
	eng *automation.Engine
	// feed is false when no playbook is configured: then no alert is recorded.
	feed bool

	mu    sync.Mutex
	queue []patrol.Alert
	wake  chan struct{}
	tried map[string]string // alert ID -> "tried: …"
	pools map[[2]string]int // label name and value -> targets carrying it
}

// logRecorder writes automation's decisions to the log, each after the chain (next)
// took it: with the chain's sequence number, or its own count when there is no chain.
type logRecorder struct {
	logger *slog.Logger
	next   auditlog.Recorder
	mu     sync.Mutex
	seq    int64
}

func (l *logRecorder) Append(ctx context.Context, r auditlog.Record) (auditlog.Entry, error) {
	var e auditlog.Entry
	if l.next != nil {
		var err error
		if e, err = l.next.Append(ctx, r); err != nil {
			return e, err // not acted on: the engine says so
		}
	} else {
		l.mu.Lock()
		l.seq++
		e = auditlog.Entry{Seq: l.seq, Time: time.Now(), Record: r}
		l.mu.Unlock()
	}
	l.logger.Info("automation decision", "seq", e.Seq, "kind", r.Kind, "outcome", r.Outcome, "decision", r.DecisionID,
		"playbook", r.Playbook, "step", r.Step, "target", r.Target, "actor", r.Actor, "reasons", strings.Join(r.Reasons, "; "))
	return e, nil
}

// newAutomation builds the wiring for cfg's automation section.
func newAutomation(d *Daemon, cfg *config.Config, rec auditlog.Recorder) (*automationWiring, error) {
	w := &automationWiring{d: d, wake: make(chan struct{}, 1), tried: map[string]string{}, feed: len(cfg.Automation.Playbooks) > 0}
	rec = &logRecorder{logger: d.logger.With("component", "automation"), next: rec}
	var env automation.ActionEnv
	if usesKube(cfg.Automation) {
		// A missing cluster is not fatal: the kube steps' pre-checks say what is missing.
		if _, rc, err := kube.NewClient(cfg.Kubernetes.Kubeconfig, cfg.Kubernetes.Context); err == nil {
			if wl, err := kube.NewWorkloads(rc); err == nil {
				env.Kube = wl
			}
		} else {
			d.logger.Warn("automation: kube steps cannot run: no Kubernetes connection", "err", err)
		}
	}
	eng, err := automation.New(cfg.Automation, automation.Deps{
		Recorder: rec,
		Clock:    automationClock{d.clock},
		Probe:    w.probe,
		Resolve:  w.resolve,
		Escalate: w.escalate,
		Page:     w.page,
		PoolSize: w.poolSize,
		State:    learnedState{d.db},
		Env:      env,
		Logger:   d.logger.With("component", "automation"),
	})
	if err != nil {
		return nil, fmt.Errorf("automation: %w", err)
	}
	w.eng = eng
	if w.feed {
		if err := eng.Restore(d.ctx); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// usesKube says whether a playbook has a kube step.
func usesKube(c automation.Config) bool {
	for _, pb := range c.Playbooks {
		for _, s := range pb.Steps {
			if s.Action == "kube" {
				return true
			}
		}
	}
	return false
}

// learnedState keeps the engine's breakers, kill switch and pending approvals as one
// learned-set row of the store, so that they survive a restart.
type learnedState struct{ db store.LearnedStore }

const automationNamespace = "automation"

func (l learnedState) LoadState(ctx context.Context) ([]byte, error) {
	v, err := l.db.GetLearned(ctx, automationNamespace, "engine")
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v.Value, err
}

func (l learnedState) SaveState(ctx context.Context, b []byte) error {
	return l.db.PutLearned(ctx, store.Learned{Namespace: automationNamespace, Key: "engine", Value: b})
}

// automationClock gives the engine the daemon's clock; sleeping follows the system
// clock, as probe deadlines do.
type automationClock struct{ c Clock }

func (a automationClock) Now() time.Time { return a.c.Now() }
func (automationClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// observe queues a change of an alert; the alert engine's change hook calls it, so it
// returns at once.
func (w *automationWiring) observe(a patrol.Alert) {
	if w == nil || !w.feed {
		return
	}
	w.mu.Lock()
	w.queue = append(w.queue, a)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// run hands queued changes to the engine, in order, until ctx ends, and expires
// approval requests every second.
func (w *automationWiring) run(ctx context.Context) {
	w.d.every(ctx, time.Second, "automation expiry", func(time.Time) error { w.eng.Tick(ctx); return nil })
	w.d.spawn(func() {
		defer w.eng.Wait()
		for {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
			w.mu.Lock()
			q := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, a := range q {
				if !w.d.leading.Load() {
					continue // only the leader acts, as only it alerts
				}
				w.eng.Observe(ctx, a)
			}
		}
	})
}

// setPools counts the scheduled targets by label, for the blast radius's pool sizes.
func (w *automationWiring) setPools(infos []exporter.TargetInfo) {
	if w == nil {
		return
	}
	m := map[[2]string]int{}
	for _, t := range infos {
		for k, v := range t.Labels {
			m[[2]string{k, v}]++
		}
	}
	w.mu.Lock()
	w.pools = m
	w.mu.Unlock()
}

// poolSize is how many scheduled targets carry label=value.
func (w *automationWiring) poolSize(label, value string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pools[[2]string{label, value}]
}

// probe checks an alert's target once with its scheduled probe, or with a TCP connect
// when it has none (a host-level alert). The probe is the scheduler's job's: a map of
// them kept here cost 5.6 MB at 100,000 targets.
func (w *automationWiring) probe(ctx context.Context, a patrol.Alert) (bool, string) {
	var run func(context.Context) patrol.Result
	if j, ok := w.d.sched.Job(a.Target); ok {
		run = j.Run
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if run != nil {
		r := run(ctx)
		if r.Up() {
			return true, fmt.Sprintf("%s in %s", r.Class, r.Duration.Round(time.Microsecond))
		}
		return false, fmt.Sprintf("%s: %s", r.Class, r.Error)
	}
	hp := a.Target
	if i := strings.Index(hp, "://"); i >= 0 {
		hp = hp[i+3:]
	}
	if i := strings.IndexAny(hp, "/?"); i >= 0 {
		hp = hp[:i]
	}
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", hp)
	if err != nil {
		return false, err.Error()
	}
	_ = c.Close()
	return true, "connect ok"
}

// resolve resolves a recovered alert, saying by which playbook and step.
func (w *automationWiring) resolve(ctx context.Context, a patrol.Alert, text string) {
	err := w.d.withEngine(func(e *alert.Engine) error { return e.Resolve(ctx, a.ID, automationActor, text) })
	if err != nil && !errors.Is(err, alert.ErrResolved) {
		w.d.logger.Warn("automation: resolve recovered alert", "alert", a.ID, "err", err)
	}
}

// escalate keeps what was tried on an alert, for its notifications.
func (w *automationWiring) escalate(_ context.Context, a patrol.Alert, tried string) {
	w.mu.Lock()
	w.tried[a.ID] = tried
	w.mu.Unlock()
}

// page raises a P1 configuration finding: a breaker opened or the fleet limit halted
// automation, and a person must look.
func (w *automationWiring) page(ctx context.Context, text string) {
	rule := "automation_breaker"
	if strings.Contains(text, "halted") {
		rule = "automation_halted"
	}
	f := patrol.Finding{Class: patrol.AlertConfig, Rule: rule, Subject: "host:" + w.d.cfg().HostLabel(""), Severity: "P1",
		Summary: text, Active: true}
	if err := w.d.observeFinding(ctx, f); err != nil {
		w.d.logger.Warn("automation: page", "err", err)
	}
}

// triedSink adds "tried: …" to the description of alerts automation could not recover.
type triedSink struct {
	next alert.Sink
	w    func() *automationWiring
}

func (s *triedSink) Enqueue(ctx context.Context, ns []patrol.Notification) error {
	w := s.w()
	if w == nil {
		return s.next.Enqueue(ctx, ns)
	}
	w.mu.Lock()
	if len(w.tried) > 0 {
		out := slices.Clone(ns)
		for i := range out {
			cloned := false
			for j, a := range out[i].Alerts {
				t, ok := w.tried[a.ID]
				if !ok || strings.Contains(a.Description, t) {
					continue
				}
				if !cloned {
					out[i].Alerts, cloned = slices.Clone(out[i].Alerts), true
				}
				out[i].Alerts[j].Description = strings.TrimSpace(a.Description + "\n" + t)
			}
		}
		ns = out
	}
	w.mu.Unlock()
	return s.next.Enqueue(ctx, ns)
}

// automationAPI adapts the engine to the API.
type automationAPI struct{ w *automationWiring }

var _ api.Automation = automationAPI{}

func marshal(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	return b, err
}

func (a automationAPI) AutomationState(context.Context) (json.RawMessage, error) {
	return marshal(a.w.eng.State())
}

func (a automationAPI) ApprovalRequests(context.Context) (json.RawMessage, error) {
	rs := a.w.eng.Requests()
	if rs == nil {
		rs = []automation.Request{}
	}
	return marshal(struct {
		Requests []automation.Request `json:"requests"`
	}{rs})
}

// approver is the token's holder with its roles: the token's role, and service-owner
// for the names automation.service_owners lists.
func (a automationAPI) approver(who api.Identity) automation.Approver {
	return automation.Approver{Name: who.Name, Roles: []string{string(who.Role)}}
}

// apiError maps the engine's refusals to the API's 404 and 409, keeping the reason.
func apiError(err error) error {
	var de *automation.DecisionError
	switch {
	case errors.As(err, &de) && errors.Is(err, automation.ErrNotFound):
		return fmt.Errorf("%w: %s", api.ErrNotFound, de.Error())
	case errors.As(err, &de) && errors.Is(err, automation.ErrNoReason):
		return fmt.Errorf("%w: reason: %s", api.ErrInvalid, de.Reason)
	case errors.As(err, &de):
		return fmt.Errorf("%w: %s", api.ErrConflict, de.Reason)
	}
	return err
}

func (a automationAPI) decided(r automation.Request, err error) (json.RawMessage, error) {
	if err != nil {
		return nil, apiError(err)
	}
	return marshal(r)
}

func (a automationAPI) Approve(ctx context.Context, id string, who api.Identity, comment string) (json.RawMessage, error) {
	return a.decided(a.w.eng.Approve(ctx, id, a.approver(who), comment))
}

func (a automationAPI) Deny(ctx context.Context, id string, who api.Identity, reason string) (json.RawMessage, error) {
	return a.decided(a.w.eng.Deny(ctx, id, a.approver(who), reason))
}

func (a automationAPI) BreakGlass(ctx context.Context, id string, who api.Identity, reason string) (json.RawMessage, error) {
	return a.decided(a.w.eng.BreakGlass(ctx, id, a.approver(who), reason))
}

func (a automationAPI) RequestRun(ctx context.Context, alertID, playbook string, step int, who api.Identity) (json.RawMessage, error) {
	rec, ok := a.w.d.engine().Get(alertID)
	if !ok || !rec.Alert.Active() {
		return nil, fmt.Errorf("%w: no open alert %s", api.ErrNotFound, alertID)
	}
	r, err := a.w.eng.RequestRun(ctx, rec.Alert, playbook, step, who.Name)
	if err != nil {
		var de *automation.DecisionError
		if errors.As(err, &de) {
			return nil, apiError(err)
		}
		return nil, fmt.Errorf("%w: %v", api.ErrInvalid, err)
	}
	return marshal(r)
}

func (a automationAPI) Pause(ctx context.Context, who api.Identity, reason string) error {
	return a.w.eng.Pause(ctx, who.Name, reason)
}

func (a automationAPI) Resume(ctx context.Context, who api.Identity) error {
	return a.w.eng.Resume(ctx, who.Name)
}

// automationAPIFor returns the API's view of the engine.
func (d *Daemon) automationAPIFor() api.Automation {
	if d.automation == nil {
		return nil
	}
	return automationAPI{d.automation}
}

// Review builds the permission review from the engine's configuration and the store's
// audit chain, verified first.
func (a automationAPI) Review(ctx context.Context, since time.Duration) (json.RawMessage, error) {
	now := a.w.d.clock.Now()
	rv := a.w.eng.NewReview(now.Add(-since), now)
	if l := a.w.d.auditLog; l != nil {
		rep, err := l.Verify(ctx)
		if err != nil {
			return nil, fmt.Errorf("automation report: %w", err)
		}
		rv.SetChain(rep)
		if err := l.Entries(ctx, now.Add(-since), func(e auditlog.Entry) error { rv.Add(e); return nil }); err != nil {
			return nil, fmt.Errorf("automation report: %w", err)
		}
	} else {
		rv.Chain = "none: the store keeps no audit chain"
	}
	return marshal(rv.Finish())
}
