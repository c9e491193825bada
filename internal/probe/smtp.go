package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// SMTPModule configures the smtp prober. The zero value reads the greeting and
// sends QUIT.
type SMTPModule struct {
	// EHLO is the name sent in EHLO; empty means no EHLO unless StartTLS needs one,
	// which then uses "localhost".
	EHLO string `yaml:"ehlo"`
	// StartTLS upgrades the session with STARTTLS and checks the certificate.
	StartTLS bool `yaml:"starttls"`
	// TLS speaks TLS from the first byte (SMTPS, port 465).
	TLS       bool      `yaml:"tls"`
	TLSConfig TLSConfig `yaml:"tls_config"`
}

// SMTP reply limits (RFC 5321 allows 512-byte lines; servers stretch it).
const (
	smtpMaxLine  = 4096
	smtpMaxLines = 128
)

// smtpReply is one possibly multi-line reply.
type smtpReply struct {
	Code  int
	Lines []string
}

func (r smtpReply) text() string { return strings.Join(r.Lines, " / ") }

// newSMTP builds the smtp prober. Query options: ehlo, starttls, tls, insecure,
// servername.
//
// Greeting classes: 220 is up. 421 is the server declining service for now; when its
// text speaks of too many connections it is overloaded, otherwise protocol. 554 (no
// service for us) and anything else is protocol.
func newSMTP(t patrol.Target, m *Module, env *Env, q *options) (runFunc, error) {
	c := m.SMTP
	if v, ok := q.string("ehlo"); ok {
		c.EHLO = v
	}
	if v, ok := q.bool("starttls"); ok {
		c.StartTLS = v
	}
	if v, ok := q.bool("tls"); ok {
		c.TLS = v
	}
	if v, ok := q.bool("insecure"); ok {
		c.TLSConfig.InsecureSkipVerify = v
	}
	if v, ok := q.string("servername"); ok {
		c.TLSConfig.ServerName = v
	}
	if c.TLS && c.StartTLS {
		return nil, fmt.Errorf("smtp: tls and starttls exclude each other")
	}
	if strings.ContainsAny(c.EHLO, " \r\n") {
		return nil, fmt.Errorf("smtp ehlo %q: want a host name", c.EHLO)
	}
	ehlo := c.EHLO
	if ehlo == "" && c.StartTLS {
		ehlo = "localhost"
	}
	var tlsCfg *tls.Config
	if c.TLS || c.StartTLS {
		var err error
		if tlsCfg, err = buildTLSConfig(c.TLSConfig, t.Host, env); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, res *patrol.Result) {
		conn := dial(ctx, env, "tcp", t, res)
		if conn == nil {
			return
		}
		defer func() { conn.Close() }()
		setDeadline(ctx, conn)
		stop := stopOnCancel(ctx, conn)
		defer stop()
		if c.TLS {
			tc := handshake(ctx, conn, tlsCfg, tlsSkipVerify(c.TLSConfig), env, res)
			if tc == nil || res.Class != patrol.ClassOK {
				return
			}
			conn = tc
		}
		s := &smtpSession{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
		t0 := time.Now()
		greet, err := readSMTPReply(s.r)
		res.AddPhase("first_byte", time.Since(t0))
		if err != nil {
			failIO(res, err, "waiting for the SMTP greeting")
			return
		}
		res.SetDetail("banner", truncate(greet.Lines[0], 200))
		if greet.Code != 220 {
			smtpGreetingFail(res, greet)
			if greet.Code == 421 {
				return // the server closes the channel itself
			}
			s.quit()
			return
		}
		if ehlo != "" {
			ext, ok := s.ehlo(ehlo, res)
			if !ok {
				return
			}
			if c.StartTLS {
				if !ext["STARTTLS"] {
					res.Fail(patrol.ClassProtocol, "STARTTLS is not offered after EHLO")
					s.quit()
					return
				}
				rep, err := s.cmd("STARTTLS")
				if err != nil {
					failIO(res, err, "STARTTLS")
					return
				}
				if rep.Code != 220 {
					res.Fail(patrol.ClassProtocol, "STARTTLS refused: %d %s", rep.Code, truncate(rep.text(), 200))
					s.quit()
					return
				}
				tc := handshake(ctx, conn, tlsCfg, tlsSkipVerify(c.TLSConfig), env, res)
				if tc == nil {
					return
				}
				failed := res.Class != patrol.ClassOK
				s.conn, s.r = tc, bufio.NewReaderSize(tc, 4096)
				if failed {
					s.quit() // a certificate problem still ends the session politely
					return
				}
				if _, ok := s.ehlo(ehlo, res); !ok {
					return
				}
			}
		}
		s.quit()
	}, nil
}

func smtpGreetingFail(res *patrol.Result, greet smtpReply) {
	text := truncate(greet.text(), 200)
	lower := strings.ToLower(text)
	switch {
	case greet.Code == 421 && (strings.Contains(lower, "too many") || strings.Contains(lower, "try again later") && strings.Contains(lower, "connection")):
		res.Fail(patrol.ClassOverloaded, "server is full: %d %s", greet.Code, text)
	case greet.Code == 421:
		res.Fail(patrol.ClassProtocol, "service not available: %d %s", greet.Code, text)
	case greet.Code == 554:
		res.Fail(patrol.ClassProtocol, "server refuses SMTP service to this client: %d %s", greet.Code, text)
	default:
		res.Fail(patrol.ClassProtocol, "greeting %d, want 220: %s", greet.Code, text)
	}
}

type smtpSession struct {
	conn net.Conn
	r    *bufio.Reader
}

func (s *smtpSession) cmd(line string) (smtpReply, error) {
	if _, err := io.WriteString(s.conn, line+"\r\n"); err != nil {
		return smtpReply{}, err
	}
	return readSMTPReply(s.r)
}

// ehlo sends EHLO and returns the advertised extensions (upper-case keywords).
func (s *smtpSession) ehlo(name string, res *patrol.Result) (map[string]bool, bool) {
	rep, err := s.cmd("EHLO " + name)
	if err != nil {
		failIO(res, err, "EHLO")
		return nil, false
	}
	if rep.Code != 250 {
		res.Fail(patrol.ClassProtocol, "EHLO: %d %s", rep.Code, truncate(rep.text(), 200))
		s.quit()
		return nil, false
	}
	ext := map[string]bool{}
	var names []string
	for _, l := range rep.Lines[1:] {
		kw, _, _ := strings.Cut(l, " ")
		kw = strings.ToUpper(kw)
		ext[kw] = true
		names = append(names, kw)
	}
	res.SetDetail("extensions", truncate(strings.Join(names, " "), 200))
	return ext, true
}

// quit sends QUIT and waits briefly for the 221.
func (s *smtpSession) quit() {
	if _, err := io.WriteString(s.conn, "QUIT\r\n"); err != nil {
		return
	}
	_ = s.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = readSMTPReply(s.r)
}

// readSMTPReply reads one reply: "250-first", "250-…", "250 last".
func readSMTPReply(r *bufio.Reader) (smtpReply, error) {
	var rep smtpReply
	for i := 0; i < smtpMaxLines; i++ {
		line, err := readCRLF(r, smtpMaxLine)
		if err != nil {
			if i > 0 {
				err = midMessage(err)
			}
			return rep, err
		}
		if len(line) < 3 {
			return rep, malformed("not an SMTP reply: %q", truncate(string(line), 40))
		}
		code, err := strconv.Atoi(string(line[:3]))
		if err != nil || code < 200 || code > 599 {
			return rep, malformed("not an SMTP reply: %q", truncate(strings.ToValidUTF8(string(line), "?"), 40))
		}
		if i > 0 && code != rep.Code {
			return rep, malformed("reply code changed from %d to %d within one reply", rep.Code, code)
		}
		rep.Code = code
		text := ""
		if len(line) > 4 {
			text = strings.ToValidUTF8(string(line[4:]), "?")
		}
		rep.Lines = append(rep.Lines, text)
		if len(line) == 3 || line[3] == ' ' {
			return rep, nil
		}
		if line[3] != '-' {
			return rep, malformed("not an SMTP reply: %q", truncate(strings.ToValidUTF8(string(line), "?"), 40))
		}
	}
	return rep, malformed("reply longer than %d lines", smtpMaxLines)
}
