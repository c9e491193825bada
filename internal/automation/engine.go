package automation

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// keepDecided is how long a decided approval request stays listed after its expiry.
const keepDecided = 24 * time.Hour

// Actor is the name the engine records its own decisions under. It never counts as an
// approver.
const Actor = "portpatrol"

// Clock is the engine's time: Now, and Sleep, which returns early with ctx's error.
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Deps are what an Engine works with besides its configuration.
type Deps struct {
	// Recorder receives every decision; required. A decision that cannot be recorded is
	// not acted on.
	Recorder auditlog.Recorder
	// Clock is the engine's time; nil means the real one.
	Clock Clock
	// Probe checks the alert's target once and reports whether it is healthy, with a
	// short detail. Verification calls it until healthy or the window ends; nil means
	// no verification beyond the action's own.
	Probe func(ctx context.Context, a patrol.Alert) (healthy bool, detail string)
	// Resolve resolves a recovered alert with the text "recovered by playbook X step Y".
	Resolve func(ctx context.Context, a patrol.Alert, text string)
	// Escalate is told what was tried on an alert that automation could not recover;
	// the alert then escalates as any other, with this in its text.
	Escalate func(ctx context.Context, a patrol.Alert, tried string)
	// Page pages a human once when a breaker opens or the fleet limit halts automation.
	Page func(ctx context.Context, text string)
	// PoolSize says how many targets carry label=value, for the blast radius; nil or 0
	// means unknown, and then one target per pool is allowed within the window.
	PoolSize func(label, value string) int
	// State keeps the breakers, the kill switch and the pending approvals across
	// restarts (see Restore); nil keeps them in memory only.
	State StateStore
	// Env is passed to the actions.
	Env ActionEnv
	// Logger logs what could not be recorded; nil discards.
	Logger *slog.Logger
}

// Errors Approve, Deny and BreakGlass return; test with errors.Is. The API maps
// ErrNotFound to 404 and the others to 409.
var (
	ErrNotFound   = errors.New("no such approval request")
	ErrDecided    = errors.New("already decided")
	ErrExpired    = errors.New("expired")
	ErrVoid       = errors.New("void")
	ErrDrifted    = errors.New("the plan no longer matches the target's state")
	ErrOwnRequest = errors.New("nobody approves their own request")
	ErrTwice      = errors.New("already approved by this approver")
	ErrNoReason   = errors.New("break-glass needs a reason")
)

// The states of a pending approval.
const (
	StatePending  = "pending"
	StateApproved = "approved"
	StateDenied   = "denied"
	StateExpired  = "expired"
	StateVoid     = "void"
)

// Approver is who approves or denies, with their roles.
type Approver struct {
	// Name is the portpatrol user: the requester, self-approval and distinct-approver
	// checks compare it, whatever the decision came through.
	Name  string   `json:"name"`
	Roles []string `json:"roles,omitempty"`
	// Via is where the decision came from when not the API, such as
	// "slack:U0BOB"; the audit record says "by bob via slack:U0BOB".
	Via string `json:"via,omitempty"`
}

// who is the approver as records name them: "bob", or "bob via slack:U0BOB".
func (a Approver) who() string {
	if a.Via == "" {
		return a.Name
	}
	return a.Name + " via " + a.Via
}

// Approval is one approver's yes.
type Approval struct {
	By         string    `json:"by"`
	Roles      []string  `json:"roles,omitempty"`
	At         time.Time `json:"at"`
	Comment    string    `json:"comment,omitempty"`
	BreakGlass bool      `json:"break_glass,omitempty"`
	// Via is where the approval came from when not the API (see Approver.Via).
	Via string `json:"via,omitempty"`
}

// Plan is a step resolved against an alert, with its hash.
type Plan struct {
	Playbook      string            `json:"playbook"`
	Step          string            `json:"step"`
	StepIndex     int               `json:"step_index"`
	Tier          Tier              `json:"tier"`
	Action        string            `json:"action"`
	Target        string            `json:"target"`
	Params        map[string]string `json:"params"`
	Diff          string            `json:"diff"`
	PolicyVersion string            `json:"policy_version"`
	Evidence      Evidence          `json:"evidence"`
	Hash          string            `json:"hash"`
}

// Evidence is what a plan was made against: the alert and the target's state.
type Evidence struct {
	Alert       string `json:"alert"`
	Class       string `json:"class"`
	Severity    string `json:"severity"`
	Summary     string `json:"summary,omitempty"`
	TargetState string `json:"target_state,omitempty"`
}

