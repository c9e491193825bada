// Package mattermost sends notifications to a Mattermost incoming webhook: a message
// with one attachment coloured by severity (red P0, orange P1, yellow P2, blue P3,
// green resolved, grey acknowledged) whose text is the body. Mattermost renders
// Markdown; the body's characters that Markdown would read (*, _, `, ~, [, ]) are
// escaped so alert text stays literal.
package mattermost

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

// Config configures a Mattermost.
type Config struct {
	// URL is the incoming webhook (https://mattermost.example.com/hooks/<key>).
	// Required; the key is the credential, so it is never shown in errors.
	URL string
	// Channel overrides the webhook's channel (its name, e.g. "town-square"), when the
	// webhook allows it.
	Channel string
	// Username overrides the poster's name, when the server allows it; empty means
	// "portpatrol".
	Username string
	// IconURL overrides the poster's icon.
	IconURL string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Mattermost posts to an incoming webhook. It is safe for concurrent use.
type Mattermost struct {
	cfg Config
}

// New returns a Mattermost.
func New(cfg Config) (*Mattermost, error) {
	if cfg.URL == "" {
		return nil, errors.New("mattermost: missing url")
	}
	if cfg.Username == "" {
		cfg.Username = "portpatrol"
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Mattermost{cfg: cfg}, nil
}

// Type names a Mattermost receiver in notify.receivers.
const Type = "mattermost"

// ReceiverConfig is a Mattermost receiver's own fields in notify.receivers. The
// webhook URL carries its key: give it as ${ENV} or read it from url_file.
type ReceiverConfig struct {
	// URL is the incoming webhook. Required.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// Channel, Username and IconURL override the webhook's defaults.
	Channel  string `yaml:"channel"`
	Username string `yaml:"username"`
	IconURL  string `yaml:"icon_url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "url", c.URL != "" || c.URLFile != ""),
		receiver.Secret("url", c.URL, c.URLFile),
		receiver.URL("url", c.URL),
		receiver.URL("icon_url", c.IconURL),
	)
}

// Build reads c's url file and returns the Mattermost c describes. c should have passed
// Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Mattermost, error) {
	u, err := env.Secret("url", c.URL, c.URLFile)
	if err != nil {
		return nil, err
	}
	if err := receiver.URL("url_file", u); err != nil {
		return nil, err
	}
	return New(Config{URL: u, Channel: c.Channel, Username: c.Username, IconURL: c.IconURL, Templates: env.Templates, Client: env.Client})
}

type payload struct {
	Channel     string       `json:"channel,omitempty"`
	Username    string       `json:"username"`
	IconURL     string       `json:"icon_url,omitempty"`
	Text        string       `json:"text,omitempty"`
	Attachments []attachment `json:"attachments"`
}

type attachment struct {
	Fallback  string `json:"fallback"`
	Color     string `json:"color"`
	Title     string `json:"title"`
	TitleLink string `json:"title_link,omitempty"`
	Text      string `json:"text"`
	Footer    string `json:"footer"`
}

// Mattermost's default limit on a post is 16,383 characters.
const maxText = 16000

// Notify posts n.
func (m *Mattermost) Notify(ctx context.Context, n patrol.Notification) error {
	msg, err := m.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("mattermost: %w", err)
	}
	title := Escape(msg.Title)
	a := attachment{
		Fallback: title,
		Color:    msg.Tone.Hex(),
		Title:    title,
		Text:     render.Truncate(Escape(msg.Body), maxText),
		Footer:   "portpatrol · " + n.Receiver,
	}
	if len(n.Alerts) == 1 && strings.HasPrefix(n.Alerts[0].RunbookURL, "http") {
		a.TitleLink = n.Alerts[0].RunbookURL
	}
	p := payload{Channel: m.cfg.Channel, Username: m.cfg.Username, IconURL: m.cfg.IconURL, Attachments: []attachment{a}}
	_, err = send.JSON(ctx, m.cfg.Client, send.Request{URL: m.cfg.URL, Body: p})
	return err
}

// Escape backslash-escapes the characters Mattermost's Markdown reads as markup.
func Escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "~", `\~`, "[", `\[`, "]", `\]`).Replace(s)
}
