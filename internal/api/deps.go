package api

import (
	"context"
	"crypto/sha256"
	"errors"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// The interfaces below are what the API reads and writes through. cmd/portpatrol
// adapts the store, the alert engine and the notification outbox to them. Every
// method must obey ctx and be safe for concurrent use.

// Errors an implementation returns (wrapped with %w is fine) so that the API answers
// with the right status: ErrNotFound → 404, ErrConflict → 409, ErrInvalid → 400,
// ErrRevoked → 401. Any other error is a 500 whose message is logged, not shown.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrInvalid  = errors.New("invalid")
	ErrRevoked  = errors.New("token revoked")
)

// Targets reads the latest state of the watched targets.
type Targets interface {
	// TargetStates returns the state of every target, ordered by ID.
	TargetStates(ctx context.Context) ([]patrol.TargetState, error)
	// TargetState returns one target's state, or ErrNotFound.
	TargetState(ctx context.Context, id string) (patrol.TargetState, error)
}

// History reads stored probe history.
type History interface {
	// History returns the series of q.Target between q.From and q.To.
	History(ctx context.Context, q patrol.HistoryQuery) (patrol.Series, error)
	// RecentResults returns the latest n results of target, newest first.
	RecentResults(ctx context.Context, target string, n int) ([]patrol.Result, error)
}

// Alerts reads incidents.
type Alerts interface {
	// ListAlerts returns the alerts f selects, most urgent first.
	ListAlerts(ctx context.Context, f AlertFilter) ([]patrol.Alert, error)
	// GetAlert returns one alert with its escalation chain and journal, or
	// ErrNotFound.
	GetAlert(ctx context.Context, id string) (Incident, error)
}

// AlertActions changes incidents. by names the token that asked.
type AlertActions interface {
	// AckAlert acknowledges a firing alert; ErrNotFound, or ErrConflict when it is
	// resolved or still pending.
	AckAlert(ctx context.Context, id, by, comment string) error
	// ResolveAlert resolves an alert by hand; ErrNotFound, or ErrConflict when it is
	// already resolved.
	ResolveAlert(ctx context.Context, id, by, comment string) error
}

// Silences lists, creates and expires silences.
type Silences interface {
	ListSilences(ctx context.Context) ([]patrol.Silence, error)
	// CreateSilence stores s (Author set to who asked) and returns it with its ID.
	CreateSilence(ctx context.Context, s patrol.Silence) (patrol.Silence, error)
	// ExpireSilence ends a silence now; ErrNotFound for an unknown ID.
	ExpireSilence(ctx context.Context, id, by string) error
}

// Windows lists maintenance windows.
type Windows interface {
	MaintenanceWindows(ctx context.Context) ([]Window, error)
}

// Deliveries lists notification deliveries from the outbox.
type Deliveries interface {
	ListDeliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, error)
}

// Audits reads the outcome of the scheduled port audits.
type Audits interface {
	// LatestAudits returns the latest report of each configured audit, in
	// configuration order; an audit that has not run yet has a zero Time and no hosts.
	LatestAudits(ctx context.Context) ([]AuditReport, error)
}

// TokenHash is the SHA-256 of a bearer token's secret: tokens are stored and looked up
// by hash only.
type TokenHash [sha256.Size]byte

// Tokens authenticates bearer tokens.
type Tokens interface {
	// LookupToken returns who holds the token with this hash; ErrNotFound for an
	// unknown hash, ErrRevoked for a revoked one.
	LookupToken(ctx context.Context, hash TokenHash) (Identity, error)
}

// TokenAdmin manages API tokens. by names the admin token that asked.
type TokenAdmin interface {
	ListTokens(ctx context.Context) ([]TokenInfo, error)
	// CreateToken makes a token and returns it with its secret, which is shown once.
	CreateToken(ctx context.Context, name string, role Role, by string) (TokenInfo, string, error)
	// RevokeToken revokes a token; ErrNotFound for an unknown ID.
	RevokeToken(ctx context.Context, id, by string) error
}

// AlertFilter selects alerts. The zero value selects every alert not resolved.
type AlertFilter struct {
	// States lists the states wanted; empty means all but resolved.
	States     []patrol.AlertState
	Severities []patrol.Severity
	// Target is an exact subject; empty means any.
	Target string
}

// Incident is an alert with the engine's bookkeeping.
type Incident struct {
	Alert patrol.Alert
	// Chain names the escalation chain the alert follows.
	Chain string
	Notes []patrol.Note
	// Hint tells the operator what more may be done, such as forgetting the learned
	// listener a resolved alert was about.
	Hint string
}

