// Package slack sends notifications to a Slack incoming webhook: a coloured
// attachment (red P0, orange P1, yellow P2, blue P3, green resolved, grey
// acknowledged) holding mrkdwn blocks.
package slack

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures a Slack.
type Config struct {
	// URL is the incoming webhook (https://hooks.slack.com/services/…). Required.
	URL string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Slack posts to an incoming webhook. It is safe for concurrent use.
type Slack struct {
	cfg Config
}

// New returns a Slack.
func New(cfg Config) (*Slack, error) {
	if cfg.URL == "" {
		return nil, errors.New("slack: missing url")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Slack{cfg: cfg}, nil
}

// Type names a Slack receiver in notify.receivers.
const Type = "slack"

// ReceiverConfig is a Slack receiver's own fields in notify.receivers.
type ReceiverConfig struct {
	// URL is the incoming webhook. Required.
	URL string `yaml:"url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(receiver.Required(Type, "url", c.URL != ""), receiver.URL("url", c.URL))
}

// Build returns the Slack c describes. c should have passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Slack, error) {
	return New(Config{URL: c.URL, Templates: env.Templates, Client: env.Client})
}

// Colours maps a message's tone to its attachment colour.
var Colours = map[render.Tone]string{
	render.ToneCritical: "#D00000",
	render.ToneHigh:     "#E8590C",
	render.ToneWarning:  "#F2C744",
	render.ToneInfo:     "#439FE0",
	render.ToneOK:       "#2EB67D",
	render.ToneMuted:    "#9E9E9E",
}

type payload struct {
	Text        string       `json:"text"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	Color    string  `json:"color"`
	Fallback string  `json:"fallback"`
	Blocks   []block `json:"blocks"`
}

type block struct {
	Type     string  `json:"type"`
	Text     *text   `json:"text,omitempty"`
	Elements []*text `json:"elements,omitempty"`
}

type text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Slack's limit on a section's text.
const maxSection = 3000

// Notify posts n.
func (s *Slack) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := s.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("slack: %w", err)
	}
	title := escape(m.Title)
	p := payload{
		Text: title,
		Attachments: []attachment{{
			Color:    Colours[m.Tone],
			Fallback: title,
			Blocks: []block{
				{Type: "section", Text: &text{Type: "mrkdwn", Text: render.Truncate("*"+title+"*\n"+escape(m.Body), maxSection)}},
				{Type: "context", Elements: []*text{{Type: "mrkdwn", Text: "portpatrol · " + escape(n.Receiver)}}},
			},
		}},
	}
	_, err = send.JSON(ctx, s.cfg.Client, send.Request{URL: s.cfg.URL, Body: p})
	return err
}

// escape escapes the three characters Slack's mrkdwn treats as control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
