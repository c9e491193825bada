package store

import (
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Status is what portpatrol believes about a target now.
type Status string

// The statuses a target can be in.
const (
	StatusUnknown Status = "unknown" // not probed yet, or no verdict
	StatusUp      Status = "up"
	StatusDown    Status = "down"
)

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool { return s == StatusUnknown || s == StatusUp || s == StatusDown }

// ResultSummary is the gist of a target's last result. The zero value means no result.
type ResultSummary struct {
	Time     time.Time
	Class    patrol.Class
	Duration time.Duration
	Error    string
}

// State is the latest state of one target. The zero value is an unknown state of no
// target; a State to store needs Target and a valid Status.
type State struct {
	Target   string
	Status   Status
	Flapping bool
	// Since is when Status last changed.
	Since  time.Time
	Last   ResultSummary
	Labels map[string]string
	// UpdatedAt is when the state was last written.
	UpdatedAt time.Time
}
