package inventory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// The netlink sock_diag wire format (linux/netlink.h, linux/inet_diag.h), written by
// hand: golang.org/x/sys/unix has the constants but not these structures.
const (
	nlmsgHdrLen      = 16
	inetDiagReqLen   = 56 // inet_diag_req_v2
	inetDiagMsgLen   = 72 // inet_diag_msg
	sockDiagByFamily = 20
	tcpDiagGetSock   = 18 // the older TCP-only request, which matches both families
	inetDiagReqV1Len = 60 // inet_diag_req
	nlmsgError       = 2
	nlmsgDone        = 3
	nlmFRequest      = 0x1
	nlmFDump         = 0x300 // NLM_F_ROOT|NLM_F_MATCH
	inetDiagInfo     = 2     // INET_DIAG_INFO attribute: struct tcp_info
	inetDiagV6Only   = 11    // INET_DIAG_SKV6ONLY attribute: u8, sent for every AF_INET6 socket
	afInet           = 2
	afInet6          = 10
	ipprotoTCP       = 6
	ipprotoUDP       = 17

	// Offsets in struct tcp_info (linux/tcp.h) of the traffic counters.
	tcpiBytesAcked    = 120
	tcpiBytesReceived = 128
)

// diagRequest builds one SOCK_DIAG_BY_FAMILY dump request for sockets of family
// (afInet/afInet6) and protocol in the given states; withInfo asks for tcp_info.
func diagRequest(seq uint32, family, protocol uint8, states States, withInfo bool) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], sockDiagByFamily)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	r[0] = family
	r[1] = protocol
	if withInfo {
		r[2] = 1 << (inetDiagInfo - 1)
	}
	if states == 0 {
		states = AllStates
	}
	ne.PutUint32(r[4:], uint32(states))
	// The socket id (ports, addresses, interface, cookie) stays zero: a dump matches all.
	return b
}

// tcpDiagRequest builds one TCPDIAG_GETSOCK dump request for TCP sockets of both
// families in the given states; withInfo asks for tcp_info. The kernel answers it with
// one walk of its TCP tables where two SOCK_DIAG_BY_FAMILY requests (AF_INET, then
// AF_INET6) walk them twice — with a large established hash, most of a dump's cost.
func tcpDiagRequest(seq uint32, states States, withInfo bool) []byte {
	b := make([]byte, nlmsgHdrLen+inetDiagReqV1Len)
	ne := binary.NativeEndian
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], tcpDiagGetSock)
	ne.PutUint16(b[6:], nlmFRequest|nlmFDump)
	ne.PutUint32(b[8:], seq)
	r := b[nlmsgHdrLen:]
	// r[0], the family, is not read: the kernel dumps AF_UNSPEC for this request.
	if withInfo {
		r[3] = 1 << (inetDiagInfo - 1)
	}
	if states == 0 {
		states = AllStates
	}
	ne.PutUint32(r[52:], uint32(states))
	return b
}

// maxPortFilter bounds the ports of a netlink port filter: the kernel runs the filter,
// one comparison per port, on every socket of a dump.
const maxPortFilter = 256

// Bytecode of INET_DIAG_REQ_BYTECODE (linux/inet_diag.h).
const (
	inetDiagReqBytecode = 1  // the request attribute
	inetDiagBCJmp       = 1  // INET_DIAG_BC_JMP: always jump by no
	inetDiagBCSEq       = 11 // INET_DIAG_BC_S_EQ: local port equals op[1].no
)

// withPortFilter appends to a dump request a filter that keeps only sockets whose
// local port is one of ports, and returns the request.
//
// An op is {code u8, yes u8, no u16}: the program goes on yes bytes further when the
// op holds, no bytes further when not, and accepts the socket when it lands exactly
// on its end. The kernel checks a program by following the yes jumps, which must step
// on every op that a no jump lands on. So each port is an S_EQ op (8 bytes with the
// port) whose yes is the next op, a JMP to the end (accept); its no skips that JMP to
// the next port, and from the last port lands 4 bytes beyond the end (reject).
func withPortFilter(req []byte, ports []uint16) []byte {
	ne := binary.NativeEndian
	n := len(ports) * 12
	attr := make([]byte, 4+n)
	ne.PutUint16(attr[0:], uint16(len(attr)))
	ne.PutUint16(attr[2:], inetDiagReqBytecode)
	for k, p := range ports {
		op := attr[4+12*k:]
		op[0], op[1] = inetDiagBCSEq, 8
		no := 12
		if k == len(ports)-1 {
			no = 16
		}
		ne.PutUint16(op[2:], uint16(no))
		ne.PutUint16(op[6:], p) // op[1].no: the port, host order
		op[8], op[9] = inetDiagBCJmp, 4
		ne.PutUint16(op[10:], uint16(n-12*k-8)) // from the JMP to the end
	}
	req = append(req, attr...)
	ne.PutUint32(req[0:], uint32(len(req)))
	return req
}

