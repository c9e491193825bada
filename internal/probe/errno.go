package probe

import (
	"errors"
	"io"
	"syscall"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

var errEOF = io.EOF

// classifyErrno maps the socket errors that tell a refused door from a reset one.
func classifyErrno(err error) (patrol.Class, string, bool) {
	var en syscall.Errno
	if !errors.As(err, &en) {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return patrol.ClassReset, "connection closed by peer mid-message", true
		}
		return "", "", false
	}
	switch en {
	case syscall.ECONNREFUSED:
		return patrol.ClassRefused, "connection refused (nothing listens there, or a firewall rejects)", true
	case syscall.ECONNRESET:
		return patrol.ClassReset, "connection reset by peer", true
	case syscall.EPIPE:
		return patrol.ClassReset, "broken pipe: peer closed the connection", true
	case syscall.ECONNABORTED:
		return patrol.ClassReset, "connection aborted", true
	case syscall.ETIMEDOUT:
		return patrol.ClassTimeout, "timed out", true
	case syscall.EHOSTUNREACH:
		return patrol.ClassRefused, "host unreachable (ICMP)", true
	case syscall.ENETUNREACH:
		return patrol.ClassRefused, "network unreachable: no route", true
	case syscall.EMFILE, syscall.ENFILE:
		return patrol.ClassError, "too many open files: out of file descriptors on the prober (raise ulimit -n or lower concurrency)", true
	case syscall.EADDRNOTAVAIL:
		return patrol.ClassError, "no local address or ephemeral port available on the prober", true
	}
	return "", "", false
}
