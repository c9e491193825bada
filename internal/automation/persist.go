package automation

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// StateStore keeps the engine's state across restarts: the breakers' attempts, the
// fleet-wide count, the kill switch and the pending approval requests.
type StateStore interface {
	// LoadState returns what SaveState saved last, or nil when nothing was.
	LoadState(ctx context.Context) ([]byte, error)
	SaveState(ctx context.Context, b []byte) error
}

// savedState is what the engine keeps in its StateStore.
type savedState struct {
	Paused      bool           `json:"paused"`
	PausedBy    string         `json:"paused_by,omitempty"`
	PauseReason string         `json:"pause_reason,omitempty"`
	FleetPaged  bool           `json:"fleet_paged,omitempty"`
	Breakers    []savedBreaker `json:"breakers"`
	Fleet       []time.Time    `json:"fleet"`
	Requests    []savedRequest `json:"requests"`
}

type savedBreaker struct {
	Action   string      `json:"action"`
	Target   string      `json:"target"`
	Attempts []time.Time `json:"attempts"`
	Paged    bool        `json:"paged,omitempty"`
}

// savedRequest is a pending request with the run it belongs to.
type savedRequest struct {
	Request Request      `json:"request"`
	Alert   patrol.Alert `json:"alert"`
	Tried   []string     `json:"tried,omitempty"`
}

// persister writes the state after the changes that were recorded; saves are serialised
// so that an older state never overwrites a newer one.
// dirty is set without a lock, since record runs under e.mu at times.
type persister struct {
	mu    sync.Mutex // serialises saves; taken before e.mu
	dirty atomic.Bool
}

// markDirty notes that the state may have changed; record calls it.
func (e *Engine) markDirty() { e.persist.dirty.Store(true) }

// save writes the state when something was recorded since the last save. It must be
// called without e.mu.
func (e *Engine) save(ctx context.Context) {
	if e.deps.State == nil {
		return
	}
	e.persist.mu.Lock()
	defer e.persist.mu.Unlock()
	if !e.persist.dirty.Swap(false) {
		return
	}
	e.mu.Lock()
	s := savedState{Paused: e.paused, PausedBy: e.pausedBy, PauseReason: e.pauseReason, FleetPaged: e.fleetPaged,
		Fleet: append([]time.Time{}, e.limits.fleet...), Breakers: []savedBreaker{}, Requests: []savedRequest{}}
	for k, b := range e.limits.breakers {
		if len(b.attempts) > 0 {
			s.Breakers = append(s.Breakers, savedBreaker{Action: k[0], Target: k[1], Attempts: append([]time.Time{}, b.attempts...), Paged: b.paged})
		}
	}
	for id, req := range e.requests {
		if req.State != StatePending {
			continue
		}
		sr := savedRequest{Request: *req}
		if r := e.reqRun[id]; r != nil {
			sr.Alert, sr.Tried = r.alert, append([]string(nil), r.tried...)
		}
		s.Requests = append(s.Requests, sr)
	}
	e.mu.Unlock()
	b, err := json.Marshal(s)
	if err == nil {
		err = e.deps.State.SaveState(ctx, b)
	}
	if err != nil {
		e.persist.dirty.Store(true) // try again at the next save
		e.log.Error("automation: could not save the breakers and pending approvals", "err", err)
	}
}

// Restore reads the state a previous engine saved: the breakers' attempts, the
// fleet-wide count, the kill switch and the pending approval requests, which can then be
// approved, denied or expire as before the restart. A request whose playbook or step is
// no longer configured is voided. What was restored is recorded. Call it once, before
// the first alert.
func (e *Engine) Restore(ctx context.Context) error {
	if e.deps.State == nil {
		return nil
	}
	b, err := e.deps.State.LoadState(ctx)
	if err != nil {
		return fmt.Errorf("automation: restore: %w", err)
	}
	if len(b) == 0 {
		return nil
	}
	var s savedState
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("automation: restore: the saved state is not readable: %w", err)
	}
	var voids []auditlog.Record
	e.mu.Lock()
	if s.Paused && !e.paused {
		e.paused, e.pausedBy, e.pauseReason = true, s.PausedBy, s.PauseReason
	}
	e.fleetPaged = s.FleetPaged
	e.limits.fleet = append([]time.Time(nil), s.Fleet...)
	for _, sb := range s.Breakers {
		e.limits.breakers[[2]string{sb.Action, sb.Target}] = &breaker{attempts: sb.Attempts, paged: sb.Paged}
	}
	restored := 0
	for _, sr := range s.Requests {
		req := sr.Request
		var pb *Playbook
		for i := range e.cfg.Playbooks {
			if e.cfg.Playbooks[i].Name == req.Plan.Playbook {
				pb = &e.cfg.Playbooks[i]
			}
		}
		if pb == nil || req.Plan.StepIndex < 0 || req.Plan.StepIndex >= len(pb.Steps) || stepName(pb.Steps[req.Plan.StepIndex], req.Plan.StepIndex) != req.Plan.Step {
			voids = append(voids, auditlog.Record{Kind: auditlog.KindExpiry, DecisionID: req.DecisionID, Alert: req.Plan.Evidence.Alert,
				Target: req.Plan.Target, Playbook: req.Plan.Playbook, Step: req.Plan.Step, PlanHash: req.Plan.Hash, Outcome: "void",
				Reasons: []string{"approval request " + req.ID + " is void: after a restart its playbook step " + req.Plan.Playbook + "/" + req.Plan.Step + " is no longer configured"}})
			continue
		}
		r := e.runs[sr.Alert.ID]
		if r == nil {
			r = &run{id: req.DecisionID, alert: sr.Alert, pb: pb, tried: sr.Tried}
			for _, st := range pb.Steps {
				act, _ := newAction(st, e.deps.Env) // checked in New
				r.actions = append(r.actions, act)
			}
			e.runs[sr.Alert.ID] = r
		}
		rq := req
		e.requests[rq.ID] = &rq
		e.reqRun[rq.ID] = r
		restored++
	}
	paused := e.paused
	e.mu.Unlock()
	for _, v := range voids {
		_ = e.record(ctx, v)
	}
	why := fmt.Sprintf("restored from the store after a restart: %d pending approval request(s), %d breaker(s), %d action(s) in the fleet window",
		restored, len(s.Breakers), len(s.Fleet))
	if paused && s.Paused {
		why += "; automation stays paused (by " + s.PausedBy + ": " + s.PauseReason + ")"
	}
	_ = e.record(ctx, auditlog.Record{Kind: auditlog.KindControl, Outcome: "restored", Reasons: []string{why}})
	e.save(ctx)
	return nil
}
