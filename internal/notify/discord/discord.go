// Package discord sends notifications to a Discord channel webhook as one embed,
// coloured by severity: red P0, orange P1, yellow P2, blue P3, green resolved, grey
// acknowledged. Mentions are switched off (allowed_mentions.parse is empty), so a
// summary holding "@everyone" pings no one.
package discord

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures a Discord.
type Config struct {
	// URL is the channel webhook (https://discord.com/api/webhooks/<id>/<token>).
	// Required; it holds the webhook's token, so it is never shown in errors.
	URL string
	// Username overrides the webhook's name; empty means "portpatrol".
	Username string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Discord posts to a channel webhook. It is safe for concurrent use.
type Discord struct {
	cfg Config
}

// New returns a Discord.
func New(cfg Config) (*Discord, error) {
	if cfg.URL == "" {
		return nil, errors.New("discord: missing url")
	}
	if cfg.Username == "" {
		cfg.Username = "portpatrol"
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Discord{cfg: cfg}, nil
}

// Type names a Discord receiver in notify.receivers.
const Type = "discord"

// ReceiverConfig is a Discord receiver's own fields in notify.receivers. The webhook
// URL carries its token: give it as ${ENV} or read it from url_file.
type ReceiverConfig struct {
	// URL is the channel webhook. Required.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// Username overrides the webhook's name.
	Username string `yaml:"username"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "url", c.URL != "" || c.URLFile != ""),
		receiver.Secret("url", c.URL, c.URLFile),
		receiver.URL("url", c.URL),
	)
}

// Build reads c's url file and returns the Discord c describes. c should have passed
// Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Discord, error) {
	u, err := env.Secret("url", c.URL, c.URLFile)
	if err != nil {
		return nil, err
	}
	if err := receiver.URL("url_file", u); err != nil {
		return nil, err
	}
	return New(Config{URL: u, Username: c.Username, Templates: env.Templates, Client: env.Client})
}

type payload struct {
	Username        string   `json:"username"`
	Content         string   `json:"content,omitempty"`
	Embeds          []embed  `json:"embeds"`
	AllowedMentions mentions `json:"allowed_mentions"`
}

type mentions struct {
	Parse []string `json:"parse"`
}

type embed struct {
	Title       string  `json:"title"`
	Description string  `json:"description"`
	URL         string  `json:"url,omitempty"`
	Color       int     `json:"color"`
	Footer      *footer `json:"footer,omitempty"`
	Timestamp   string  `json:"timestamp,omitempty"`
}

type footer struct {
	Text string `json:"text"`
}

// Discord's limits on an embed's title and description.
const (
	maxTitle       = 256
	maxDescription = 4096
)

// Notify posts n.
func (d *Discord) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := d.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("discord: %w", err)
	}
	e := embed{
		Title:       render.Truncate(m.Title, maxTitle),
		Description: render.Truncate(m.Body, maxDescription),
		Color:       m.Tone.RGB(),
		Footer:      &footer{Text: "portpatrol · " + n.Receiver},
	}
	if len(n.Alerts) == 1 && strings.HasPrefix(n.Alerts[0].RunbookURL, "http") {
		e.URL = n.Alerts[0].RunbookURL
	}
	if !n.CreatedAt.IsZero() {
		e.Timestamp = n.CreatedAt.UTC().Format(time.RFC3339)
	}
	p := payload{Username: d.cfg.Username, Embeds: []embed{e}, AllowedMentions: mentions{Parse: []string{}}}
	_, err = send.JSON(ctx, d.cfg.Client, send.Request{URL: d.cfg.URL, Body: p})
	var se *send.Error
	if errors.As(err, &se) && se.RetryAfter == 0 && se.Status == http.StatusTooManyRequests {
		// Discord gives the wait in the body as well ("retry_after": 1.5 seconds).
		if i := strings.Index(se.Body, `"retry_after":`); i >= 0 {
			v := strings.TrimLeft(se.Body[i+len(`"retry_after":`):], " ")
			if j := strings.IndexAny(v, ",}"); j > 0 {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v[:j]), 64); err == nil && f > 0 {
					se.RetryAfter = time.Duration(f * float64(time.Second))
				}
			}
		}
	}
	return err
}
