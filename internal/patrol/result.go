// Package patrol holds portpatrol's domain types: targets, probe results and their
// classes, capacity readings, target statuses and states, history series, alerts and
// severities, findings, silences and their matchers. It imports only the standard
// library; every other package depends on it and never the other way round, and each
// of these concepts is declared here once.
package patrol

import (
	"fmt"
	"time"
)

// Class classifies the outcome of one probe. A probe failure is data: every result has
// exactly one class, and the class — not a log line — says what went wrong.
type Class string

// The result classes. ClassOK and ClassSlow mean the door is open (Up); every other
// class means it is not usable.
const (
	ClassOK         Class = "ok"         // answered as expected within its threshold
	ClassSlow       Class = "slow"       // answered as expected, but over its latency threshold
	ClassRefused    Class = "refused"    // connection refused (TCP RST on SYN, ICMP port unreachable)
	ClassTimeout    Class = "timeout"    // no answer before the deadline
	ClassReset      Class = "reset"      // the peer reset or closed an established connection
	ClassDNS        Class = "dns"        // the name did not resolve
	ClassTLS        Class = "tls"        // handshake failed, untrusted, expired or wrong-host certificate
	ClassProtocol   Class = "protocol"   // connected, but the reply was not what the protocol or a rule expects
	ClassOverloaded Class = "overloaded" // the server says it is full (max clients, too many connections)
	ClassAuth       Class = "auth"       // the server rejected our credentials
	ClassError      Class = "error"      // a local error: bad input, no route, out of file descriptors
)

// Classes lists every class in a stable order, for metrics and docs.
var Classes = []Class{ClassOK, ClassSlow, ClassRefused, ClassTimeout, ClassReset, ClassDNS,
	ClassTLS, ClassProtocol, ClassOverloaded, ClassAuth, ClassError}

// Up reports whether a result of this class means the door is usable.
func (c Class) Up() bool { return c == ClassOK || c == ClassSlow }

// Phase is the time one step of a probe took (dns, connect, tls, first_byte, transfer…).
type Phase struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"-"`
}

// Capacity is a "used of limit" reading a probe took from the server itself, such as
// Redis connected_clients/maxclients. The zero value means no reading.
type Capacity struct {
	What  string `json:"what"` // e.g. "clients", "connections"
	Used  int64  `json:"used"`
	Limit int64  `json:"limit"`
}

// Ratio returns Used/Limit, or 0 when Limit is unknown.
func (c Capacity) Ratio() float64 {
	if c.Limit <= 0 {
		return 0
	}
	return float64(c.Used) / float64(c.Limit)
}

// TLSInfo describes the TLS session a probe negotiated.
type TLSInfo struct {
	Version         string    `json:"version"`         // "TLS 1.3"
	ServerName      string    `json:"server_name"`     // SNI sent
	EarliestExpiry  time.Time `json:"earliest_expiry"` // NotAfter of the first certificate in the chain to expire
	LastChainExpiry time.Time `json:"last_chain_expiry,omitempty"`
	DaysLeft        float64   `json:"days_left"`         // until EarliestExpiry, at probe time
	Subject         string    `json:"subject,omitempty"` // leaf certificate subject CN
	// SAN is the leaf certificate's first subject alternative name (DNS name, else IP
	// address): the name to show when the subject has no CN, as most certificates
	// issued today do not.
	SAN    string `json:"san,omitempty"`
	Issuer string `json:"issuer,omitempty"`
	// NotAfter is the leaf certificate's NotAfter: when the certificate the server
	// presents stops being valid. Every probe that speaks TLS sets it; the alert
	// engine's cert_expiry rule reads it.
	NotAfter time.Time `json:"not_after,omitempty"`
	Verified bool      `json:"verified"` // chain verified against the trust roots
}

// HTTPInfo describes an HTTP exchange.
type HTTPInfo struct {
	Status        int    `json:"status"`
	Proto         string `json:"proto"` // "HTTP/1.1"
	Redirects     int    `json:"redirects"`
	ContentLength int64  `json:"content_length"` // -1 when unknown
	BodyLength    int64  `json:"body_length"`    // bytes read
	FinalURL      string `json:"final_url,omitempty"`
}

// Result is the outcome of one probe of one target. probe.Probe.Run fills in Target,
// Start and Duration; the protocol code fills in the rest.
type Result struct {
	Target   string        `json:"target"` // canonical target ID
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"-"`
	Class    Class         `json:"class"`
	// Error is a message a person can act on; empty when Class is ok.
	Error string `json:"error,omitempty"`
	// RemoteAddr is the address actually dialled ("127.0.0.1:6379").
	RemoteAddr string    `json:"remote_addr,omitempty"`
	Phases     []Phase   `json:"-"`
	TLS        *TLSInfo  `json:"tls,omitempty"`
	HTTP       *HTTPInfo `json:"http,omitempty"`
	Capacity   *Capacity `json:"capacity,omitempty"`
	// Details holds protocol facts worth showing: server version, banner, rcode, notes
	// such as "authentication required".
	Details map[string]string `json:"details,omitempty"`
}

// Up reports whether the target was usable.
func (r *Result) Up() bool { return r.Class.Up() }

// Phase returns the duration of the named phase and whether it was recorded.
func (r *Result) Phase(name string) (time.Duration, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.Duration, true
		}
	}
	return 0, false
}

// AddPhase records that a phase took d.
func (r *Result) AddPhase(name string, d time.Duration) {
	r.Phases = append(r.Phases, Phase{Name: name, Duration: d})
}

// SetDetail records a protocol fact.
func (r *Result) SetDetail(k, v string) {
	if r.Details == nil {
		r.Details = make(map[string]string, 4)
	}
	r.Details[k] = v
}

// Fail sets the class and a formatted, actionable error message and returns r, so a
// probe can write `return res.Fail(patrol.ClassProtocol, "expected PONG, got %q", line)`.
func (r *Result) Fail(c Class, format string, args ...any) *Result {
	r.Class = c
	r.Error = fmt.Sprintf(format, args...)
	return r
}

// String renders a one-line summary, for logs and tests.
func (r *Result) String() string {
	if r.Error == "" {
		return fmt.Sprintf("%s %s %s", r.Target, r.Class, r.Duration)
	}
	return fmt.Sprintf("%s %s %s: %s", r.Target, r.Class, r.Duration, r.Error)
}
