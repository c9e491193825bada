package api

import (
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// The wire forms of the API's answers. Durations are in seconds, as in Prometheus;
// severities are "P0".."P3"; times are RFC 3339 and left out when unknown.

// targetView is one target in GET /api/v1/targets and in target events.
type targetView struct {
	ID       string            `json:"id"`
	Name     string            `json:"name,omitempty"`
	Status   patrol.Status     `json:"status"`
	Flapping bool              `json:"flapping"`
	Since    time.Time         `json:"since,omitzero"`
	Labels   map[string]string `json:"labels,omitempty"`
	Last     *lastView         `json:"last,omitempty"`
	// Alert summarises the target's most urgent open alert.
	Alert *alertSummary `json:"alert,omitempty"`
}

type lastView struct {
	Time            time.Time    `json:"time"`
	Class           patrol.Class `json:"class"`
	DurationSeconds float64      `json:"duration_seconds"`
	Error           string       `json:"error,omitempty"`
}

type alertSummary struct {
	ID       string            `json:"id"`
	Severity string            `json:"severity"`
	State    patrol.AlertState `json:"state"`
	// Count is how many open alerts the target has.
	Count int `json:"count"`
}

func newTargetView(t patrol.TargetState, a *alertSummary) targetView {
	v := targetView{ID: t.Target, Name: t.Name, Status: t.Status, Flapping: t.Flapping, Since: t.Since, Labels: t.Labels, Alert: a}
	if v.Status == "" {
		v.Status = patrol.StatusUnknown
	}
	if !t.Last.Time.IsZero() || t.Last.Class != "" {
		v.Last = &lastView{Time: t.Last.Time, Class: t.Last.Class, DurationSeconds: t.Last.Duration.Seconds(), Error: t.Last.Error}
	}
	return v
}

// alertView is an alert.
type alertView struct {
	ID             string            `json:"id"`
	Fingerprint    string            `json:"fingerprint"`
	Rule           string            `json:"rule"`
	Class          patrol.AlertClass `json:"class"`
	Severity       string            `json:"severity"`
	State          patrol.AlertState `json:"state"`
	Target         string            `json:"target"`
	Labels         map[string]string `json:"labels,omitempty"`
	Summary        string            `json:"summary"`
	Description    string            `json:"description,omitempty"`
	RunbookURL     string            `json:"runbook_url,omitempty"`
	Diagnosis      string            `json:"diagnosis,omitempty"`
	Impact         string            `json:"impact,omitempty"`
	StartsAt       time.Time         `json:"starts_at"`
	FiredAt        time.Time         `json:"fired_at,omitzero"`
	Deadline       time.Time         `json:"deadline,omitzero"`
	AckedAt        time.Time         `json:"acked_at,omitzero"`
	AckedBy        string            `json:"acked_by,omitempty"`
	ResolvedAt     time.Time         `json:"resolved_at,omitzero"`
	ResolvedBy     string            `json:"resolved_by,omitempty"`
	EscalationStep int               `json:"escalation_step"`
	MutedBy        string            `json:"muted_by,omitempty"`
	Evidence       []patrol.Result   `json:"evidence,omitempty"`
	Told           []string          `json:"told,omitempty"`
}

func newAlertView(a patrol.Alert) alertView {
	return alertView{
		ID: a.ID, Fingerprint: a.Fingerprint, Rule: a.Rule, Class: a.Class, Severity: a.Severity.String(),
		State: a.State, Target: a.Target, Labels: a.Labels, Summary: a.Summary, Description: a.Description,
		RunbookURL: a.RunbookURL, StartsAt: a.StartsAt, FiredAt: a.FiredAt, Deadline: a.Deadline,
		AckedAt: a.AckedAt, AckedBy: a.AckedBy, ResolvedAt: a.ResolvedAt, ResolvedBy: a.ResolvedBy,
		EscalationStep: a.EscalationStep, MutedBy: a.MutedBy, Evidence: a.Evidence, Told: a.Told,
		Diagnosis: a.Diagnosis, Impact: a.Impact,
	}
}

func newAlertViews(as []patrol.Alert) []alertView {
	out := make([]alertView, len(as))
	for i, a := range as {
		out[i] = newAlertView(a)
	}
	return out
}

// incidentView is an alert with its escalation chain and journal.
type incidentView struct {
	alertView
	Chain string        `json:"chain,omitempty"`
	Notes []patrol.Note `json:"notes"`
	Hint  string        `json:"hint,omitempty"`
}

// pointView is one bucket of a history series.
type pointView struct {
	Time         time.Time `json:"time"`
	Count        int64     `json:"count"`
	Failures     int64     `json:"failures"`
	Availability float64   `json:"availability"`
	Min          float64   `json:"min"`
	Avg          float64   `json:"avg"`
	Max          float64   `json:"max"`
	P50          float64   `json:"p50"`
	P95          float64   `json:"p95"`
	P99          float64   `json:"p99"`
}

// markerView is an incident drawn on a history chart.
type markerView struct {
	ID         string            `json:"id"`
	Severity   string            `json:"severity"`
	Class      patrol.AlertClass `json:"class"`
	State      patrol.AlertState `json:"state"`
	Summary    string            `json:"summary"`
	StartsAt   time.Time         `json:"starts_at"`
	ResolvedAt time.Time         `json:"resolved_at,omitzero"`
}

type historyView struct {
	Target      string       `json:"target"`
	From        time.Time    `json:"from"`
	To          time.Time    `json:"to"`
	Resolution  string       `json:"resolution"`
	StepSeconds float64      `json:"step_seconds"`
	Quantiles   string       `json:"quantiles"`
	Points      []pointView  `json:"points"`
	Incidents   []markerView `json:"incidents"`
	// Band is the learned band of the median latency at each point's time (seconds),
	// absent while the target's detector is still learning or off.
	Band []BandPoint `json:"band,omitempty"`
}

// BandPoint is the usual band a target's anomaly detector has learned for one time of
// day and week, in seconds of median latency: what the dashboard draws around p50.
type BandPoint struct {
	Time     time.Time `json:"time"`
	Lower    float64   `json:"lower"`
	Expected float64   `json:"expected"`
	Upper    float64   `json:"upper"`
}
