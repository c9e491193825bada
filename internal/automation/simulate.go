package automation

import (
	"fmt"
	"sort"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// SimStep is what one step would have done for one alert.
type SimStep struct {
	Step    string `json:"step"`
	Action  string `json:"action"`
	Tier    Tier   `json:"tier"`
	Diff    string `json:"diff"`
	Outcome string `json:"outcome"` // would run, needs approval, breaker, fleet limit
	Detail  string `json:"detail"`
}

// SimResult is what automation would have done for one alert.
type SimResult struct {
	Alert    patrol.Alert `json:"alert"`
	Playbook string       `json:"playbook,omitempty"`
	Mode     string       `json:"mode,omitempty"` // the playbook's configured mode
	Reasons  []string     `json:"reasons"`
	Steps    []SimStep    `json:"steps,omitempty"`
}

// The outcomes of a simulated step.
const (
	SimRun      = "would run"
	SimApproval = "needs approval"
	SimBreaker  = "breaker would trip"
	SimFleet    = "fleet limit would halt"
)

// Simulate replays alerts, oldest first, against the playbooks as if automation were
// on and every playbook promoted to mode auto: the sandbox before anything is enabled.
// It touches nothing: plans are made, no action is checked or run. A step that would run
// is assumed to recover its alert (so later steps are not counted), and counts as an
// attempt for the breakers and the fleet limit at the alert's start.
func Simulate(cfg Config, alerts []patrol.Alert) ([]SimResult, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Engine{cfg: cfg}
	lim := newLimits(cfg)
	sorted := append([]patrol.Alert(nil), alerts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].StartsAt.Before(sorted[j].StartsAt) })
	var out []SimResult
	halted := false
	for _, a := range sorted {
		res := SimResult{Alert: a}
		pb, reasons := e.match(a)
		res.Reasons = reasons
		if pb == nil {
			res.Reasons = append([]string{"no playbook matches"}, reasons...)
			out = append(out, res)
			continue
		}
		res.Playbook, res.Mode = pb.Name, pb.Mode
		if res.Mode == "" {
			res.Mode = PlaybookShadow
		}
		for i, s := range pb.Steps {
			act, err := newAction(s, ActionEnv{})
			if err != nil {
				return nil, err
			}
			ch, err := act.Plan(targetOf(a))
			if err != nil {
				return nil, fmt.Errorf("plan %s step %s: %w", pb.Name, stepName(s, i), err)
			}
			st := SimStep{Step: stepName(s, i), Action: s.Action, Tier: s.Risk, Diff: ch.Diff}
			at := a.StartsAt
			if at.IsZero() {
				at = time.Now()
			}
			if halted {
				st.Outcome, st.Detail = SimFleet, "automation already halted by the fleet limit"
				res.Steps = append(res.Steps, st)
				break
			}
			if ok, why, _, _ := lim.check(s.Action, ch.Target, at); !ok {
				st.Outcome, st.Detail = SimBreaker, why
				res.Steps = append(res.Steps, st)
				break
			}
			if needsApproval(s.Risk, PlaybookAuto) {
				req := &Request{Plan: Plan{Tier: s.Risk}, RequestedBy: Actor}
				st.Outcome, st.Detail = SimApproval, "needs "+needs(req, cfg.ServiceOwners)
				res.Steps = append(res.Steps, st)
				break
			}
			st.Outcome, st.Detail = SimRun, tierReason(s.Risk, PlaybookAuto)
			if tripped, n := lim.record(s.Action, ch.Target, at); tripped {
				halted = true
				st.Detail += fmt.Sprintf("; then %d actions within %s exceed the fleet limit of %d: automation would halt and page",
					n, cfg.Fleet.Window, cfg.Fleet.MaxActions)
			}
			res.Steps = append(res.Steps, st)
			if s.Risk != R0 {
				break // assumed to recover the alert
			}
		}
		out = append(out, res)
	}
	return out, nil
}
