package patrol

import "time"

// Finding raises or clears an alert that an engine other than the probes judged: a
// security finding (scan, brute force, unauthorised open port), a configuration fault
// (bind conflict, public bind), or — from the local listener watch — a vanished
// listener, as class unreachable with the target as Subject. A finding is active until
// the same Class, Rule and Subject arrive with Active false.
type Finding struct {
	Class AlertClass
	// Rule names the check that found it ("unauthorised_port", "public_bind"); empty
	// means the class name, so that a Finding of class unreachable on a target is the
	// same incident as the probes' unreachable alert on it.
	Rule string
	// Subject is what the finding is about: a target ID, or "host:<name>" for a host.
	Subject string
	// Severity is "P0".."P3"; empty means the severity of Class's rule.
	Severity string
	Summary  string
	// Description may say more: evidence in words, what to do.
	Description string
	Labels      map[string]string
	Active      bool
	// At is when it was found; zero means the alert engine's clock.
	At time.Time
}
