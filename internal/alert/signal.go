package alert

import (
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Signal is one probe result of one target with the scheduler's judgement of it. The
// engine runs the unreachable, slow, capacity and anomaly rules on it. A Signal is a
// value; the engine keeps Result (read-only) as evidence.
type Signal struct {
	// Target is the target's canonical ID; it is the subject of the alerts.
	Target string
	// Host is the target's host; it becomes the alert label "host" unless Labels has
	// one, and ties the target to a host-level alert on "host:<Host>".
	Host string
	// Labels are the target's labels (service, env, team, customer…); they flow
	// to its alerts.
	Labels map[string]string
	Result patrol.Result
	// Status is the scheduler's verdict after this result. Empty reads as unknown.
	Status patrol.Status
	// Flapping is the scheduler's flap detection: while true the target's
	// unreachable alert is flapping — one flapping notice, no pages.
	Flapping bool
	// At is when the result was taken; zero means the engine's clock.
	At time.Time
}

// Anomaly is the hook for the anomaly detector: a metric of a target is (or is no
// longer) anomalous against its learned baseline. It raises a P3 (by default) alert of
// class anomaly whose description says why in words.
type Anomaly struct {
	Target string
	Labels map[string]string
	// Metric names what is anomalous ("latency_p95", "connections"); each metric of a
	// target is an alert of its own.
	Metric string
	// Score is the detector's robust score, for the record.
	Score float64
	// Why explains the anomaly in words; it becomes the alert's description.
	Why string
	// Summary is the alert's one-line summary; empty means "<target> <metric>
	// anomalous (score …)".
	Summary string
	// Severity is "P0".."P3"; empty means the anomaly rule's severity. An open alert
	// takes the severity of each later anomaly that gives one.
	Severity string
	Active   bool
	// At is when it was detected; zero means the engine's clock.
	At time.Time
}
