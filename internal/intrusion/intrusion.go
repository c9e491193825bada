// Package intrusion notices strangers trying the doors: port scans, half-open floods
// and brute force against authentication ports, judged from the kernel's connection
// tracking events, and bans their addresses in portpatrol's own nftables table with
// per-element timeouts, so that every ban ends on time even if portpatrol does not.
//
// The Detector is pure and single-threaded: it is fed Events and a clock and returns
// Findings. The conntrack Source (Linux) feeds it; the Table (Linux) enforces bans;
// the Banner decides them (allowlist, escalation, breaker, dry run, store, audit).
package intrusion

import (
	"fmt"
	"net/netip"
	"time"
)

// EventType is what happened to a flow.
type EventType uint8

// Flow event types, as conntrack reports them.
const (
	EventNew EventType = iota + 1
	EventUpdate
	EventDestroy
)

// TCP connection tracking states, numbered as the kernel numbers them
// (enum tcp_conntrack).
const (
	TCPNone        uint8 = 0
	TCPSynSent     uint8 = 1
	TCPSynRecv     uint8 = 2
	TCPEstablished uint8 = 3
	TCPFinWait     uint8 = 4
	TCPCloseWait   uint8 = 5
	TCPLastAck     uint8 = 6
	TCPTimeWait    uint8 = 7
	TCPClose       uint8 = 8
	TCPSynSent2    uint8 = 9
)

var tcpStateNames = [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
	"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}

// TCPStateName returns the kernel's name of a TCP conntrack state.
func TCPStateName(s uint8) string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return fmt.Sprintf("STATE_%d", s)
}

// Protocol numbers the detector knows.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Event is one conntrack event about a flow, in the original direction (Src is the
// side that opened it).
type Event struct {
	Type             EventType
	Proto            uint8
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// TCPState is the flow's TCP state after the event (TCP only).
	TCPState uint8
	// Assured is true once the flow has seen traffic both ways (for TCP: a completed
	// handshake).
	Assured bool
	// Start is when the flow began, when the kernel stamps flows
	// (net.netfilter.nf_conntrack_timestamp); zero otherwise.
	Start time.Time
}

// Finding is a detection: one source doing one kind of thing, with its evidence.
type Finding struct {
	// Class is "scan" or "bruteforce".
	Class string `json:"class"`
	// Kind is the detector that fired: "fast_scan", "slow_scan", "half_open" or
	// "bruteforce".
	Kind   string     `json:"kind"`
	Source netip.Addr `json:"source"`
	// Ports are destination ports tried, ascending (a sample of at most 64).
	Ports         []uint16 `json:"ports"`
	DistinctPorts int      `json:"distinct_ports"`
	DistinctHosts int      `json:"distinct_hosts"`
	// Score is the weighted fast-scan score, or the count the threshold was met by.
	Score     int `json:"score"`
	Threshold int `json:"threshold"`
	// Rate is the source's new flows per second over the detector's window.
	Rate      float64   `json:"rate"`
	Refused   int       `json:"refused"`   // flows reset or refused, never assured
	HalfOpen  int       `json:"half_open"` // flows that timed out never assured
	Attempts  int       `json:"attempts"`  // short connections to authentication ports
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Samples   []Sample  `json:"samples"`
	// Reason says why, in words.
	Reason string `json:"reason"`
}

// Sample is one flow shown as evidence.
type Sample struct {
	Dst   netip.AddrPort `json:"dst"`
	Proto string         `json:"proto"`
	State string         `json:"state"`
	At    time.Time      `json:"at"`
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprintf("proto-%d", p)
}