// Request is a plan waiting for approval.
type Request struct {
	ID          string     `json:"id"`
	DecisionID  string     `json:"decision_id"`
	AlertID     string     `json:"alert_id"`
	Plan        Plan       `json:"plan"`
	Reasons     []string   `json:"reasons"`
	RequestedBy string     `json:"requested_by"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   time.Time  `json:"expires_at"`
	State       string     `json:"state"`
	Approvals   []Approval `json:"approvals,omitempty"`
	// Needs says in words what approvals are still missing.
	Needs  string `json:"needs,omitempty"`
	Reason string `json:"reason,omitempty"` // why it was denied, expired or voided
}

// run is one playbook's handling of one alert.
type run struct {
	id       string // decision ID
	alert    patrol.Alert
	pb       *Playbook
	actions  []Action
	tried    []string
	stopped  string // why automation stopped on it (acknowledged, resolved)
	finished bool
}

// Engine decides and runs playbooks for alerts. Build it with New; all methods are safe
// for concurrent use.
type Engine struct {
	cfg  Config
	deps Deps
	clk  Clock
	log  *slog.Logger

	mu          sync.Mutex
	paused      bool
	pausedBy    string
	pauseReason string
	fleetPaged  bool
	limits      *limits
	runs        map[string]*run // by alert ID
	requests    map[string]*Request
	reqRun      map[string]*run
	blast       map[string][]blastHit // by playbook, step and pool
	persist     persister
	wg          sync.WaitGroup
}

// New validates cfg and builds an engine.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Recorder == nil {
		return nil, errors.New("automation: a Recorder is required")
	}
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg, deps: deps, clk: deps.Clock, log: deps.Logger, paused: cfg.Paused,
		limits: newLimits(cfg), runs: map[string]*run{}, requests: map[string]*Request{}, reqRun: map[string]*run{},
		blast: map[string][]blastHit{}}
	if cfg.Paused {
		e.pausedBy, e.pauseReason = "config", "automation.paused is set"
	}
	if e.clk == nil {
		e.clk = realClock{}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	for i := range e.cfg.Playbooks {
		for _, s := range e.cfg.Playbooks[i].Steps {
			if _, err := newAction(s, deps.Env); err != nil {
				return nil, err
			}
		}
	}
	return e, nil
}

// Wait waits for the runs the engine started in the background (after approvals).
func (e *Engine) Wait() { e.wg.Wait() }

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// record appends r, filling the actor.
func (e *Engine) record(ctx context.Context, r auditlog.Record) error {
	if r.Actor == "" {
		r.Actor = Actor
	}
	e.markDirty()
	if _, err := e.deps.Recorder.Append(ctx, r); err != nil {
		e.log.Error("automation: could not record a decision; not acting on it", "kind", r.Kind, "decision", r.DecisionID, "err", err)
		return fmt.Errorf("record %s: %w", r.Kind, err)
	}
	return nil
}

// match returns the first playbook whose trigger and rollout match a, and why.
func (e *Engine) match(a patrol.Alert) (*Playbook, []string) {
	get := func(name string) string {
		switch name {
		case "class":
			return string(a.Class)
		case "severity":
			return a.Severity.String()
		case "target":
			return a.Target
		case "alertname":
			return a.Rule
		}
		return a.Labels[name]
	}
	var why []string
	for i := range e.cfg.Playbooks {
		pb := &e.cfg.Playbooks[i]
		t := pb.Trigger
		if len(t.Class) > 0 && !contains(t.Class, string(a.Class)) {
			why = append(why, fmt.Sprintf("playbook %s: class %s is not one of %s", pb.Name, a.Class, strings.Join(t.Class, ", ")))
			continue
		}
		if len(t.Severity) > 0 && !containsFold(t.Severity, a.Severity.String()) {
			why = append(why, fmt.Sprintf("playbook %s: severity %s is not one of %s", pb.Name, a.Severity, strings.Join(t.Severity, ", ")))
			continue
		}
		ms, _ := patrol.ParseMatchers(t.Labels)
		if !ms.Matches(get) {
			why = append(why, fmt.Sprintf("playbook %s: labels do not match %s", pb.Name, ms))
			continue
		}
		ro, _ := patrol.ParseMatchers(pb.Rollout)
		if !ro.Matches(get) {
			why = append(why, fmt.Sprintf("playbook %s: not rolled out to this target yet (rollout %s)", pb.Name, ro))
			continue
		}
		reasons := []string{fmt.Sprintf("playbook %s matches: class %s, severity %s", pb.Name, a.Class, a.Severity)}
		if len(ms) > 0 {
			reasons = append(reasons, "labels match "+ms.String())
		}
		if len(ro) > 0 {
			reasons = append(reasons, "rolled out to "+ro.String())
		}
		return pb, reasons
	}
	return nil, why
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// plan resolves step i of r's playbook against r's alert as it is now.
func (e *Engine) plan(ctx context.Context, r *run, i int) (Plan, Change, error) {
	s := r.pb.Steps[i]
	a := e.alertOf(r)
	ch, err := r.actions[i].Plan(targetOf(a))
	if err != nil {
		return Plan{}, Change{}, err
	}
	p := Plan{Playbook: r.pb.Name, Step: stepName(s, i), StepIndex: i, Tier: s.Risk, Action: s.Action, Target: ch.Target,
		Params: ch.Params, Diff: ch.Diff, PolicyVersion: e.cfg.PolicyVersion,
		Evidence: Evidence{Alert: a.Fingerprint, Class: string(a.Class), Severity: a.Severity.String(), Summary: a.Summary}}
	if st, ok := r.actions[i].(stater); ok {
		p.Evidence.TargetState = st.State(ctx, ch)
	}
	p.Hash = planHash(p)
	return p, ch, nil
}

func stepName(s Step, i int) string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("%d (%s)", i+1, s.Action)
}

// planHash covers the action, target, parameters, policy version and evidence (the
// summary aside, which may be reworded without anything changing).
func planHash(p Plan) string {
	ev := p.Evidence
	ev.Summary = ""
	b, _ := json.Marshal(struct {
		Action, Target, Policy string
		Params                 map[string]string
		Evidence               Evidence
	}{p.Action, p.Target, p.PolicyVersion, p.Params, ev})
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func evidenceJSON(p Plan) json.RawMessage {
	b, _ := json.Marshal(struct {
		Evidence Evidence          `json:"evidence"`
		Action   string            `json:"action"`
		Params   map[string]string `json:"params"`
		Diff     string            `json:"diff"`
		Tier     Tier              `json:"tier"`
	}{p.Evidence, p.Action, p.Params, p.Diff, p.Tier})
	return b
}

// HandleAlert takes one change of an alert: a new active alert may start a playbook;
// an acknowledged one stops automation on it; a resolved one voids its pending
// approvals. It runs the steps that need no approval before it returns, so callers
// that must return quickly call it on a goroutine of their own.
func (e *Engine) HandleAlert(ctx context.Context, a patrol.Alert) { e.handle(ctx, a, false) }

// Observe is HandleAlert that returns at once: the change is taken in order, and the
// steps it starts run in the background (Wait waits for them). Feed it the changes of
// alerts in the order they happen.
func (e *Engine) Observe(ctx context.Context, a patrol.Alert) { e.handle(ctx, a, true) }

func (e *Engine) handle(ctx context.Context, a patrol.Alert, async bool) {
	defer e.save(ctx)
	e.mu.Lock()
	r := e.runs[a.ID]
	if r != nil {
		r.alert = a
	}
	switch {
	case a.State == patrol.AlertResolved:
		if r != nil && r.stopped == "" {
			r.stopped = "the alert resolved"
			e.voidLocked(ctx, a.ID, "the alert resolved")
		}
		// A resolved alert never changes again: forget it (a step still running keeps
		// its own reference).
		delete(e.runs, a.ID)
		e.mu.Unlock()
		return
	case a.State == patrol.AlertAcknowledged:
		if r != nil && r.stopped == "" && r.pb != nil {
			r.stopped = "acknowledged by " + a.AckedBy + ": a human has taken the alert"
			e.voidLocked(ctx, a.ID, r.stopped)
			_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindControl, DecisionID: r.id, Alert: a.Fingerprint, Target: a.Target,
				Playbook: r.pb.Name, Outcome: "stopped", Reasons: []string{"automation stops on this alert: " + r.stopped}})
		} else if r == nil {
			e.runs[a.ID] = &run{id: newID(), alert: a, stopped: "acknowledged", finished: true}
		}
		e.mu.Unlock()
		return
	case a.State != patrol.AlertPending && a.State != patrol.AlertFiring:
		e.mu.Unlock()
		return // silenced or flapping: muted by people or by instability, not acted on
	case r != nil:
		e.mu.Unlock()
		return // already handled
	}
	r = &run{id: newID(), alert: a}
	e.runs[a.ID] = r
	pb, reasons := e.match(a)
	if pb == nil {
		r.finished = true
		e.mu.Unlock()
		why := append([]string{"did nothing: no playbook matches this alert"}, reasons...)
		_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindDecision, DecisionID: r.id, Alert: a.Fingerprint, Target: a.Target,
			Outcome: "no playbook", Reasons: why})
		return
	}
	r.pb = pb
	for _, s := range pb.Steps {
		act, _ := newAction(s, e.deps.Env) // checked in New
		r.actions = append(r.actions, act)
	}
	e.mu.Unlock()
	if async {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			ctx := context.WithoutCancel(ctx)
			defer e.save(ctx)
			e.runFrom(ctx, r, 0, reasons)
		}()
		return
	}
	e.runFrom(ctx, r, 0, reasons)
}

// gate is what policy says about a step.
type gate int

const (
	gateRun gate = iota
	gateAsk
	gateRecordOnly
	gateStop
)

// decide applies mode, kill switch, breakers and tiers to a plan. It holds e.mu.
func (e *Engine) decideLocked(ctx context.Context, r *run, p Plan) (gate, []string) {
	mode := r.pb.Mode
	if mode == "" {
		mode = PlaybookShadow
	}
	tierWhy := tierReason(p.Tier, mode)
	switch {
	case r.stopped != "":
		return gateStop, []string{"did nothing: " + r.stopped}
	case e.cfg.Mode == ModeOff:
		return gateRecordOnly, []string{"recommend only: automation.mode is off, so portpatrol observes and recommends", "would " + p.Diff, tierWhy}
	case mode == PlaybookShadow:
		return gateRecordOnly, []string{"shadow: playbook " + r.pb.Name + " is in shadow mode; recorded what would have run, touched nothing", "would " + p.Diff, tierWhy}
	case e.paused:
		return gateStop, []string{fmt.Sprintf("did nothing: automation is paused (by %s: %s)", e.pausedBy, e.pauseReason)}
	}
	if ok, why, _, page := e.limits.check(p.Action, p.Target, e.clk.Now()); !ok {
		if page && e.deps.Page != nil {
			e.deps.Page(ctx, "portpatrol automation: "+why+"; a human must look at "+p.Target)
		}
		return gateStop, []string{"did nothing: " + why}
	}
	if needsApproval(p.Tier, mode) {
		return gateAsk, []string{tierWhy}
	}
	return gateRun, []string{tierWhy}
}

func needsApproval(t Tier, mode string) bool {
	switch t {
	case R0:
		return false
	case R1:
		return mode != PlaybookAuto
	}
	return true
}

func tierReason(t Tier, mode string) string {
	switch t {
	case R0:
		return "tier R0 (read-only diagnostics): runs automatically"
	case R1:
		switch mode {
		case PlaybookAuto:
			return "tier R1 (reversible, single target) in a playbook in mode auto: runs automatically"
		case PlaybookShadow:
			return "tier R1 (reversible, single target): would run automatically in mode auto, and need one approver in mode suggest"
		}
		return "tier R1 (reversible, single target) in a playbook in mode " + mode + ": needs one approver"
	case R2:
		return "tier R2: needs one approver who is not the requester"
	}
	return "tier R3: needs two distinct approvers, one of them a service owner"
}

// runFrom plans and runs r's steps from step i.
func (e *Engine) runFrom(ctx context.Context, r *run, i int, reasons []string) {
	a := e.alertOf(r)
	for ; i < len(r.pb.Steps); i++ {
		p, ch, err := e.plan(ctx, r, i)
		if err != nil {
			_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindDecision, DecisionID: r.id, Alert: a.Fingerprint, Target: a.Target,
				Playbook: r.pb.Name, Step: stepName(r.pb.Steps[i], i), Outcome: "plan failed", Reasons: []string{"could not plan the step: " + err.Error()}})
			e.giveUp(ctx, r, fmt.Sprintf("step %s: could not plan: %v", stepName(r.pb.Steps[i], i), err))
			return
		}
		e.mu.Lock()
		g, why := e.decideLocked(ctx, r, p)
		e.mu.Unlock()
		why = append(append([]string(nil), reasons...), why...)
		rec := auditlog.Record{Kind: auditlog.KindDecision, DecisionID: r.id, Alert: a.Fingerprint, Target: p.Target,
			Playbook: p.Playbook, Step: p.Step, PlanHash: p.Hash, Reasons: why, Evidence: evidenceJSON(p)}
		switch g {
		case gateRecordOnly:
			rec.Outcome = "would run"
			_ = e.record(ctx, rec)
			continue // record every step it would take
		case gateStop:
			rec.Outcome = "did nothing"
			_ = e.record(ctx, rec)
			e.giveUp(ctx, r, fmt.Sprintf("step %s: %s", p.Step, strings.TrimPrefix(why[len(why)-1], "did nothing: ")))
			return
		case gateAsk:
			e.ask(ctx, r, p, rec, Actor)
			return
		}
		rec.Outcome = "run"
		if e.record(ctx, rec) != nil {
			e.giveUp(ctx, r, "step "+p.Step+": the decision could not be recorded, so nothing ran")
			return
		}
		if e.execute(ctx, r, p, ch) {
			return
		}
		reasons = nil
	}
	e.mu.Lock()
	shadow := e.cfg.Mode == ModeOff || r.pb.Mode == "" || r.pb.Mode == PlaybookShadow
	if shadow {
		r.finished = true
	}
	e.mu.Unlock()
	if !shadow {
		e.giveUp(ctx, r, "")
	}
}

// ask files an approval request for p.
func (e *Engine) ask(ctx context.Context, r *run, p Plan, rec auditlog.Record, by string) *Request {
	now := e.clk.Now()
	req := &Request{ID: newID(), DecisionID: r.id, AlertID: e.alertOf(r).ID, Plan: p, Reasons: rec.Reasons, RequestedBy: by,
		CreatedAt: now, ExpiresAt: now.Add(e.cfg.ApprovalExpiry), State: StatePending}
	req.Needs = needs(req, e.cfg.ServiceOwners)
	rec.Outcome = "awaiting approval " + req.ID
	rec.Reasons = append(rec.Reasons, "requested by "+by+"; expires at "+req.ExpiresAt.UTC().Format(time.RFC3339), "needs "+req.Needs)
	if e.record(ctx, rec) != nil {
		e.giveUp(ctx, r, "step "+p.Step+": the approval request could not be recorded")
		return nil
	}
	e.mu.Lock()
	e.requests[req.ID] = req
	e.reqRun[req.ID] = r
	e.mu.Unlock()
	return req
}

// needs says what approvals req still lacks, or "" when it has its quorum.
func needs(req *Request, owners []string) string {
	var names []string
	owner := false
	for _, a := range req.Approvals {
		names = append(names, a.By)
		if contains(a.Roles, RoleServiceOwner) || contains(owners, a.By) {
			owner = true
		}
	}
	switch req.Plan.Tier {
	case R3:
		switch {
		case len(names) >= 2 && owner:
			return ""
		case len(names) >= 2:
			return "a service owner among the approvers"
		case len(names) == 1 && owner:
			return "one more approver other than " + names[0] + " and " + req.RequestedBy
		case len(names) == 1:
			return "one more approver, a service owner, other than " + names[0] + " and " + req.RequestedBy
		}
		return "two distinct approvers other than " + req.RequestedBy + ", one of them a service owner"
	default:
		if len(names) >= 1 {
			return ""
		}
		return "one approver other than " + req.RequestedBy
	}
}

// execute re-checks, applies and verifies one step. It reports whether the alert
// recovered (or automation stopped on it), so that no further step runs.
func (e *Engine) execute(ctx context.Context, r *run, p Plan, ch Change) bool {
	act := r.actions[p.StepIndex]
	step := r.pb.Steps[p.StepIndex]
	alertNow := e.alertOf(r)
	base := auditlog.Record{DecisionID: r.id, Alert: alertNow.Fingerprint, Target: p.Target, Playbook: p.Playbook, Step: p.Step, PlanHash: p.Hash}
	rec := func(kind, outcome string, reasons ...string) {
		x := base
		x.Kind, x.Outcome, x.Reasons = kind, outcome, reasons
		_ = e.record(ctx, x)
	}
	e.mu.Lock()
	stopped := r.stopped
	e.mu.Unlock()
	if stopped != "" {
		rec(auditlog.KindExecution, "skipped", "did nothing: "+stopped)
		return true
	}
	if err := act.PreCheck(ctx, ch); err != nil {
		rec(auditlog.KindExecution, "pre-check failed", "pre-check failed right before execution, nothing was changed: "+err.Error())
		e.addTried(r, fmt.Sprintf("step %s: pre-check failed: %v", p.Step, err))
		return false
	}
	if step.PreCheck != nil {
		to := step.PreCheck.Timeout
		if to == 0 {
			to = DefaultExecTimeout
		}
		t := targetOf(alertNow)
		argv := make([]string, len(step.PreCheck.Argv))
		for i, a := range step.PreCheck.Argv {
			argv[i] = t.expand(a)
		}
		if _, err := lookPath(argv[0]); err != nil {
			rec(auditlog.KindExecution, "pre-check failed", fmt.Sprintf("pre-check command %q cannot be run: %v; nothing was changed", argv[0], err))
			e.addTried(r, fmt.Sprintf("step %s: pre-check command missing", p.Step))
			return false
		}
		if err := runArgv(ctx, argv, to, []string{"PATH"}, ""); err != nil {
			rec(auditlog.KindExecution, "pre-check failed", "pre-check command failed, nothing was changed: "+err.Error())
			e.addTried(r, fmt.Sprintf("step %s: pre-check failed", p.Step))
			return false
		}
	}
	if ok, why := e.blastCheck(ctx, alertNow, p); !ok {
		_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindDecision, DecisionID: r.id, Alert: alertNow.Fingerprint, Target: p.Target,
			Playbook: p.Playbook, Step: p.Step, PlanHash: p.Hash, Outcome: "did nothing", Reasons: []string{"did nothing: " + why}})
		e.giveUp(ctx, r, "step "+p.Step+": "+why)
		return true
	}
	e.mu.Lock()
	now := e.clk.Now()
	tripped, count := e.limits.record(p.Action, p.Target, now)
	if tripped && !e.paused {
		e.paused, e.pausedBy = true, "fleet limit"
		e.pauseReason = fmt.Sprintf("%d actions within %s, more than the limit of %d", count, e.cfg.Fleet.Window, e.cfg.Fleet.MaxActions)
	}
	pageFleet := tripped && !e.fleetPaged
	if tripped {
		e.fleetPaged = true
	}
	e.mu.Unlock()
	if pageFleet {
		_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindControl, Outcome: "paused", Reasons: []string{"automation halted: " + e.pauseReason}})
		if e.deps.Page != nil {
			e.deps.Page(ctx, "portpatrol automation halted: fleet limit: "+e.pauseReason+"; resume with `portpatrol automation resume`")
		}
	}
	if err := act.Apply(ctx, ch); err != nil {
		rec(auditlog.KindExecution, "failed", p.Diff+": "+err.Error())
		e.rollback(ctx, r, p, ch, rec)
		e.addTried(r, fmt.Sprintf("step %s (%s): failed: %v; rolled back", p.Step, p.Diff, err))
		return false
	}
	rec(auditlog.KindExecution, "applied", "ran: "+p.Diff)
	if p.Tier == R0 {
		rec(auditlog.KindVerification, "not verified", "tier R0 is read-only: nothing to verify, the next step decides")
		e.addTried(r, fmt.Sprintf("step %s: %s (diagnostics)", p.Step, p.Diff))
		return false
	}
	ok, detail := e.verify(ctx, r, act, ch, step.Verify)
	if !ok {
		rec(auditlog.KindVerification, "failed", "verification failed: "+detail)
		e.rollback(ctx, r, p, ch, rec)
		e.addTried(r, fmt.Sprintf("step %s (%s): verification failed (%s); rolled back", p.Step, p.Diff, detail))
		return false
	}
	text := fmt.Sprintf("recovered by playbook %s step %s", p.Playbook, p.Step)
	rec(auditlog.KindVerification, "recovered", "verification passed: "+detail, text)
	e.mu.Lock()
	r.finished = true
	a := r.alert
	e.mu.Unlock()
	if e.deps.Resolve != nil {
		e.deps.Resolve(ctx, a, text)
	}
	return true
}

func (e *Engine) rollback(ctx context.Context, r *run, p Plan, ch Change, rec func(kind, outcome string, reasons ...string)) {
	if err := r.actions[p.StepIndex].Rollback(ctx, ch); err != nil {
		rec(auditlog.KindRollback, "failed", "rollback failed: "+err.Error())
		return
	}
	rec(auditlog.KindRollback, "rolled back", "rolled back "+p.Diff)
}

// verify checks the action's own effect, then probes the target until healthy within
// the window.
func (e *Engine) verify(ctx context.Context, r *run, act Action, ch Change, v Verify) (bool, string) {
	if err := act.Verify(ctx, ch); err != nil {
		return false, err.Error()
	}
	if e.deps.Probe == nil {
		return true, "the action's change is in place (no probe to re-check the target)"
	}
	window, every := v.Window, v.Interval
	if window == 0 {
		window = DefaultVerifyWindow
	}
	if every == 0 {
		every = DefaultVerifyInterval
	}
	start := e.clk.Now()
	tries := 0
	var detail string
	for {
		tries++
		e.mu.Lock()
		a := r.alert
		e.mu.Unlock()
		var ok bool
		ok, detail = e.deps.Probe(ctx, a)
		if ok {
			return true, fmt.Sprintf("%s healthy after %d probe(s): %s", a.Target, tries, detail)
		}
		if e.clk.Now().Sub(start)+every > window || e.clk.Sleep(ctx, every) != nil {
			break
		}
	}
	return false, fmt.Sprintf("%s still unhealthy after %d probe(s) within %s: %s", e.alertOf(r).Target, tries, window, detail)
}

// alertOf returns r's alert as last seen.
func (e *Engine) alertOf(r *run) patrol.Alert {
	e.mu.Lock()
	defer e.mu.Unlock()
	return r.alert
}

func (e *Engine) addTried(r *run, s string) {
	e.mu.Lock()
	r.tried = append(r.tried, s)
	e.mu.Unlock()
}

// giveUp ends r: what was tried goes with the alert's escalation.
func (e *Engine) giveUp(ctx context.Context, r *run, last string) {
	e.mu.Lock()
	if last != "" {
		r.tried = append(r.tried, last)
	}
	r.finished = true
	tried := strings.Join(r.tried, "; ")
	a := r.alert
	e.mu.Unlock()
	if tried == "" {
		return
	}
	_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindDecision, DecisionID: r.id, Alert: a.Fingerprint, Target: a.Target,
		Playbook: r.pb.Name, Outcome: "escalated", Reasons: []string{"not recovered by automation; the alert escalates as usual", "tried: " + tried}})
	if e.deps.Escalate != nil {
		e.deps.Escalate(ctx, a, "tried: "+tried)
	}
}

// voidLocked voids the pending requests of an alert. It holds e.mu.
func (e *Engine) voidLocked(ctx context.Context, alertID, why string) {
	for _, req := range e.requests {
		if req.AlertID == alertID && req.State == StatePending {
			req.State, req.Reason = StateVoid, why
			_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindExpiry, DecisionID: req.DecisionID, Alert: req.Plan.Evidence.Alert,
				Target: req.Plan.Target, Playbook: req.Plan.Playbook, Step: req.Plan.Step, PlanHash: req.Plan.Hash, Outcome: "void",
				Reasons: []string{"approval request " + req.ID + " is void: " + why}})
		}
	}
}

// Requests lists approval requests, pending first, newest first within each state.
func (e *Engine) Requests() []Request {
	e.Tick(context.Background())
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]Request, 0, len(e.requests))
	for _, r := range e.requests {
		c := *r
		c.Approvals = append([]Approval(nil), r.Approvals...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].State == StatePending) != (out[j].State == StatePending) {
			return out[i].State == StatePending
		}
		return out[i].CreatedAt.After(out[j].CreatedAt)
	})
	return out
}

// Tick expires pending requests whose time has passed.
func (e *Engine) Tick(ctx context.Context) {
	defer e.save(ctx)
	e.mu.Lock()
	gone := e.expireLocked(ctx)
	// Decided requests are shown for a day, then forgotten; the audit chain keeps them.
	for id, req := range e.requests {
		if req.State != StatePending && e.clk.Now().Sub(req.ExpiresAt) > keepDecided {
			delete(e.requests, id)
			delete(e.reqRun, id)
		}
	}
	e.mu.Unlock()
	e.giveUpAll(ctx, gone)
}

func (e *Engine) expireLocked(ctx context.Context) []*run {
	now := e.clk.Now()
	var gone []*run
	for _, req := range e.requests {
		if req.State == StatePending && !now.Before(req.ExpiresAt) {
			req.State, req.Reason = StateExpired, "expired at "+req.ExpiresAt.UTC().Format(time.RFC3339)
			_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindExpiry, DecisionID: req.DecisionID, Alert: req.Plan.Evidence.Alert,
				Target: req.Plan.Target, Playbook: req.Plan.Playbook, Step: req.Plan.Step, PlanHash: req.Plan.Hash, Outcome: "expired",
				Reasons: []string{fmt.Sprintf("approval request %s expired unanswered after %s", req.ID, e.cfg.ApprovalExpiry)}})
			if r := e.reqRun[req.ID]; r != nil {
				r.tried = append(r.tried, fmt.Sprintf("step %s: approval request %s expired", req.Plan.Step, req.ID))
				gone = append(gone, r)
			}
		}
	}
	return gone
}

// giveUpAll ends runs whose requests expired. It is called without e.mu.
func (e *Engine) giveUpAll(ctx context.Context, rs []*run) {
	for _, r := range rs {
		e.giveUp(ctx, r, "")
	}
}

// DecisionError is a refused approval, denial or break-glass, with the request's state.
type DecisionError struct {
	ID     string
	Err    error  // one of the Err values
	Reason string // in words
}

func (e *DecisionError) Error() string { return "approval request " + e.ID + ": " + e.Reason }

// Unwrap returns the Err value.
func (e *DecisionError) Unwrap() error { return e.Err }

// check finds a pending request and checks it is still valid. It holds e.mu.
func (e *Engine) checkLocked(ctx context.Context, id string) (*Request, *run, error) {
	req, ok := e.requests[id]
	if !ok {
		return nil, nil, &DecisionError{ID: id, Err: ErrNotFound, Reason: "no such approval request"}
	}
	if gone := e.expireLocked(ctx); len(gone) > 0 {
		e.mu.Unlock()
		e.giveUpAll(ctx, gone)
		e.mu.Lock()
	}
	r := e.reqRun[id]
	switch req.State {
	case StatePending:
	case StateExpired:
		return nil, nil, &DecisionError{ID: id, Err: ErrExpired, Reason: req.Reason}
	case StateVoid:
		return nil, nil, &DecisionError{ID: id, Err: ErrVoid, Reason: "void: " + req.Reason}
	default:
		return nil, nil, &DecisionError{ID: id, Err: ErrDecided, Reason: "already " + req.State}
	}
	if r.alert.State == patrol.AlertResolved || r.alert.State == patrol.AlertAcknowledged || r.stopped != "" {
		why := r.stopped
		if why == "" {
			why = "the alert is " + string(r.alert.State)
		}
		req.State, req.Reason = StateVoid, why
		return nil, nil, &DecisionError{ID: id, Err: ErrVoid, Reason: "void: " + why}
	}
	return req, r, nil
}

// Approve adds an approval to a pending request. A request whose quorum is reached is
// checked against the target once more (drift), then run in the background. Refusals
// are *DecisionError values wrapping ErrNotFound, ErrExpired, ErrVoid, ErrDecided,
// ErrOwnRequest, ErrTwice or ErrDrifted; each refusal is recorded.
func (e *Engine) Approve(ctx context.Context, id string, by Approver, comment string) (Request, error) {
	return e.decide(ctx, id, by, comment, false)
}

// BreakGlass runs a pending request without its quorum. It needs a reason, and is
// recorded as a control entry flagged for review.
func (e *Engine) BreakGlass(ctx context.Context, id string, by Approver, reason string) (Request, error) {
	if strings.TrimSpace(reason) == "" {
		return Request{}, &DecisionError{ID: id, Err: ErrNoReason, Reason: "break-glass needs a reason"}
	}
	return e.decide(ctx, id, by, reason, true)
}

func (e *Engine) decide(ctx context.Context, id string, by Approver, comment string, breakGlass bool) (Request, error) {
	defer e.save(ctx)
	e.mu.Lock()
	req, r, err := e.checkLocked(ctx, id)
	refuse := func(err error) (Request, error) {
		var de *DecisionError
		errors.As(err, &de)
		rec := auditlog.Record{Kind: auditlog.KindDenial, Actor: by.Name, Outcome: "refused", Reasons: []string{"approval by " + by.who() + " refused: " + de.Reason}}
		if req != nil {
			rec.DecisionID, rec.Alert, rec.Target, rec.Playbook, rec.Step, rec.PlanHash = req.DecisionID, req.Plan.Evidence.Alert, req.Plan.Target, req.Plan.Playbook, req.Plan.Step, req.Plan.Hash
		} else if q, ok := e.requests[id]; ok {
			rec.DecisionID, rec.PlanHash = q.DecisionID, q.Plan.Hash
		}
		_ = e.record(ctx, rec)
		e.mu.Unlock()
		return Request{}, err
	}
	if err != nil {
		return refuse(err)
	}
	if by.Name == "" || by.Name == Actor {
		return refuse(&DecisionError{ID: id, Err: ErrOwnRequest, Reason: fmt.Sprintf("%q cannot approve", by.Name)})
	}
	if by.Name == req.RequestedBy {
		return refuse(&DecisionError{ID: id, Err: ErrOwnRequest, Reason: by.Name + " requested this plan; nobody approves their own request"})
	}
	for _, a := range req.Approvals {
		if a.By == by.Name {
			return refuse(&DecisionError{ID: id, Err: ErrTwice, Reason: by.Name + " has already approved; a second approver must be someone else"})
		}
	}
	// The plan as it would be made now must be the plan that was asked for.
	e.mu.Unlock()
	now, _, perr := e.plan(ctx, r, req.Plan.StepIndex)
	e.mu.Lock()
	if req.State != StatePending {
		return refuse(&DecisionError{ID: id, Err: ErrDecided, Reason: "already " + req.State})
	}
	if perr != nil || now.Hash != req.Plan.Hash {
		why := "the plan no longer matches: "
		if perr != nil {
			why += perr.Error()
		} else {
			why += driftWords(req.Plan, now)
		}
		req.State, req.Reason = StateVoid, why
		_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindExpiry, DecisionID: req.DecisionID, Alert: req.Plan.Evidence.Alert, Target: req.Plan.Target,
			Playbook: req.Plan.Playbook, Step: req.Plan.Step, PlanHash: req.Plan.Hash, Outcome: "void", Reasons: []string{"approval request " + id + " is void: " + why}})
		return refuse(&DecisionError{ID: id, Err: ErrDrifted, Reason: why})
	}
	roles := append([]string(nil), by.Roles...)
	if contains(e.cfg.ServiceOwners, by.Name) && !contains(roles, RoleServiceOwner) {
		roles = append(roles, RoleServiceOwner)
	}
	req.Approvals = append(req.Approvals, Approval{By: by.Name, Roles: roles, At: e.clk.Now(), Comment: comment, BreakGlass: breakGlass, Via: by.Via})
	req.Needs = needs(req, e.cfg.ServiceOwners)
	base := auditlog.Record{DecisionID: req.DecisionID, Alert: req.Plan.Evidence.Alert, Target: req.Plan.Target, Playbook: req.Plan.Playbook,
		Step: req.Plan.Step, PlanHash: req.Plan.Hash, Actor: by.Name}
	if breakGlass {
		base.Kind, base.Outcome = auditlog.KindControl, "break-glass"
		base.Reasons = []string{"break-glass by " + by.who() + ": " + comment, "flagged for review: ran without its quorum (" + req.Needs + ")"}
		req.Needs = ""
	} else {
		base.Kind, base.Outcome = auditlog.KindApproval, "approved"
		base.Reasons = []string{"approved by " + by.who() + rolesWords(roles) + ifText(comment != "", ": "+comment)}
		if req.Needs != "" {
			base.Reasons = append(base.Reasons, "still needs "+req.Needs)
		}
	}
	if err := e.record(ctx, base); err != nil {
		req.Approvals = req.Approvals[:len(req.Approvals)-1]
		req.Needs = needs(req, e.cfg.ServiceOwners)
		e.mu.Unlock()
		return Request{}, err
	}
	if req.Needs == "" {
		req.State = StateApproved
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			ctx := context.WithoutCancel(ctx)
			defer e.save(ctx)
			p, ch, err := e.plan(ctx, r, req.Plan.StepIndex)
			if err != nil || p.Hash != req.Plan.Hash {
				_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindExecution, DecisionID: req.DecisionID, Target: req.Plan.Target,
					Playbook: req.Plan.Playbook, Step: req.Plan.Step, PlanHash: req.Plan.Hash, Outcome: "skipped",
					Reasons: []string{"did nothing: the plan drifted between approval and execution"}})
				e.giveUp(ctx, r, "step "+req.Plan.Step+": plan drifted after approval")
				return
			}
			if !e.execute(ctx, r, p, ch) {
				e.runFrom(ctx, r, req.Plan.StepIndex+1, nil)
			}
		}()
	}
	out := *req
	out.Approvals = append([]Approval(nil), req.Approvals...)
	e.mu.Unlock()
	return out, nil
}

func ifText(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

func rolesWords(roles []string) string {
	if len(roles) == 0 {
		return ""
	}
	return " (" + strings.Join(roles, ", ") + ")"
}

// driftWords says what differs between two plans.
func driftWords(was, now Plan) string {
	var d []string
	if was.PolicyVersion != now.PolicyVersion {
		d = append(d, fmt.Sprintf("policy version %s is now %s", was.PolicyVersion, now.PolicyVersion))
	}
	if was.Target != now.Target {
		d = append(d, fmt.Sprintf("target %s is now %s", was.Target, now.Target))
	}
	if was.Evidence.TargetState != now.Evidence.TargetState {
		d = append(d, fmt.Sprintf("target state was %q, is now %q", was.Evidence.TargetState, now.Evidence.TargetState))
	}
	if was.Evidence.Severity != now.Evidence.Severity || was.Evidence.Class != now.Evidence.Class {
		d = append(d, fmt.Sprintf("alert was %s %s, is now %s %s", was.Evidence.Class, was.Evidence.Severity, now.Evidence.Class, now.Evidence.Severity))
	}
	if len(d) == 0 {
		d = append(d, "the parameters differ")
	}
	return strings.Join(d, "; ")
}

// Deny refuses a pending request in the name of by.Name; the record says where from
// (by.Via) and why.
func (e *Engine) Deny(ctx context.Context, id string, by Approver, reason string) (Request, error) {
	defer e.save(ctx)
	e.mu.Lock()
	req, r, err := e.checkLocked(ctx, id)
	if err != nil {
		e.mu.Unlock()
		return Request{}, err
	}
	req.State, req.Reason = StateDenied, "denied by "+by.who()+ifText(reason != "", ": "+reason)
	_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindDenial, Actor: by.Name, DecisionID: req.DecisionID, Alert: req.Plan.Evidence.Alert,
		Target: req.Plan.Target, Playbook: req.Plan.Playbook, Step: req.Plan.Step, PlanHash: req.Plan.Hash, Outcome: "denied",
		Reasons: []string{req.Reason}})
	r.tried = append(r.tried, fmt.Sprintf("step %s: %s", req.Plan.Step, req.Reason))
	out := *req
	out.Approvals = append([]Approval(nil), req.Approvals...)
	e.mu.Unlock()
	e.giveUp(ctx, r, "")
	return out, nil
}

// Request files an approval request for a playbook's step on an alert on behalf of a
// person (a run asked for by hand). It needs the approvals its tier needs from others.
func (e *Engine) RequestRun(ctx context.Context, a patrol.Alert, playbook string, step int, by string) (Request, error) {
	defer e.save(ctx)
	e.mu.Lock()
	var pb *Playbook
	for i := range e.cfg.Playbooks {
		if e.cfg.Playbooks[i].Name == playbook {
			pb = &e.cfg.Playbooks[i]
		}
	}
	if pb == nil || step < 0 || step >= len(pb.Steps) {
		e.mu.Unlock()
		return Request{}, fmt.Errorf("no playbook %q with a step %d", playbook, step)
	}
	r := e.runs[a.ID]
	if r == nil || r.pb != pb {
		r = &run{id: newID(), alert: a, pb: pb}
		for _, s := range pb.Steps {
			act, _ := newAction(s, e.deps.Env)
			r.actions = append(r.actions, act)
		}
		e.runs[a.ID] = r
	}
	e.mu.Unlock()
	p, _, err := e.plan(ctx, r, step)
	if err != nil {
		return Request{}, err
	}
	rec := auditlog.Record{Kind: auditlog.KindDecision, Actor: by, DecisionID: r.id, Alert: a.Fingerprint, Target: p.Target, Playbook: p.Playbook,
		Step: p.Step, PlanHash: p.Hash, Evidence: evidenceJSON(p),
		Reasons: []string{"requested by hand by " + by, tierReason(p.Tier, PlaybookSuggest)}}
	req := e.ask(ctx, r, p, rec, by)
	if req == nil {
		return Request{}, errors.New("the request could not be recorded")
	}
	return *req, nil
}

// Pause throws the kill switch: nothing runs until Resume.
func (e *Engine) Pause(ctx context.Context, by, reason string) error {
	defer e.save(ctx)
	e.mu.Lock()
	e.paused, e.pausedBy, e.pauseReason = true, by, reason
	e.mu.Unlock()
	return e.record(ctx, auditlog.Record{Kind: auditlog.KindControl, Actor: by, Outcome: "paused", Reasons: []string{"automation paused by " + by + ifText(reason != "", ": "+reason)}})
}

// Resume lifts the kill switch (and a fleet-limit halt).
func (e *Engine) Resume(ctx context.Context, by string) error {
	defer e.save(ctx)
	e.mu.Lock()
	e.paused, e.pausedBy, e.pauseReason, e.fleetPaged = false, "", "", false
	e.mu.Unlock()
	return e.record(ctx, auditlog.Record{Kind: auditlog.KindControl, Actor: by, Outcome: "resumed", Reasons: []string{"automation resumed by " + by}})
}

// State is the engine's live state.
type State struct {
	Mode        string         `json:"mode"`
	Paused      bool           `json:"paused"`
	PausedBy    string         `json:"paused_by,omitempty"`
	PauseReason string         `json:"pause_reason,omitempty"`
	Pending     int            `json:"pending"`
	Playbooks   []PlaybookInfo `json:"playbooks"`
	Breakers    []BreakerState `json:"breakers"`
	FleetWindow string         `json:"fleet_window"`
	FleetCount  int            `json:"fleet_count"`
	FleetLimit  int            `json:"fleet_limit"`
}

// PlaybookInfo summarises a playbook for State.
type PlaybookInfo struct {
	Name  string   `json:"name"`
	Mode  string   `json:"mode"`
	Steps []string `json:"steps"`
}

// State returns the live state.
func (e *Engine) State() State {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clk.Now()
	s := State{Mode: e.cfg.Mode, Paused: e.paused, PausedBy: e.pausedBy, PauseReason: e.pauseReason, Breakers: e.limits.states(now),
		FleetWindow: e.cfg.Fleet.Window.String(), FleetLimit: e.cfg.Fleet.MaxActions}
	for _, t := range e.limits.fleet {
		if t.After(now.Add(-e.cfg.Fleet.Window)) {
			s.FleetCount++
		}
	}
	for _, r := range e.requests {
		if r.State == StatePending {
			s.Pending++
		}
	}
	for _, pb := range e.cfg.Playbooks {
		mode := pb.Mode
		if mode == "" {
			mode = PlaybookShadow
		}
		info := PlaybookInfo{Name: pb.Name, Mode: mode}
		for i, st := range pb.Steps {
			info.Steps = append(info.Steps, fmt.Sprintf("%s: %s %s", stepName(st, i), st.Action, st.Risk))
		}
		s.Playbooks = append(s.Playbooks, info)
	}
	return s
}
