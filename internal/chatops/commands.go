package chatops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Help lists the commands.
const Help = "portpatrol commands:\n```\n" +
	"  status [service]                          active alerts, of one service or all\n" +
	"  ack <alert-id> [comment]                  acknowledge an alert (operator)\n" +
	"  resolve <alert-id> [comment]              resolve an alert (operator)\n" +
	"  silence <matchers> <duration> <comment>   e.g. silence service=cache,env=prod 2h deploy (operator)\n" +
	"  who <port>                                which process listens on a port of this host\n" +
	"  approve <request-id> [comment]            approve a remediation plan (approver)\n" +
	"  deny <request-id> [reason]                deny a remediation plan (approver)\n" +
	"  help\n```"

// errDenied is a command the user's role does not allow.
var errDenied = errors.New("denied")

// run executes one command line for a chat user and returns the answer and whether
// the channel should see it (changes are public, reads and refusals only to the caller).
func (h *Handler) run(ctx context.Context, platform, chatUser, text string) (public bool, answer string) {
	fields := strings.Fields(text)
	cmd := ""
	if len(fields) > 0 {
		cmd = strings.ToLower(fields[0])
	}
	args := fields[min(1, len(fields)):]
	u := h.user(platform, chatUser)
	by := ""
	if u != nil {
		by = u.Name + " via " + platform + ":" + chatUser
	}
	log := h.cfg.Logger.With("platform", platform, "chat_user", chatUser, "command", cmd)
	if u != nil {
		log = log.With("user", u.Name)
	}
	var err error
	switch cmd {
	case "", "help":
		return false, Help
	case "status":
		answer, err = h.status(ctx, args)
	case "who":
		answer, err = h.who(ctx, args)
	case "ack", "resolve", "silence":
		if u == nil || u.Role < Operate {
			log.Warn("chatops command refused", "reason", "read-only user")
			if u == nil {
				return false, fmt.Sprintf("%s is refused: your %s user %s is not mapped to a portpatrol user in chatops.users, so you may only read (status, who).", cmd, platform, chatUser)
			}
			return false, fmt.Sprintf("%s is refused: %s has the viewer role and may only read (status, who).", cmd, u.Name)
		}
		switch cmd {
		case "ack":
			answer, err = h.ack(ctx, args, by, false)
		case "resolve":
			answer, err = h.ack(ctx, args, by, true)
		case "silence":
			answer, err = h.silence(ctx, args, by)
		}
		if err == nil {
			log.Info("chatops command done", "args", strings.Join(args, " "), "by", by)
			return true, answer
		}
	case "approve", "deny":
		if u == nil || u.Role < Approve {
			log.Warn("chatops command refused", "reason", "not an approver")
			if u == nil {
				return false, fmt.Sprintf("%s is refused: your %s user %s is not mapped to a portpatrol user in chatops.users, so you may only read (status, who).", cmd, platform, chatUser)
			}
			return false, fmt.Sprintf("%s is refused: %s has the %s role; only the approver role approves or denies remediation plans.", cmd, u.Name, u.Role)
		}
		answer, err = h.decide(ctx, cmd, args, Approver{Name: u.Name, Role: u.Role.String(), Via: platform + ":" + chatUser})
		if err == nil {
			log.Info("chatops command done", "args", strings.Join(args, " "), "by", by)
			return true, answer
		}
	default:
		return false, fmt.Sprintf("unknown command %q.\n%s", cmd, Help)
	}
	if err != nil {
		log.Info("chatops command failed", "err", err)
		return false, cmd + " failed: " + err.Error()
	}
	return false, answer
}

// maxComment bounds an approval's comment or a denial's reason, as the API does.
const maxComment = 1000

