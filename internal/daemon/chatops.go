package daemon

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/chatops"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// chatopsAlerts gives chat commands the alert engine, through the API's adapter so a
// change from chat goes the same way as one from the API.
type chatopsAlerts struct{ a *apiAdapter }

var (
	_ chatops.Alerts   = chatopsAlerts{}
	_ chatops.Silencer = chatopsAlerts{}
	_ chatops.Who      = chatopsWho{}
)

func (c chatopsAlerts) Active(context.Context) ([]patrol.Alert, error) {
	return c.a.d.engine().List(alert.Filter{States: []patrol.AlertState{patrol.AlertFiring, patrol.AlertAcknowledged, patrol.AlertSilenced, patrol.AlertFlapping}}), nil
}

func (c chatopsAlerts) Ack(ctx context.Context, id, by, comment string) error {
	return c.a.AckAlert(ctx, id, by, comment)
}

func (c chatopsAlerts) Resolve(ctx context.Context, id, by, comment string) error {
	return c.a.ResolveAlert(ctx, id, by, comment)
}

func (c chatopsAlerts) CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error) {
	return c.a.CreateSilence(ctx, s)
}

// chatopsApprovals gives approve and deny the remediation engine: the chat user's
// portpatrol name decides, so self-approval and distinct approvers are checked as
// through the API, and the audit chain records where from.
type chatopsApprovals struct{ w *automationWiring }

var _ chatops.Approvals = chatopsApprovals{}

func (c chatopsApprovals) approver(by chatops.Approver) automation.Approver {
	return automation.Approver{Name: by.Name, Roles: []string{by.Role}, Via: by.Via}
}

func (c chatopsApprovals) Approve(ctx context.Context, id string, by chatops.Approver, comment string) (chatops.Decision, error) {
	return decision(c.w.eng.Approve(ctx, id, c.approver(by), comment))
}

func (c chatopsApprovals) Deny(ctx context.Context, id string, by chatops.Approver, reason string) (chatops.Decision, error) {
	return decision(c.w.eng.Deny(ctx, id, c.approver(by), reason))
}

// decision is the chat's view of a decided request; a refusal keeps its reason in
// words ("approval request 9f2c…: alice requested this plan; …").
func decision(r automation.Request, err error) (chatops.Decision, error) {
	if err != nil {
		return chatops.Decision{}, err
	}
	return chatops.Decision{ID: r.ID, State: r.State, Playbook: r.Plan.Playbook, Step: r.Plan.Step, Target: r.Plan.Target,
		Diff: r.Plan.Diff, PlanHash: r.Plan.Hash, Needs: r.Needs}, nil
}

// chatopsWho answers who <port> from this host's TCP and UDP listeners.
type chatopsWho struct{ inv *inventory.Inventory }

func (w chatopsWho) Who(ctx context.Context, port uint16) ([]string, error) {
	socks, err := w.inv.Listeners(ctx, inventory.Filter{Port: port, Owners: true})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range socks {
		line := fmt.Sprintf("%s %s", s.Proto, s.Local)
		if s.Owner != nil {
			line += fmt.Sprintf(" %s (pid %d", s.Owner.Command, s.Owner.PID)
			if s.Owner.User != "" {
				line += ", user " + s.Owner.User
			}
			line += ")"
		} else {
			line += " owner unknown (uid " + userName(s.UID) + ")"
		}
		out = append(out, line)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// chatopsHandler serves /api/v1/chatops/slack and /api/v1/chatops/mattermost from the
// configuration in force at each request, so a reload changes secrets and users.
// Until a platform's secret is configured its endpoint answers 404.
func (d *Daemon) chatopsHandler() http.Handler {
	inv := inventory.New(inventory.Config{})
	replays := &chatops.Replays{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cfg := d.cfg()
		users := make([]chatops.User, 0, len(cfg.ChatOps.Users))
		for _, u := range cfg.ChatOps.Users {
			role := chatops.Read
			switch u.Role {
			case "operator":
				role = chatops.Operate
			case "approver":
				role = chatops.Approve
			}
			users = append(users, chatops.User{Name: u.User, Role: role, Slack: u.Slack, Mattermost: u.Mattermost})
		}
		ad := chatopsAlerts{&apiAdapter{d: d}}
		var approvals chatops.Approvals
		if d.automation != nil {
			approvals = chatopsApprovals{d.automation}
		}
		chatops.New(chatops.Config{
			SlackSigningSecret: cfg.ChatOpsKeys.SlackSigningSecret,
			MattermostTokens:   cfg.ChatOpsKeys.MattermostTokens,
			Users:              users,
			Alerts:             ad,
			Silences:           ad,
			Who:                chatopsWho{inv},
			Approvals:          approvals,
			MaxSilence:         cmp.Or(cfg.Alerting.MaxSilence, alert.DefaultMaxSilence),
			Now:                d.clock.Now,
			Logger:             d.logger.With("component", "chatops"),
			Replays:            replays,
		}).ServeHTTP(w, r)
	})
}
