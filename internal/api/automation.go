package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Automation is the remediation engine as the API sees it: its state, the approval
// requests, and the decisions people make on them. Values are passed through as JSON.
// Approve, Deny and BreakGlass return ErrNotFound for an unknown request and
// ErrConflict, with the reason in words, for one that expired, was decided or voided,
// drifted, or is the approver's own.
type Automation interface {
	AutomationState(ctx context.Context) (json.RawMessage, error)
	ApprovalRequests(ctx context.Context) (json.RawMessage, error)
	Approve(ctx context.Context, id string, who Identity, comment string) (json.RawMessage, error)
	Deny(ctx context.Context, id string, who Identity, reason string) (json.RawMessage, error)
	BreakGlass(ctx context.Context, id string, who Identity, reason string) (json.RawMessage, error)
	// RequestRun files an approval request, by who, for a playbook's step on an open
	// alert; ErrNotFound for an unknown alert, ErrInvalid for an unknown playbook or step.
	RequestRun(ctx context.Context, alertID, playbook string, step int, who Identity) (json.RawMessage, error)
	Pause(ctx context.Context, who Identity, reason string) error
	Resume(ctx context.Context, who Identity) error
	// Review is the permission review over the last since: what the playbooks may do
	// and what the audit chain says automation did.
	Review(ctx context.Context, since time.Duration) (json.RawMessage, error)
}

// automationRoutes are the routes of the remediation engine.
func (s *Server) automationRoutes() []route {
	return []route{
		{"GET", "/api/v1/automation", RoleViewer, s.automationState},
		{"GET", "/api/v1/automation/approvals", RoleViewer, s.approvalRequests},
		{"POST", "/api/v1/automation/approvals/{id}/approve", RoleOperator, s.approveRequest},
		{"POST", "/api/v1/automation/approvals/{id}/deny", RoleOperator, s.denyRequest},
		{"POST", "/api/v1/automation/approvals/{id}/break-glass", RoleAdmin, s.breakGlass},
		{"POST", "/api/v1/automation/approvals", RoleOperator, s.requestRun},
		{"POST", "/api/v1/automation/pause", RoleOperator, s.pauseAutomation},
		{"POST", "/api/v1/automation/resume", RoleOperator, s.resumeAutomation},
		{"GET", "/api/v1/automation/report", RoleViewer, s.automationReview},
	}
}

// decisionRequest is the body of approve, deny, break-glass and pause.
type decisionRequest struct {
	Comment string `json:"comment"`
	Reason  string `json:"reason"`
}

func (s *Server) automationState(w http.ResponseWriter, r *http.Request, _ Identity) {
	s.automationRead(w, r, func(ctx context.Context) (json.RawMessage, error) { return s.cfg.Automation.AutomationState(ctx) })
}

func (s *Server) approvalRequests(w http.ResponseWriter, r *http.Request, _ Identity) {
	s.automationRead(w, r, func(ctx context.Context) (json.RawMessage, error) { return s.cfg.Automation.ApprovalRequests(ctx) })
}

func (s *Server) automationRead(w http.ResponseWriter, r *http.Request, get func(context.Context) (json.RawMessage, error)) {
	if s.cfg.Automation == nil {
		unavailable(w, "automation")
		return
	}
	b, err := get(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

// decision reads the body and runs do with the request's ID and text.
func (s *Server) decision(w http.ResponseWriter, r *http.Request, field string, required bool, do func(id, text string) (json.RawMessage, error)) {
	if s.cfg.Automation == nil {
		unavailable(w, "automation")
		return
	}
	var req decisionRequest
	if bad := s.decodeBody(w, r, &req, !required); bad != nil {
		writeBad(w, bad)
		return
	}
	text := req.Comment
	if field == "reason" {
		text = req.Reason
	}
	switch {
	case len(text) > 1000:
		writeBad(w, badField(field, "longer than 1000 characters"))
		return
	case required && strings.TrimSpace(text) == "":
		writeBad(w, badField(field, "required: say why"))
		return
	}
	b, err := do(r.PathValue("id"), text)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if b == nil {
		b = json.RawMessage(`{"ok":true}`)
	}
	writeJSON(w, http.StatusOK, b)
}

func (s *Server) approveRequest(w http.ResponseWriter, r *http.Request, who Identity) {
	s.decision(w, r, "comment", false, func(id, text string) (json.RawMessage, error) {
		return s.cfg.Automation.Approve(r.Context(), id, who, text)
	})
}

func (s *Server) denyRequest(w http.ResponseWriter, r *http.Request, who Identity) {
	s.decision(w, r, "reason", true, func(id, text string) (json.RawMessage, error) {
		return s.cfg.Automation.Deny(r.Context(), id, who, text)
	})
}

func (s *Server) breakGlass(w http.ResponseWriter, r *http.Request, who Identity) {
	s.decision(w, r, "reason", true, func(id, text string) (json.RawMessage, error) {
		return s.cfg.Automation.BreakGlass(r.Context(), id, who, text)
	})
}

func (s *Server) pauseAutomation(w http.ResponseWriter, r *http.Request, who Identity) {
	s.decision(w, r, "reason", false, func(_, text string) (json.RawMessage, error) {
		return nil, s.cfg.Automation.Pause(r.Context(), who, text)
	})
}

func (s *Server) resumeAutomation(w http.ResponseWriter, r *http.Request, who Identity) {
	s.decision(w, r, "reason", false, func(string, string) (json.RawMessage, error) {
		return nil, s.cfg.Automation.Resume(r.Context(), who)
	})
}

// runRequest is the body of POST /api/v1/automation/approvals.
type runRequest struct {
	AlertID  string `json:"alert_id"`
	Playbook string `json:"playbook"`
	Step     int    `json:"step"`
}

func (s *Server) requestRun(w http.ResponseWriter, r *http.Request, who Identity) {
	if s.cfg.Automation == nil {
		unavailable(w, "automation")
		return
	}
	var req runRequest
	if bad := s.decodeBody(w, r, &req, false); bad != nil {
		writeBad(w, bad)
		return
	}
	switch {
	case req.AlertID == "":
		writeBad(w, badField("alert_id", "required: the alert to act on"))
		return
	case req.Playbook == "":
		writeBad(w, badField("playbook", "required: the playbook whose step to run"))
		return
	case req.Step < 0:
		writeBad(w, badField("step", "must not be negative"))
		return
	}
	b, err := s.cfg.Automation.RequestRun(r.Context(), req.AlertID, req.Playbook, req.Step, who)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, b)
}

// automationReview answers GET /api/v1/automation/report[?since=30d].
func (s *Server) automationReview(w http.ResponseWriter, r *http.Request, _ Identity) {
	since := 30 * 24 * time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, bad := parseDays("since", v, time.Minute, 366*24*time.Hour)
		if bad != nil {
			writeBad(w, bad)
			return
		}
		since = d
	}
	s.automationRead(w, r, func(ctx context.Context) (json.RawMessage, error) { return s.cfg.Automation.Review(ctx, since) })
}
