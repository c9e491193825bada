package probe

import (
	"bufio"
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// RFC 4253 §4.2: an identification line is at most 255 bytes; other lines may come
// first. These bound what the prober reads before giving up.
const (
	sshMaxLine     = 255
	sshMaxPreLines = 32
)

// newSSH builds the ssh prober: it reads the server's identification string
// ("SSH-2.0-OpenSSH_9.2p1 Debian-2"), answers with its own and closes. It takes no
// options.
func newSSH(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer conn.Close()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		t0 := time.Now()
		banner, ok := readSSHBanner(bufio.NewReaderSize(conn, 512), res)
		res.AddPhase("first_byte", time.Since(t0))
		if !ok {
			return
		}
		res.SetDetail("banner", banner)
		proto, software, _ := strings.Cut(strings.TrimPrefix(banner, "SSH-"), "-")
		software, comment, _ := strings.Cut(software, " ")
		res.SetDetail("protocol", proto)
		res.SetDetail("version", software)
		if comment != "" {
			res.SetDetail("comment", comment)
		}
		if proto != "2.0" && proto != "1.99" {
			res.Fail(patrol.ClassProtocol, "server speaks SSH protocol %s only; SSH-2.0 is required", truncate(proto, 20))
			return
		}
		// Our own identification string, so the server logs a clean close rather
		// than a missing identification.
		_, _ = io.WriteString(conn, "SSH-2.0-portpatrol\r\n")
	}, nil
}

// readSSHBanner reads lines until one starts with "SSH-" and returns it. It
// classifies into res and returns false on failure.
func readSSHBanner(r *bufio.Reader, res *patrol.Result) (string, bool) {
	var last string
	for i := 0; i < sshMaxPreLines; i++ {
		line, err := readCRLF(r, sshMaxLine)
		if err != nil {
			switch {
			case errors.Is(err, io.EOF) && i > 0:
				sshClosed(res, last)
			case errors.Is(err, io.EOF):
				res.Fail(patrol.ClassReset, "connection closed before the SSH banner (MaxStartups exceeded, TCP wrappers, or a rate limit such as PerSourcePenalties)")
			case errors.Is(err, errMalformed) && i == 0:
				res.Fail(patrol.ClassProtocol, "not an SSH server: first line is longer than %d bytes", sshMaxLine)
			default:
				failIO(res, err, "waiting for the SSH banner")
			}
			return "", false
		}
		s := strings.ToValidUTF8(string(line), "?")
		if strings.HasPrefix(s, "SSH-") {
			return s, true
		}
		if !utf8.Valid(line) || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
			res.Fail(patrol.ClassProtocol, "not an SSH server: binary data before the banner")
			return "", false
		}
		if s != "" {
			last = s
		}
	}
	res.Fail(patrol.ClassProtocol, "not an SSH server: %d lines without an SSH- banner (last %q)", sshMaxPreLines, truncate(last, 80))
	return "", false
}

// sshClosed classifies a server that wrote a line and closed without a banner.
func sshClosed(res *patrol.Result, line string) {
	lower := strings.ToLower(line)
	if strings.Contains(lower, "maxstartups") || strings.Contains(lower, "too many") {
		res.Fail(patrol.ClassOverloaded, "server refused the connection: %q (unauthenticated connections over MaxStartups)", truncate(line, 120))
		return
	}
	if strings.Contains(lower, "not allowed at this time") {
		res.Fail(patrol.ClassOverloaded, "server refused the connection: %q (sshd PerSourcePenalties or rate limit)", truncate(line, 120))
		return
	}
	res.Fail(patrol.ClassProtocol, "server closed without an SSH banner after %q", truncate(line, 120))
}