// decide approves or denies an approval request: "approve <request-id> [comment]",
// "deny <request-id> [reason]".
func (h *Handler) decide(ctx context.Context, cmd string, args []string, by Approver) (string, error) {
	if h.cfg.Approvals == nil {
		return "", errors.New("remediation approvals are not available on this server (no automation section)")
	}
	if len(args) == 0 {
		if cmd == "deny" {
			return "", errors.New("give the approval request's ID: deny <request-id> [reason]")
		}
		return "", errors.New("give the approval request's ID: approve <request-id> [comment]")
	}
	id, text := args[0], strings.Join(args[1:], " ")
	if len(text) > maxComment {
		return "", fmt.Errorf("the comment is %d characters, over %d", len(text), maxComment)
	}
	who := by.Name + " via " + by.Via
	if cmd == "deny" {
		d, err := h.cfg.Approvals.Deny(ctx, id, by, text)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Denied %s by %s: %s step %s on %s will not run.", d.ID, who, d.Playbook, d.Step, d.Target), nil
	}
	d, err := h.cfg.Approvals.Approve(ctx, id, by, text)
	if err != nil {
		return "", err
	}
	if d.Needs != "" {
		return fmt.Sprintf("Approval of %s by %s recorded (%s step %s on %s, plan %s); still needs %s.", d.ID, who, d.Playbook, d.Step, d.Target, shortHash(d.PlanHash), d.Needs), nil
	}
	return fmt.Sprintf("Approved %s by %s: %s step %s on %s runs now (%s; plan %s).", d.ID, who, d.Playbook, d.Step, d.Target, d.Diff, shortHash(d.PlanHash)), nil
}

// shortHash is a plan hash's first 12 characters, enough to tell plans apart in chat.
func shortHash(h string) string { return h[:min(12, len(h))] }

func (h *Handler) ack(ctx context.Context, args []string, by string, resolve bool) (string, error) {
	if len(args) == 0 {
		return "", errors.New("give the alert ID: ack <alert-id> [comment]")
	}
	id, comment := args[0], strings.Join(args[1:], " ")
	if comment == "" {
		comment = "from chat"
	}
	if resolve {
		if err := h.cfg.Alerts.Resolve(ctx, id, by, comment); err != nil {
			return "", err
		}
		return fmt.Sprintf("Alert %s resolved by %s.", id, by), nil
	}
	if err := h.cfg.Alerts.Ack(ctx, id, by, comment); err != nil {
		return "", err
	}
	return fmt.Sprintf("Alert %s acknowledged by %s.", id, by), nil
}