// NetlinkError is an error the kernel returned for a sock_diag request.
type NetlinkError struct{ Errno syscall.Errno }

func (e *NetlinkError) Error() string { return "sock_diag: " + e.Errno.Error() }

// Unwrap returns the errno, so errors.Is(err, syscall.ENOENT) works.
func (e *NetlinkError) Unwrap() error { return e.Errno }

// ParseDiag parses one buffer of netlink messages answering a sock_diag dump of
// protocol proto, calling fn for every socket (fn must not keep the pointer). It
// reports whether the dump is done (NLMSG_DONE) and returns the kernel's error for an
// NLMSG_ERROR. Messages of another sequence number than seq are skipped; seq 0 accepts
// any. It is a pure function, safe for concurrent use, and never panics on bad input.
func ParseDiag(b []byte, seq uint32, proto Proto, fn func(*Socket)) (done bool, err error) {
	ne := binary.NativeEndian
	var s Socket
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b[0:]))
		typ := ne.Uint16(b[4:])
		mseq := ne.Uint32(b[8:])
		if l < nlmsgHdrLen || l > len(b) {
			return false, fmt.Errorf("sock_diag: message length %d of %d bytes left", l, len(b))
		}
		body := b[nlmsgHdrLen:l]
		if al := (l + 3) &^ 3; al < len(b) {
			b = b[al:]
		} else {
			b = b[len(b):]
		}
		if seq != 0 && mseq != seq {
			continue
		}
		switch typ {
		case nlmsgDone:
			return true, nil
		case nlmsgError:
			if len(body) < 4 {
				return true, errors.New("sock_diag: short error message")
			}
			code := int32(ne.Uint32(body))
			if code == 0 {
				continue // an acknowledgement
			}
			return true, &NetlinkError{Errno: syscall.Errno(-code)}
		case sockDiagByFamily, tcpDiagGetSock:
		default:
			continue
		}
		if len(body) < inetDiagMsgLen {
			return false, fmt.Errorf("sock_diag: inet_diag_msg of %d bytes, want %d", len(body), inetDiagMsgLen)
		}
		s = Socket{Proto: proto}
		if err := decodeDiagMsg(body, &s); err != nil {
			return false, err
		}
		fn(&s)
	}
	if len(b) != 0 {
		return false, fmt.Errorf("sock_diag: %d trailing bytes", len(b))
	}
	return false, nil
}

// decodeDiagMsg fills s from an inet_diag_msg and its attributes.
func decodeDiagMsg(m []byte, s *Socket) error {
	ne := binary.NativeEndian
	family := m[0]
	s.State = State(m[1])
	id := m[4:52]
	sport := binary.BigEndian.Uint16(id[0:])
	dport := binary.BigEndian.Uint16(id[2:])
	switch family {
	case afInet:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(id[4:8])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(id[20:24])), dport)
	case afInet6:
		s.IPv6 = true
		s.Local = netip.AddrPortFrom(netip.AddrFrom16([16]byte(id[4:20])), sport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16([16]byte(id[20:36])), dport)
	default:
		return fmt.Errorf("sock_diag: address family %d", family)
	}
	s.Interface = int(ne.Uint32(id[36:]))
	s.RecvQ = ne.Uint32(m[56:])
	s.SendQ = ne.Uint32(m[60:])
	s.UID = ne.Uint32(m[64:])
	s.Inode = uint64(ne.Uint32(m[68:]))
	// Attributes: struct rtattr { u16 len; u16 type; } + payload, 4-byte aligned.
	a := m[inetDiagMsgLen:]
	for len(a) >= 4 {
		al := int(ne.Uint16(a[0:]))
		at := ne.Uint16(a[2:])
		if al < 4 || al > len(a) {
			return fmt.Errorf("sock_diag: attribute length %d of %d bytes left", al, len(a))
		}
		p := a[4:al]
		if at == inetDiagInfo && len(p) >= tcpiBytesReceived+8 {
			s.BytesOut = ne.Uint64(p[tcpiBytesAcked:])
			s.BytesIn = ne.Uint64(p[tcpiBytesReceived:])
		}
		if at == inetDiagV6Only && len(p) >= 1 {
			s.V6Only = p[0] != 0
		}
		if pad := (al + 3) &^ 3; pad < len(a) {
			a = a[pad:]
		} else {
			a = a[len(a):]
		}
	}
	return nil
}
