package patrol

import "time"

// Status is what portpatrol believes about a target now: the scheduler's verdict after
// its failure and success thresholds, which the store keeps, the API shows and the alert
// engine judges.
type Status string

// The statuses. Every target starts unknown.
const (
	StatusUnknown Status = "unknown" // not probed yet, or no verdict
	StatusUp      Status = "up"
	StatusDown    Status = "down"
)

// Statuses lists every status in a stable order, for metrics and validation.
var Statuses = []Status{StatusUp, StatusDown, StatusUnknown}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return s == StatusUnknown || s == StatusUp || s == StatusDown }

// ResultSummary is the gist of a target's latest result. The zero value means no result.
type ResultSummary struct {
	Time     time.Time
	Class    Class
	Duration time.Duration
	Error    string
}

// Summary returns the gist of r.
func (r *Result) Summary() ResultSummary {
	return ResultSummary{Time: r.Start, Class: r.Class, Duration: r.Duration, Error: r.Error}
}

// TargetState is what is known about one target now. The scheduler judges it, the store
// keeps the latest and the API shows it. The zero value is an unknown state of no target;
// a state to store needs Target and a valid Status.
type TargetState struct {
	// Target is the target's canonical ID.
	Target string
	// Name is the configured display name; empty means the ID. Stores do not keep it.
	Name     string
	Status   Status
	Flapping bool
	// Since is when Status last changed.
	Since  time.Time
	Labels map[string]string
	// Last summarises the latest result; its zero value means none yet.
	Last ResultSummary
	// UpdatedAt is when the state was last written to a store; zero when it was not
	// read from one.
	UpdatedAt time.Time
}
