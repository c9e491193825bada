package automation

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/auditlog"
)

// Review is the permission review: what the configuration allows each playbook to do,
// and what the audit chain says automation did within [From, To]: what ran, who approved
// and denied, what was rolled back, which breakers stopped it, and every break-glass,
// flagged for review. Build it with NewReview, Add each entry, then Finish.
type Review struct {
	From          time.Time        `json:"from"`
	To            time.Time        `json:"to"`
	Mode          string           `json:"mode"`
	Paused        bool             `json:"paused"`
	PolicyVersion string           `json:"policy_version"`
	ServiceOwners []string         `json:"service_owners"`
	Playbooks     []ReviewPlaybook `json:"playbooks"`
	// Entries is how many chain entries fell within the window; Head the last one's place.
	Entries int64 `json:"entries"`
	// Ran are the executions (applied, failed, pre-check failed).
	Ran []ReviewEvent `json:"ran"`
	// Decisions are approvals, denials and refused approvals, with who made them.
	Decisions []ReviewEvent `json:"decisions"`
	// RolledBack are the rollbacks, done or failed.
	RolledBack []ReviewEvent `json:"rolled_back"`
	// Breakers are the times a breaker, back-off or the fleet limit stopped automation.
	Breakers []ReviewEvent `json:"breakers"`
	// BreakGlass are the plans run without their quorum: each one is for review.
	BreakGlass []ReviewEvent `json:"break_glass"`
	// Controls are pauses and resumes of the kill switch.
	Controls []ReviewEvent `json:"controls"`
	// Unconfigured names playbooks the chain shows acting that the configuration no
	// longer has.
	Unconfigured []string `json:"unconfigured"`
	// Recent are the last entries of the window, of every kind, newest first (at most
	// RecentEntries): the audit trail the dashboard shows.
	Recent []ReviewEvent `json:"recent"`
	// Chain says whether the whole chain verified when the review was made; empty when
	// it was not checked.
	Chain string `json:"chain,omitempty"`

	idx map[string]int
}

// RecentEntries is how many entries Review.Recent keeps.
const RecentEntries = 50

// ReviewPlaybook is what one playbook may do, and how often it did what.
type ReviewPlaybook struct {
	Name    string       `json:"name"`
	Mode    string       `json:"mode"`
	Trigger string       `json:"trigger"`
	Rollout []string     `json:"rollout"`
	Steps   []ReviewStep `json:"steps"`
	// Counts are the playbook's chain entries by "kind outcome" ("execution applied").
	Counts map[string]int `json:"counts"`
}

// ReviewStep is one step's permission: its action and tier, what it could change, and
// who has to agree before it does.
type ReviewStep struct {
	Name     string `json:"name"`
	Action   string `json:"action"`
	Tier     Tier   `json:"tier"`
	Could    string `json:"could"`
	Rollback string `json:"rollback,omitempty"`
	Allowed  string `json:"allowed"`
}

