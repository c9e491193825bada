// Package ntfy publishes notifications to an ntfy topic (ntfy.sh or a self-hosted
// server): a POST of the plain-text body to <url>/<topic> with the title, priority and
// tags in the Title, Priority, Tags headers and, for a single alert with a runbook, a
// Click header. Severity maps to ntfy priority: P0 → 5 (urgent), P1 → 4 (high),
// P2 → 3 (default), P3 → 2 (low); resolved and acknowledged → 2 (low). An access
// token, when set, is sent as "Authorization: Bearer <token>".
package ntfy

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultURL is the public ntfy server.
const DefaultURL = "https://ntfy.sh"

// Config configures a Ntfy.
type Config struct {
	// URL is the server's base URL; empty means DefaultURL.
	URL string
	// Topic is the topic published to. Required.
	Topic string
	// Token, when set, is sent as a bearer token (an ntfy access token, tk_…).
	Token string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Ntfy publishes to a topic. It is safe for concurrent use.
type Ntfy struct {
	cfg Config
}

// New returns a Ntfy.
func New(cfg Config) (*Ntfy, error) {
	if cfg.Topic == "" {
		return nil, errors.New("ntfy: missing topic")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Ntfy{cfg: cfg}, nil
}

// Type names an ntfy receiver in notify.receivers.
const Type = "ntfy"

// ReceiverConfig is an ntfy receiver's own fields in notify.receivers. The access token
// is given inline (prefer ${ENV}) or read from token_file, not both.
type ReceiverConfig struct {
	// URL is the server's base URL; empty means DefaultURL.
	URL string `yaml:"url"`
	// Topic is the topic published to. Required.
	Topic string `yaml:"topic"`
	// Token is an access token for a protected topic.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	var topicErr error
	if strings.ContainsAny(c.Topic, "/?#% ") {
		topicErr = receiver.Errorf("topic", "%q: a topic is one path segment, without / ? # %% or spaces", c.Topic)
	}
	return errors.Join(
		receiver.Required(Type, "topic", c.Topic != ""),
		topicErr,
		receiver.URL("url", c.URL),
		receiver.Secret("token", c.Token, c.TokenFile),
	)
}

// Build reads c's token file and returns the Ntfy c describes. c should have passed
// Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Ntfy, error) {
	token, err := env.Secret("token", c.Token, c.TokenFile)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: c.URL, Topic: c.Topic, Token: token, Templates: env.Templates, Client: env.Client})
}

// Priority returns the ntfy priority (1–5) of a rendered message.
func Priority(m render.Message) int {
	switch m.Tone {
	case render.ToneOK, render.ToneMuted:
		return 2
	}
	switch m.Severity {
	case patrol.P0:
		return 5
	case patrol.P1:
		return 4
	case patrol.P2:
		return 3
	default:
		return 2
	}
}

// tags are the ntfy tags (shown as emoji) of each tone.
var tags = map[render.Tone]string{
	render.ToneCritical: "rotating_light",
	render.ToneHigh:     "warning",
	render.ToneWarning:  "warning",
	render.ToneInfo:     "information_source",
	render.ToneOK:       "white_check_mark",
	render.ToneMuted:    "eyes",
}

// ntfy's limit on a message body (larger ones become attachments).
const maxBody = 4096

// Notify publishes n.
func (t *Ntfy) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := t.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("ntfy: %w", err)
	}
	h := send.Bearer(t.cfg.Token)
	// Headers are ASCII; RFC 2047 carries the rest (ntfy decodes it).
	h.Set("Title", mime.QEncoding.Encode("utf-8", render.Truncate(m.Title, 250)))
	h.Set("Priority", strconv.Itoa(Priority(m)))
	h.Set("Tags", tags[m.Tone]+","+strings.ToLower(m.Severity.String()))
	if len(n.Alerts) == 1 && strings.HasPrefix(n.Alerts[0].RunbookURL, "http") {
		h.Set("Click", n.Alerts[0].RunbookURL)
	}
	u := strings.TrimRight(t.cfg.URL, "/") + "/" + url.PathEscape(t.cfg.Topic)
	_, err = send.Post(ctx, t.cfg.Client, u, "text/plain; charset=utf-8", h, []byte(render.Truncate(m.Body, maxBody)))
	return err
}
