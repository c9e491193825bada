// Package email sends notifications as plain-text mail through an SMTP server, with
// STARTTLS required unless turned off. The Message-ID is derived from the
// notification's key and receiver, so a message retried after a lost reply is one
// message to mail clients.
package email

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures an Email.
type Config struct {
	// Host and Port are the SMTP server's; Host is required, Port defaults to 587.
	Host string
	Port int
	// From is the sender ("portpatrol <alerts@example.com>"). Required.
	From string
	// To lists the recipients. Required.
	To []string
	// Username and Password, when Username is set, authenticate with AUTH PLAIN
	// (which net/smtp allows only over TLS or to localhost).
	Username string
	Password string
	// NoStartTLS sends without STARTTLS. The zero value requires it: a server that
	// does not offer it fails the send.
	NoStartTLS bool
	// TLSConfig is used for STARTTLS; nil means the system roots and ServerName Host.
	TLSConfig *tls.Config
	// HelloName is the name sent in EHLO; empty means "localhost".
	HelloName string
	// Templates render subject and body; nil means the defaults.
	Templates *render.Templates
}

// Email sends mail. It is safe for concurrent use.
type Email struct {
	cfg  Config
	from *mail.Address
	to   []*mail.Address
}

// New returns an Email, checking the addresses.
func New(cfg Config) (*Email, error) {
	if cfg.Host == "" {
		return nil, errors.New("email: missing smtp host")
	}
	if cfg.Port == 0 {
		cfg.Port = 587
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("email: from %q: %w", cfg.From, err)
	}
	if len(cfg.To) == 0 {
		return nil, errors.New("email: no recipients")
	}
	e := &Email{cfg: cfg, from: from}
	for _, t := range cfg.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("email: to %q: %w", t, err)
		}
		e.to = append(e.to, a)
	}
	if cfg.Templates == nil {
		e.cfg.Templates, _ = render.New(render.Config{})
	}
	if cfg.HelloName == "" {
		e.cfg.HelloName = "localhost"
	}
	return e, nil
}

// Type names an email receiver in notify.receivers.
const Type = "email"

// ReceiverConfig is an email receiver's own fields in notify.receivers.
type ReceiverConfig struct {
	// SMTP is the mail server and the addresses. Required.
	SMTP *SMTPConfig `yaml:"smtp"`
}

// SMTPConfig is an email receiver's mail server and addresses. The password is given
// inline (prefer ${ENV}) or read from password_file, not both.
type SMTPConfig struct {
	// Host is the server. Required.
	Host string `yaml:"host"`
	// Port defaults to 587.
	Port int `yaml:"port"`
	// From is the sender ("portpatrol <alerts@example.com>"). Required.
	From string `yaml:"from"`
	// To lists the recipients; at least one.
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	// StartTLS requires STARTTLS before anything is sent; nil means true. Set it to
	// false only for a relay on the same host.
	StartTLS *bool `yaml:"starttls"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	s := c.SMTP
	if s == nil {
		return receiver.Required(Type, "smtp", false)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, receiver.Errorf("smtp."+field, format, args...))
	}
	if s.Host == "" {
		bad("host", "required")
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("port", "%d is out of range 1-65535", s.Port)
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		bad("from", "%q: %v", s.From, err)
	}
	if len(s.To) == 0 {
		bad("to", "at least one recipient is required")
	}
	for i, t := range s.To {
		if _, err := mail.ParseAddress(t); err != nil {
			bad(fmt.Sprintf("to[%d]", i), "%q: %v", t, err)
		}
	}
	errs = append(errs, receiver.Secret("smtp.password", s.Password, s.PasswordFile))
	if (s.Password != "" || s.PasswordFile != "") && s.Username == "" {
		bad("username", "required when a password is given")
	}
	return errors.Join(errs...)
}

// Build reads c's password file and returns the Email c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Email, error) {
	s := c.SMTP
	if s == nil {
		return nil, errors.New("email: missing smtp")
	}
	password, err := env.Secret("smtp.password", s.Password, s.PasswordFile)
	if err != nil {
		return nil, err
	}
	return New(Config{
		Host: s.Host, Port: s.Port, From: s.From, To: s.To, Username: s.Username, Password: password,
		NoStartTLS: s.StartTLS != nil && !*s.StartTLS, Templates: env.Templates,
	})
}

// Notify sends n as one message to every recipient.
func (e *Email) Notify(ctx context.Context, n patrol.Notification) error {
	msg, err := e.Message(n)
	if err != nil {
		return send.Permanentf("email: %w", err)
	}
	return e.send(ctx, msg)
}

// Message renders n as an RFC 5322 message with CRLF line endings. Its Date is the
// notification's CreatedAt.
func (e *Email) Message(n patrol.Notification) ([]byte, error) {
	m, err := e.cfg.Templates.Render(n)
	if err != nil {
		return nil, err
	}
	to := make([]string, len(e.to))
	for i, a := range e.to {
		to[i] = a.String()
	}
	domain := "portpatrol"
	if _, d, ok := strings.Cut(e.from.Address, "@"); ok {
		domain = d
	}
	sum := sha256.Sum256([]byte(n.Receiver + "\x00" + n.Key))
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("Date", n.CreatedAt.Format(time.RFC1123Z))
	h("From", e.from.String())
	h("To", strings.Join(to, ", "))
	h("Subject", mime.QEncoding.Encode("utf-8", m.Title))
	h("Message-ID", "<"+hex.EncodeToString(sum[:12])+"@"+domain+">")
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	h("Auto-Submitted", "auto-generated")
	h("X-Portpatrol-Kind", string(n.Kind))
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(strings.ReplaceAll(m.Body, "\n", "\r\n") + "\r\n")); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (e *Email) send(ctx context.Context, msg []byte) error {
	addr := net.JoinHostPort(e.cfg.Host, strconv.Itoa(e.cfg.Port))
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return &send.Error{Err: fmt.Errorf("email: dial %s: %w", addr, err)}
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c, err := smtp.NewClient(conn, e.cfg.Host)
	if err != nil {
		conn.Close()
		return classify("greeting", err)
	}
	defer c.Close()
	if err := c.Hello(e.cfg.HelloName); err != nil {
		return classify("EHLO", err)
	}
	if !e.cfg.NoStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return send.Permanentf("email: %s does not offer STARTTLS", addr)
		}
		tc := e.cfg.TLSConfig
		if tc == nil {
			tc = &tls.Config{ServerName: e.cfg.Host}
		}
		if err := c.StartTLS(tc); err != nil {
			return classify("STARTTLS", err)
		}
	}
	if e.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.cfg.Username, e.cfg.Password, e.cfg.Host)); err != nil {
			return classify("AUTH", err)
		}
	}
	if err := c.Mail(e.from.Address); err != nil {
		return classify("MAIL FROM", err)
	}
	for _, a := range e.to {
		if err := c.Rcpt(a.Address); err != nil {
			return classify("RCPT TO "+a.Address, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return classify("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return classify("DATA", err)
	}
	if err := w.Close(); err != nil {
		return classify("DATA", err)
	}
	// The message was accepted when DATA ended; a failed QUIT does not undo it.
	_ = c.Quit()
	return nil
}

// classify makes an SMTP failure a send.Error: a 5xx reply is permanent, anything
// else (4xx, network, TLS) is temporary.
func classify(step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		return &send.Error{Permanent: te.Code >= 500, Status: te.Code, Err: fmt.Errorf("email: %s: %w", step, err)}
	}
	return &send.Error{Err: fmt.Errorf("email: %s: %w", step, err)}
}
