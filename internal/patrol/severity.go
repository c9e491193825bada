package patrol

import (
	"fmt"
	"time"
)

// Severity is an alert's urgency. Lower numbers are more urgent.
type Severity int

// The severities of the policy in DESIGN.md.
const (
	P0 Severity = iota // unreachable: respond within 5 minutes
	P1                 // slow: respond within 15 minutes
	P2                 // near its connection limit: respond within 30 minutes
	P3                 // anomalous against its baseline: respond within 1 hour
)

// String returns "P0".."P3".
func (s Severity) String() string { return fmt.Sprintf("P%d", int(s)) }

// Deadline returns the default time within which an alert of this severity must be
// acknowledged.
func (s Severity) Deadline() time.Duration {
	switch s {
	case P0:
		return 5 * time.Minute
	case P1:
		return 15 * time.Minute
	case P2:
		return 30 * time.Minute
	default:
		return time.Hour
	}
}

// ParseSeverity parses "P0".."P3" (case-insensitive).
func ParseSeverity(s string) (Severity, error) {
	if len(s) == 2 && (s[0] == 'P' || s[0] == 'p') && s[1] >= '0' && s[1] <= '3' {
		return Severity(s[1] - '0'), nil
	}
	return 0, fmt.Errorf("invalid severity %q: want P0, P1, P2 or P3", s)
}