// silence parses "<matchers> <duration> <comment>": the matchers are every word before
// the first that reads as a duration, each a comma-separated list of label matchers.
func (h *Handler) silence(ctx context.Context, args []string, by string) (string, error) {
	if h.cfg.Silences == nil {
		return "", errors.New("silences are not available on this server")
	}
	usage := "usage: silence <matchers> <duration> <comment>, e.g. silence service=cache,env=prod 2h deploying 7.2"
	var ms []string
	i := 0
	var d time.Duration
	for ; i < len(args); i++ {
		if v, err := time.ParseDuration(args[i]); err == nil {
			d = v
			break
		}
		for _, m := range strings.Split(args[i], ",") {
			if m != "" {
				ms = append(ms, m)
			}
		}
	}
	switch {
	case len(ms) == 0:
		return "", errors.New("no matchers; " + usage)
	case i == len(args):
		return "", errors.New("no duration; " + usage)
	case d <= 0:
		return "", fmt.Errorf("duration %s is not positive", d)
	case d > h.cfg.MaxSilence:
		return "", fmt.Errorf("duration %s is longer than the %s allowed", d, h.cfg.MaxSilence)
	case i+1 == len(args):
		return "", errors.New("no comment; say why, " + usage)
	}
	matchers, err := patrol.ParseMatchers(ms)
	if err != nil {
		return "", err
	}
	now := h.cfg.Now()
	s, err := h.cfg.Silences.CreateSilence(ctx, patrol.Silence{
		Matchers: matchers, Author: by, Comment: strings.Join(args[i+1:], " "), StartsAt: now, EndsAt: now.Add(d),
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Silence %s created by %s: %s for %s, until %s.", s.ID, by, s.Matchers, d, s.EndsAt.UTC().Format("2006-01-02 15:04 UTC")), nil
}

func (h *Handler) status(ctx context.Context, args []string) (string, error) {
	alerts, err := h.cfg.Alerts.Active(ctx)
	if err != nil {
		return "", err
	}
	service := ""
	if len(args) > 0 {
		service = args[0]
		alerts = slices.DeleteFunc(alerts, func(a patrol.Alert) bool { return a.Labels["service"] != service })
	}
	if len(alerts) == 0 {
		if service != "" {
			return fmt.Sprintf("No active alerts for service %s.", service), nil
		}
		return "No active alerts.", nil
	}
	slices.SortFunc(alerts, func(a, b patrol.Alert) int {
		if a.Severity != b.Severity {
			return int(a.Severity) - int(b.Severity)
		}
		return a.StartsAt.Compare(b.StartsAt)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%d active alert(s):", len(alerts))
	now := h.cfg.Now()
	for _, a := range alerts {
		fmt.Fprintf(&b, "\n%s %s %s %s — %s (since %s)", a.Severity, a.ID, a.State, a.Target, a.Summary, now.Sub(a.StartsAt).Round(time.Second))
		if a.AckedBy != "" {
			fmt.Fprintf(&b, ", acknowledged by %s", a.AckedBy)
		}
	}
	return b.String(), nil
}

func (h *Handler) who(ctx context.Context, args []string) (string, error) {
	if h.cfg.Who == nil {
		return "", errors.New("who is not available on this server")
	}
	if len(args) != 1 {
		return "", errors.New("usage: who <port>")
	}
	p, err := strconv.ParseUint(args[0], 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("%q is not a port (1–65535)", args[0])
	}
	lines, err := h.cfg.Who.Who(ctx, uint16(p))
	if err != nil {
		return "", err
	}
	if len(lines) == 0 {
		return fmt.Sprintf("Nothing listens on port %d of this host.", p), nil
	}
	return fmt.Sprintf("Port %d:\n%s", p, strings.Join(lines, "\n")), nil
}

// Action IDs of the buttons package slack puts on alert messages; the value is the
// alert ID.
const (
	ActionAck       = "portpatrol_ack"
	ActionSilence1h = "portpatrol_silence_1h"
)

type slackPayload struct {
	Type    string              `json:"type"`
	User    struct{ ID string } `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

// slackAction handles a button press (a block_actions payload).
func (h *Handler) slackAction(w http.ResponseWriter, ctx context.Context, raw string) {
	var p slackPayload
	if err := json.Unmarshal([]byte(raw), &p); err != nil || p.Type != "block_actions" || len(p.Actions) == 0 {
		http.Error(w, "payload is not a block_actions payload", http.StatusBadRequest)
		return
	}
	a := p.Actions[0]
	var public bool
	var text string
	switch a.ActionID {
	case ActionAck:
		public, text = h.run(ctx, "slack", p.User.ID, "ack "+a.Value+" acknowledged with the button")
	case ActionSilence1h:
		public, text = h.silenceAlert(ctx, p.User.ID, a.Value)
	default:
		http.Error(w, "unknown action "+a.ActionID, http.StatusBadRequest)
		return
	}
	writeReply(w, public, slackEscape(text))
}

// silenceAlert silences one alert's rule on its target for an hour, from the button.
func (h *Handler) silenceAlert(ctx context.Context, chatUser, id string) (bool, string) {
	u := h.user("slack", chatUser)
	if u == nil || u.Role < Operate || h.cfg.Silences == nil {
		// The command path words the refusal (or the missing silences) the same way.
		return h.run(ctx, "slack", chatUser, "silence -")
	}
	alerts, err := h.cfg.Alerts.Active(ctx)
	if err != nil {
		return false, "silence failed: " + err.Error()
	}
	for _, a := range alerts {
		if a.ID != id {
			continue
		}
		t, err1 := patrol.NewMatcher("target", patrol.MatchEqual, a.Target)
		r, err2 := patrol.NewMatcher("alertname", patrol.MatchEqual, a.Rule)
		if err := errors.Join(err1, err2); err != nil {
			return false, "silence failed: " + err.Error()
		}
		by := u.Name + " via slack:" + chatUser
		now := h.cfg.Now()
		s, err := h.cfg.Silences.CreateSilence(ctx, patrol.Silence{Matchers: patrol.Matchers{t, r}, Author: by,
			Comment: "silenced for 1h with the button on alert " + id, StartsAt: now, EndsAt: now.Add(time.Hour)})
		if err != nil {
			return false, "silence failed: " + err.Error()
		}
		h.cfg.Logger.Info("chatops command done", "platform", "slack", "chat_user", chatUser, "user", u.Name, "command", "silence", "args", s.Matchers.String(), "by", by)
		return true, fmt.Sprintf("Silence %s created by %s: %s for 1h, until %s.", s.ID, by, s.Matchers, s.EndsAt.UTC().Format("2006-01-02 15:04 UTC"))
	}
	return false, fmt.Sprintf("silence failed: no active alert %s", id)
}
