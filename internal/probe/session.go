package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Helpers shared by the protocol probes (redis, mysql, postgres, ssh, smtp, nats, amqp,
// mqtt): bounded reads, malformed-reply errors and their classification.

// errMalformed marks a reply that breaks the protocol being spoken.
var errMalformed = errors.New("malformed reply")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// midMessage turns an EOF in the middle of a message into io.ErrUnexpectedEOF, so the
// truncation is reported as a protocol violation and not as a clean close.
func midMessage(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// failIO classifies an error met while talking a protocol: a malformed or truncated
// reply is ClassProtocol; network errors go through Classify.
func failIO(res *patrol.Result, err error, doing string) {
	switch {
	case errors.Is(err, errMalformed):
		res.Fail(patrol.ClassProtocol, "%s: %s", doing, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		res.Fail(patrol.ClassProtocol, "%s: server closed the connection in the middle of a message", doing)
	default:
		classifyInto(res, err, doing)
	}
}

// readCRLF reads one line ending in "\n" (a preceding "\r" is dropped), at most max
// bytes; a longer line is malformed.
func readCRLF(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, malformed("line longer than %d bytes", max)
		}
		line = append(line, frag...)
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if len(line) > 0 {
			return nil, midMessage(err)
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// stopOnCancel makes every pending read and write on conn fail as soon as ctx is done,
// even if ctx has no deadline. Call the returned function when done with conn.
func stopOnCancel(ctx context.Context, conn net.Conn) func() {
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// truncate shortens s to at most n bytes for messages, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// credentials returns the user name and password to log in with: the target URL's
// when it carries a password, otherwise the module's; a user name alone in the URL
// replaces the module's user name.
func credentials(t patrol.Target, user, pass string) (string, string) {
	if t.User == nil {
		return user, pass
	}
	if p, ok := t.User.Password(); ok {
		return t.User.Username(), p
	}
	if t.User.Username() != "" {
		return t.User.Username(), pass
	}
	return user, pass
}
