package inventory

import (
	"fmt"
	"strings"
)

// Proto is a transport protocol: "tcp" or "udp". The zero value means both in a Filter.
type Proto string

// The protocols an Inventory reads.
const (
	TCP Proto = "tcp"
	UDP Proto = "udp"
)

// State is a socket state as the kernel numbers it (include/net/tcp_states.h). UDP
// sockets use StateEstablished when connected and StateClose ("UNCONN") otherwise.
type State uint8

// The kernel's socket states.
const (
	StateEstablished State = 1
	StateSynSent     State = 2
	StateSynRecv     State = 3
	StateFinWait1    State = 4
	StateFinWait2    State = 5
	StateTimeWait    State = 6
	StateClose       State = 7
	StateCloseWait   State = 8
	StateLastAck     State = 9
	StateListen      State = 10
	StateClosing     State = 11
	StateNewSynRecv  State = 12
)

// stateNames follows ss(8), so output reads the same as the tool people know.
var stateNames = [...]string{
	StateEstablished: "ESTAB",
	StateSynSent:     "SYN-SENT",
	StateSynRecv:     "SYN-RECV",
	StateFinWait1:    "FIN-WAIT-1",
	StateFinWait2:    "FIN-WAIT-2",
	StateTimeWait:    "TIME-WAIT",
	StateClose:       "UNCONN",
	StateCloseWait:   "CLOSE-WAIT",
	StateLastAck:     "LAST-ACK",
	StateListen:      "LISTEN",
	StateClosing:     "CLOSING",
	StateNewSynRecv:  "SYN-RECV",
}

// String returns the state as ss(8) prints it ("LISTEN", "ESTAB", "UNCONN"…).
func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE-%d", uint8(s))
}

// MarshalText renders the state's name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ParseState parses a state name as ss(8) prints or accepts it ("listen", "estab",
// "established", "time-wait", "unconn", "syn-recv"…), ignoring case and "_" vs "-".
func ParseState(name string) (State, error) {
	n := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(name), "_", "-"))
	switch n {
	case "ESTABLISHED":
		return StateEstablished, nil
	case "CLOSE", "CLOSED":
		return StateClose, nil
	}
	for i, s := range stateNames {
		if s != "" && s == n {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown socket state %q; known: listen, estab, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, unconn, close-wait, last-ack, closing", name)
}

// States is a set of states as a bitmask (bit n for state n), the form inet_diag takes.
// The zero value means every state.
type States uint32

// StatesOf returns the set holding the given states.
func StatesOf(ss ...State) States {
	var m States
	for _, s := range ss {
		m |= 1 << s
	}
	return m
}

// Has reports whether s is in the set; the empty set holds every state.
func (m States) Has(s State) bool { return m == 0 || m&(1<<s) != 0 }

// AllStates is every state, as the kernel's dump mask.
const AllStates States = 0xfff << 1