// Window is a maintenance window and whether it is open now. From and Until bound the
// current occurrence, or the next one when closed; zero when it will not open again.
type Window struct {
	Name     string    `json:"name"`
	Schedule string    `json:"schedule,omitempty"`
	Start    time.Time `json:"start,omitzero"`
	End      time.Time `json:"end,omitzero"`
	Matchers []string  `json:"matchers,omitempty"`
	Active   bool      `json:"active"`
	From     time.Time `json:"from,omitzero"`
	Until    time.Time `json:"until,omitzero"`
}

// DeliveryFilter selects deliveries. The zero value selects every delivery.
type DeliveryFilter struct {
	Receiver string
	// States lists delivery states ("pending", "delivered", "failed", "expired").
	States []string
	// Since selects deliveries enqueued at or after it.
	Since time.Time
	// AfterSeq pages: deliveries with Seq greater than it.
	AfterSeq int64
	// Limit caps how many are returned; 0 means no cap.
	Limit int
}

// Delivery is one notification for one receiver in the outbox.
type Delivery struct {
	Seq         int64                   `json:"seq"`
	Receiver    string                  `json:"receiver"`
	Provider    string                  `json:"provider"`
	Key         string                  `json:"key"`
	Kind        patrol.NotificationKind `json:"kind"`
	AlertIDs    []string                `json:"alert_ids"`
	State       string                  `json:"state"`
	Attempts    int                     `json:"attempts"`
	EnqueuedAt  time.Time               `json:"enqueued_at"`
	NextAttempt time.Time               `json:"next_attempt,omitzero"`
	LastAttempt time.Time               `json:"last_attempt,omitzero"`
	LastError   string                  `json:"last_error,omitempty"`
	DoneAt      time.Time               `json:"done_at,omitzero"`
}

// TokenInfo describes a token without its secret.
type TokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// AuditReport is the latest outcome of one scheduled audit: each host scanned, its open
// ports judged against the policy, and the findings. The zero Time means it has not run.
type AuditReport struct {
	// Name is the audit's name in the configuration.
	Name string `json:"name"`
	// Policy is the policy file the audit checks against.
	Policy   string         `json:"policy"`
	Time     time.Time      `json:"time,omitzero"`
	Hosts    []AuditHost    `json:"hosts"`
	Findings []AuditFinding `json:"findings"`
}

// AuditHost is the audit of one scanned address.
type AuditHost struct {
	// Host is the target as the policy or configuration names it ("local", "db1").
	Host string `json:"host"`
	Addr string `json:"addr,omitempty"`
	// Inventory says whether the local socket inventory (process, user, bind) was read.
	Inventory    bool            `json:"inventory"`
	PortsScanned int             `json:"ports_scanned"`
	Open         []AuditOpenPort `json:"open"`
	// Required lists the ports the policy requires open, whether they are or not.
	Required []uint16 `json:"required,omitempty"`
	// Notes are what the audit could not check.
	Notes []string `json:"notes,omitempty"`
}

// AuditOpenPort is an open port and the policy's verdict on it: "allowed",
// "exception" or "unauthorised". Findings on the same host and port refine an allowed
// port (wrong owner, public bind).
type AuditOpenPort struct {
	Port    uint16 `json:"port"`
	Verdict string `json:"verdict"`
	// Rule is where the allow rule or exception that permits it is ("ports.yaml:12:7").
	Rule      string          `json:"rule,omitempty"`
	Listeners []AuditListener `json:"listeners,omitempty"`
}

// AuditListener is a listening socket behind an open port, from the local inventory.
type AuditListener struct {
	// Bind is the bound address and port ("0.0.0.0:6379").
	Bind    string `json:"bind"`
	Process string `json:"process,omitempty"`
	PID     int    `json:"pid,omitempty"`
	User    string `json:"user,omitempty"`
}

// AuditFinding is one breach of the policy. Kind is "unauthorised_open",
// "required_closed", "wrong_owner", "public_bind" or "exception_expired"; Severity is
// "P0" to "P3"; Port is 0 for a finding about the host as a whole.
type AuditFinding struct {
	Kind     string `json:"kind"`
	Severity string `json:"severity"`
	Host     string `json:"host"`
	Addr     string `json:"addr,omitempty"`
	Port     uint16 `json:"port,omitempty"`
	Message  string `json:"message"`
	Process  string `json:"process,omitempty"`
	User     string `json:"user,omitempty"`
	Bind     string `json:"bind,omitempty"`
	Rule     string `json:"rule,omitempty"`
}