// ReviewEvent is one chain entry as the review shows it.
type ReviewEvent struct {
	Seq        int64     `json:"seq"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	Outcome    string    `json:"outcome"`
	DecisionID string    `json:"decision_id,omitempty"`
	Playbook   string    `json:"playbook,omitempty"`
	Step       string    `json:"step,omitempty"`
	Target     string    `json:"target,omitempty"`
	Actor      string    `json:"actor"`
	Reason     string    `json:"reason"`
}

// NewReview starts the review of cfg's permissions over [from, to].
func NewReview(cfg Config, from, to time.Time) *Review {
	cfg = cfg.withDefaults()
	r := &Review{From: from.UTC(), To: to.UTC(), Mode: cfg.Mode, Paused: cfg.Paused, PolicyVersion: cfg.PolicyVersion,
		ServiceOwners: append([]string{}, cfg.ServiceOwners...), idx: map[string]int{},
		Playbooks: []ReviewPlaybook{}, Ran: []ReviewEvent{}, Decisions: []ReviewEvent{}, RolledBack: []ReviewEvent{},
		Breakers: []ReviewEvent{}, BreakGlass: []ReviewEvent{}, Controls: []ReviewEvent{}, Unconfigured: []string{}, Recent: []ReviewEvent{}}
	for i, pb := range cfg.Playbooks {
		mode := pb.Mode
		if mode == "" {
			mode = PlaybookShadow
		}
		rp := ReviewPlaybook{Name: pb.Name, Mode: mode, Trigger: triggerWords(pb.Trigger), Rollout: append([]string{}, pb.Rollout...),
			Counts: map[string]int{}}
		for j, s := range pb.Steps {
			rs := ReviewStep{Name: stepName(s, j), Action: s.Action, Tier: s.Risk, Could: couldWords(s.Action, s.Params),
				Allowed: allowedWords(cfg.Mode, mode, s.Risk)}
			switch {
			case s.Action == "switch_port":
				rs.Rollback = "delete its redirect rule"
			case s.Rollback != nil:
				rs.Rollback = couldWords(s.Action, *s.Rollback)
			}
			rp.Steps = append(rp.Steps, rs)
		}
		r.Playbooks = append(r.Playbooks, rp)
		r.idx[pb.Name] = i
	}
	return r
}

// Add takes one chain entry into the review; entries outside [From, To] are ignored.
func (r *Review) Add(e auditlog.Entry) {
	if e.Time.Before(r.From) || e.Time.After(r.To) {
		return
	}
	r.Entries++
	rec := e.Record
	ev := ReviewEvent{Seq: e.Seq, Time: e.Time.UTC(), Kind: rec.Kind, Outcome: rec.Outcome, DecisionID: rec.DecisionID,
		Playbook: rec.Playbook, Step: rec.Step, Target: rec.Target, Actor: rec.Actor, Reason: strings.Join(rec.Reasons, "; ")}
	r.Recent = append(r.Recent, ev)
	if len(r.Recent) > RecentEntries {
		r.Recent = r.Recent[len(r.Recent)-RecentEntries:]
	}
	if rec.Playbook != "" {
		if i, ok := r.idx[rec.Playbook]; ok {
			outcome := rec.Outcome
			if strings.HasPrefix(outcome, "awaiting approval") {
				outcome = "awaiting approval" // the request's ID follows
			}
			r.Playbooks[i].Counts[rec.Kind+" "+outcome]++
		} else if !slices.Contains(r.Unconfigured, rec.Playbook) {
			r.Unconfigured = append(r.Unconfigured, rec.Playbook)
		}
	}
	switch rec.Kind {
	case auditlog.KindExecution:
		if rec.Outcome != "skipped" {
			r.Ran = append(r.Ran, ev)
		}
	case auditlog.KindApproval, auditlog.KindDenial:
		r.Decisions = append(r.Decisions, ev)
	case auditlog.KindRollback:
		r.RolledBack = append(r.RolledBack, ev)
	case auditlog.KindControl:
		switch {
		case rec.Outcome == "break-glass":
			r.BreakGlass = append(r.BreakGlass, ev)
		case strings.HasPrefix(ev.Reason, "automation halted"):
			r.Breakers = append(r.Breakers, ev)
			r.Controls = append(r.Controls, ev)
		case rec.Outcome == "paused" || rec.Outcome == "resumed":
			r.Controls = append(r.Controls, ev)
		}
	case auditlog.KindDecision:
		if rec.Outcome == "did nothing" && stoppedByLimit(rec.Reasons) {
			r.Breakers = append(r.Breakers, ev)
		}
	}
}

// stoppedByLimit says whether a "did nothing" decision was a breaker's or back-off's.
func stoppedByLimit(reasons []string) bool {
	for _, s := range reasons {
		if strings.HasPrefix(s, "did nothing: breaker open") || strings.HasPrefix(s, "did nothing: backing off") ||
			strings.HasPrefix(s, "did nothing: blast radius") {
			return true
		}
	}
	return false
}

// SetChain records the verification of the chain the review was read from.
func (r *Review) SetChain(rep auditlog.Report) {
	if rep.Intact() {
		r.Chain = fmt.Sprintf("intact: %d entries, head %s", rep.Entries, rep.Head)
		return
	}
	r.Chain = fmt.Sprintf("BROKEN at entry %d (%s): %s; this review may not be what happened (run portpatrol audit-log verify)",
		rep.Problem.Seq, rep.Problem.What, rep.Problem.Detail)
}

// Finish sorts what needs sorting; the review is then ready to be written.
func (r *Review) Finish() *Review {
	slices.Sort(r.Unconfigured)
	slices.Reverse(r.Recent)
	return r
}

func triggerWords(t Trigger) string {
	var parts []string
	if len(t.Class) > 0 {
		parts = append(parts, "class "+strings.Join(t.Class, "|"))
	}
	if len(t.Severity) > 0 {
		parts = append(parts, "severity "+strings.Join(t.Severity, "|"))
	}
	if len(t.Labels) > 0 {
		parts = append(parts, "labels {"+strings.Join(t.Labels, ", ")+"}")
	}
	if len(parts) == 0 {
		return "every alert"
	}
	return strings.Join(parts, ", ")
}

// couldWords says what a step's parameters let it change, placeholders left in.
func couldWords(action string, p Params) string {
	switch action {
	case "exec":
		s := "run " + strings.Join(p.Argv, " ")
		if p.User != "" {
			s += " as " + p.User
		}
		return s
	case "http":
		m := strings.ToUpper(p.Method)
		if m == "" {
			m = "POST"
		}
		return "call " + m + " " + p.URL
	case "switch_port":
		return "redirect port " + strconv.Itoa(p.Port) + " to " + strconv.Itoa(p.BackupPort) + " on this host"
	case "kube":
		ns := p.Namespace
		if ns == "" {
			ns = "default"
		}
		if p.Operation == "scale" {
			return fmt.Sprintf("scale %s %s/%s to %d replicas (bounds %d..%d)", p.Kind, ns, p.Name, p.Replicas, p.MinReplicas, p.MaxReplicas)
		}
		return "rollout restart " + p.Kind + " " + ns + "/" + p.Name
	case "systemd":
		op := p.Operation
		if op == "" {
			op = "restart"
		}
		return op + " unit " + p.Unit
	}
	return action
}

// allowedWords says who has to agree before a step of a playbook in mode runs.
func allowedWords(global, mode string, t Tier) string {
	switch {
	case global == ModeOff:
		return "records only: automation.mode is off"
	case mode == PlaybookShadow:
		return "records only: the playbook is in shadow mode"
	}
	switch t {
	case R0:
		return "automatic"
	case R1:
		if mode == PlaybookAuto {
			return "automatic"
		}
		return "one approver who is not the requester"
	case R2:
		return "one approver who is not the requester"
	}
	return "two distinct approvers, one a service owner"
}

// WriteText writes the review for a person.
func (r *Review) WriteText(w io.Writer) error {
	b := &strings.Builder{}
	fmt.Fprintf(b, "Automation permission review, %s to %s\n", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	paused := ""
	if r.Paused {
		paused = ", starts paused"
	}
	if r.Chain != "" {
		fmt.Fprintf(b, "audit chain %s\n", r.Chain)
	}
	fmt.Fprintf(b, "mode %s%s; policy version %s; service owners: %s\n", r.Mode, paused, r.PolicyVersion, listOr(r.ServiceOwners, "none"))
	fmt.Fprintf(b, "\nWhat each playbook may do\n")
	if len(r.Playbooks) == 0 {
		fmt.Fprintln(b, "  no playbook is configured")
	}
	for _, p := range r.Playbooks {
		rollout := "everywhere its trigger matches"
		if len(p.Rollout) > 0 {
			rollout = "{" + strings.Join(p.Rollout, ", ") + "}"
		}
		fmt.Fprintf(b, "  %s (mode %s): on %s; rolled out to %s\n", p.Name, p.Mode, p.Trigger, rollout)
		for _, s := range p.Steps {
			fmt.Fprintf(b, "    step %s: %s %s: %s — %s\n", s.Name, s.Action, s.Tier, s.Could, s.Allowed)
			if s.Rollback != "" {
				fmt.Fprintf(b, "      rollback: %s\n", s.Rollback)
			}
		}
		if len(p.Counts) > 0 {
			keys := make([]string, 0, len(p.Counts))
			for k := range p.Counts {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			parts := make([]string, len(keys))
			for i, k := range keys {
				parts[i] = fmt.Sprintf("%s %d", k, p.Counts[k])
			}
			fmt.Fprintf(b, "    in the chain: %s\n", strings.Join(parts, ", "))
		} else {
			fmt.Fprintln(b, "    in the chain: nothing")
		}
	}
	section := func(title string, evs []ReviewEvent, none string) {
		fmt.Fprintf(b, "\n%s (%d)\n", title, len(evs))
		if len(evs) == 0 {
			fmt.Fprintf(b, "  %s\n", none)
		}
		for _, e := range evs {
			where := e.Playbook
			if e.Step != "" {
				where += " step " + e.Step
			}
			if e.Target != "" {
				where += " on " + e.Target
			}
			where = strings.TrimSpace(where)
			if where != "" {
				where = "  " + where
			}
			fmt.Fprintf(b, "  #%d %s  %s by %s%s: %s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05Z"), e.Outcome, e.Actor, where, e.Reason)
		}
	}
	section("What ran", r.Ran, "nothing ran")
	section("Approvals and denials", r.Decisions, "none")
	section("Rolled back", r.RolledBack, "nothing was rolled back")
	section("Breakers and limits that stopped automation", r.Breakers, "none tripped")
	section("Break-glass, flagged for review", r.BreakGlass, "none used")
	section("Kill switch", r.Controls, "not used")
	if len(r.Unconfigured) > 0 {
		fmt.Fprintf(b, "\nFlagged: the chain shows playbooks the configuration no longer has: %s\n", strings.Join(r.Unconfigured, ", "))
	}
	fmt.Fprintf(b, "\n%d chain entries in the window: %d ran, %d approval decisions, %d rolled back, %d stopped by a limit, %d break-glass\n",
		r.Entries, len(r.Ran), len(r.Decisions), len(r.RolledBack), len(r.Breakers), len(r.BreakGlass))
	_, err := io.WriteString(w, b.String())
	return err
}

func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ", ")
}

// NewReview starts the review of the engine's configuration over [from, to]; Paused is
// the kill switch as it is now.
func (e *Engine) NewReview(from, to time.Time) *Review {
	r := NewReview(e.cfg, from, to)
	e.mu.Lock()
	r.Paused = e.paused
	e.mu.Unlock()
	return r
}
