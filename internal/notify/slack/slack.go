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
	// Buttons adds Ack and Silence 1h buttons to messages about one open alert; they
	// work when the webhook belongs to a Slack app whose interactivity request URL is
	// portpatrol's /api/v1/chatops/slack (see docs/chatops.md).
	Buttons bool
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
	// Buttons adds Ack and Silence 1h buttons (see Config.Buttons).
	Buttons bool `yaml:"buttons"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(receiver.Required(Type, "url", c.URL != ""), receiver.URL("url", c.URL))
}

// Build returns the Slack c describes. c should have passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Slack, error) {
	return New(Config{URL: c.URL, Buttons: c.Buttons, Templates: env.Templates, Client: env.Client})
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
	Type     string `json:"type"`
	Text     *text  `json:"text,omitempty"`
	Elements []any  `json:"elements,omitempty"`
}

type text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type button struct {
	Type     string `json:"type"`
	Text     text   `json:"text"`
	ActionID string `json:"action_id"`
	Value    string `json:"value"`
	Style    string `json:"style,omitempty"`
}

// Action IDs of the buttons; the value is the alert's ID. The chat handler of package
// chatops answers them.
const (
	ActionAck       = "portpatrol_ack"
	ActionSilence1h = "portpatrol_silence_1h"
)

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
			Color:    m.Tone.Hex(),
			Fallback: title,
			Blocks: []block{
				{Type: "section", Text: &text{Type: "mrkdwn", Text: render.Truncate("*"+title+"*\n"+escape(m.Body), maxSection)}},
				{Type: "context", Elements: []any{&text{Type: "mrkdwn", Text: "portpatrol · " + escape(n.Receiver)}}},
			},
		}},
	}
	if s.cfg.Buttons && len(n.Alerts) == 1 && actionable(n) {
		id := n.Alerts[0].ID
		blocks := &p.Attachments[0].Blocks
		*blocks = append(*blocks, block{Type: "actions", Elements: []any{
			button{Type: "button", Text: text{Type: "plain_text", Text: "Ack"}, ActionID: ActionAck, Value: id, Style: "primary"},
			button{Type: "button", Text: text{Type: "plain_text", Text: "Silence 1h"}, ActionID: ActionSilence1h, Value: id},
		}})
	}
	_, err = send.JSON(ctx, s.cfg.Client, send.Request{URL: s.cfg.URL, Body: p})
	return err
}

// escape escapes the three characters Slack's mrkdwn treats as control characters.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// actionable reports whether n is about an alert still open and not acknowledged.
func actionable(n patrol.Notification) bool {
	switch n.Kind {
	case patrol.NotifyFiring, patrol.NotifyEscalation, patrol.NotifyReminder:
		return n.Alerts[0].State == patrol.AlertFiring
	}
	return false
}
