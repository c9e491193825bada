package patrol

import "time"

// AlertState is where an alert is in its life cycle.
type AlertState string

// The alert states: pending (condition seen, not yet for long enough) → firing →
// acknowledged → resolved; silenced and flapping mute an alert without ending it.
const (
	AlertPending      AlertState = "pending"
	AlertFiring       AlertState = "firing"
	AlertAcknowledged AlertState = "acknowledged"
	AlertResolved     AlertState = "resolved"
	AlertSilenced     AlertState = "silenced"
	AlertFlapping     AlertState = "flapping"
)

// AlertStates lists every alert state in a stable order, for filters that want all.
var AlertStates = []AlertState{AlertPending, AlertFiring, AlertAcknowledged, AlertResolved, AlertSilenced,
	AlertFlapping}

// AlertClass says what kind of problem an alert is about.
type AlertClass string

// The alert classes. Availability and performance classes follow the severity policy
// (P0–P3); security and configuration findings have classes of their own.
const (
	AlertUnreachable AlertClass = "unreachable" // P0 by default
	AlertSlow        AlertClass = "slow"        // P1
	AlertCapacity    AlertClass = "capacity"    // P2: near its connection limit
	AlertAnomaly     AlertClass = "anomaly"     // P3: against the learned baseline
	AlertSecurity    AlertClass = "security"    // scans, brute force, unauthorised ports
	AlertConfig      AlertClass = "config"      // bind conflicts, public binds, permissions
	AlertCertExpiry  AlertClass = "cert_expiry" // P3, then P2: the certificate a target presents expires soon
	// AlertSelf is portpatrol's own health: a self-check that failed (scheduler lag,
	// store writes, outbox backlog, clock jumps…), P1 or P2 as the check says.
	AlertSelf AlertClass = "self"
)

// Alert is one incident: a condition on one subject (usually a target), with its
// severity, deadline and history of who was told. Alerts are values; the alert engine
// owns the live copies.
type Alert struct {
	// ID is stable for the incident's life and unique across incidents.
	ID string `json:"id"`
	// Fingerprint identifies the condition (rule + subject); a new incident for the
	// same condition after a resolve gets a new ID but the same fingerprint.
	Fingerprint string     `json:"fingerprint"`
	Rule        string     `json:"rule"`
	Class       AlertClass `json:"class"`
	Severity    Severity   `json:"severity"`
	State       AlertState `json:"state"`
	// Target is the subject's ID (a target ID, or a host for host-level alerts).
	Target string            `json:"target"`
	Labels map[string]string `json:"labels,omitempty"`
	// Summary says what is wrong in one line a person can act on; Description may say
	// more (for anomalies: why, in words).
	Summary     string `json:"summary"`
	Description string `json:"description,omitempty"`
	RunbookURL  string `json:"runbook_url,omitempty"`
	// Diagnosis is doctor's verdict on an unreachable target and the next step, found
	// in the background after the alert opened; empty until then.
	Diagnosis string `json:"diagnosis,omitempty"`
	// Impact says who the failure affects: the clients a local listener had, and the
	// other targets on the same host; empty until worked out.
	Impact string `json:"impact,omitempty"`

	StartsAt time.Time `json:"starts_at"` // when the condition was first seen
	FiredAt  time.Time `json:"fired_at,omitempty"`
	// Deadline is when the alert must be acknowledged before it escalates.
	Deadline       time.Time `json:"deadline,omitempty"`
	AckedAt        time.Time `json:"acked_at,omitempty"`
	AckedBy        string    `json:"acked_by,omitempty"`
	ResolvedAt     time.Time `json:"resolved_at,omitempty"`
	ResolvedBy     string    `json:"resolved_by,omitempty"` // "auto" when the condition cleared
	EscalationStep int       `json:"escalation_step"`
	// MutedBy says why a silenced alert is muted: a silence, a maintenance window or
	// the alert that inhibits it. Empty when the alert is not muted.
	MutedBy string `json:"muted_by,omitempty"`
	// Evidence holds the latest results that support the alert, newest last.
	Evidence []Result `json:"evidence,omitempty"`
	// Told lists the receivers that have been notified.
	Told []string `json:"told,omitempty"`
}

// Active reports whether the alert still needs attention.
func (a *Alert) Active() bool {
	return a.State != AlertResolved
}

// NotificationKind says why a notification is sent.
type NotificationKind string

// The notification kinds.
const (
	NotifyFiring     NotificationKind = "firing"
	NotifyEscalation NotificationKind = "escalation"
	NotifyReminder   NotificationKind = "reminder"
	NotifyAck        NotificationKind = "acknowledged"
	NotifyResolved   NotificationKind = "resolved"
	NotifyFlapping   NotificationKind = "flapping" // once per incident; flapping never pages
	NotifyImpact     NotificationKind = "impact"   // customer-facing wording, no internals
	NotifyTest       NotificationKind = "test"
)

// Notification is one message for one receiver, about one alert or a group of alerts.
// It is written to the outbox before it is sent.
type Notification struct {
	// Key deduplicates: the same key is delivered at most once per receiver.
	Key      string           `json:"key"`
	Receiver string           `json:"receiver"`
	Kind     NotificationKind `json:"kind"`
	// Group is the grouping key ("host=10.0.0.5"), empty for a single alert.
	Group     string    `json:"group,omitempty"`
	Alerts    []Alert   `json:"alerts"`
	CreatedAt time.Time `json:"created_at"`
	// Lang is the language of rendered text: "en" (default) or "zh".
	Lang string `json:"lang,omitempty"`
}

// Note is one entry in an incident's journal.
type Note struct {
	At     time.Time `json:"at"`
	By     string    `json:"by"`
	Action string    `json:"action"` // "acknowledged" or "resolved"
	Text   string    `json:"text,omitempty"`
}
