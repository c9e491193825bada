// Package telegram sends notifications through the Telegram Bot API's sendMessage
// with parse_mode HTML: the title in bold, the body escaped.
package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultURL is the Bot API's base URL.
const DefaultURL = "https://api.telegram.org"

// Config configures a Telegram.
type Config struct {
	// Token is the bot token. Required.
	Token string
	// ChatID is the chat, group or channel (@name or a numeric ID). Required.
	ChatID string
	// URL is the Bot API base URL; empty means DefaultURL.
	URL string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Telegram sends messages as a bot. It is safe for concurrent use.
type Telegram struct {
	cfg Config
}

// New returns a Telegram.
func New(cfg Config) (*Telegram, error) {
	if cfg.Token == "" {
		return nil, errors.New("telegram: missing token")
	}
	if cfg.ChatID == "" {
		return nil, errors.New("telegram: missing chat_id")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Telegram{cfg: cfg}, nil
}

// Type names a Telegram receiver in notify.receivers.
const Type = "telegram"

// ReceiverConfig is a Telegram receiver's own fields in notify.receivers. The bot
// token is given inline (prefer ${ENV}) or read from token_file, not both.
type ReceiverConfig struct {
	// Token is the bot token. Required.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// ChatID is the chat, group or channel (@name or a numeric ID). Required.
	ChatID string `yaml:"chat_id"`
	// URL overrides the Bot API base URL (DefaultURL).
	URL string `yaml:"url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "token", c.Token != "" || c.TokenFile != ""),
		receiver.Secret("token", c.Token, c.TokenFile),
		receiver.Required(Type, "chat_id", c.ChatID != ""),
		receiver.URL("url", c.URL),
	)
}

// Build reads c's token file and returns the Telegram c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Telegram, error) {
	token, err := env.Secret("token", c.Token, c.TokenFile)
	if err != nil {
		return nil, err
	}
	return New(Config{Token: token, ChatID: c.ChatID, URL: c.URL, Templates: env.Templates, Client: env.Client})
}

type message struct {
	ChatID                string `json:"chat_id"`
	Text                  string `json:"text"`
	ParseMode             string `json:"parse_mode"`
	DisableWebPagePreview bool   `json:"disable_web_page_preview"`
}

type reply struct {
	OK          bool   `json:"ok"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// Telegram's limit on a message, in characters; bytes are a safe bound.
const maxText = 4096

// Notify sends n.
func (t *Telegram) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := t.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("telegram: %w", err)
	}
	head := "<b>" + html.EscapeString(render.Truncate(m.Title, 512)) + "</b>\n"
	raw, budget := m.Body, maxText-len(head)
	// Cut the text, never the markup or an escape.
	for len(html.EscapeString(raw)) > budget {
		raw = render.Truncate(raw, len(raw)-(len(html.EscapeString(raw))-budget)-len("…"))
	}
	text := head + html.EscapeString(raw)
	url := strings.TrimRight(t.cfg.URL, "/") + "/bot" + t.cfg.Token + "/sendMessage"
	_, err = send.JSON(ctx, t.cfg.Client, send.Request{URL: url, Body: message{
		ChatID: t.cfg.ChatID, Text: text, ParseMode: "HTML", DisableWebPagePreview: true,
	}})
	var se *send.Error
	if errors.As(err, &se) {
		// The Bot API explains failures in JSON, with retry_after on 429.
		var r reply
		if json.Unmarshal([]byte(se.Body), &r) == nil {
			if r.Parameters.RetryAfter > 0 {
				se.RetryAfter = time.Duration(r.Parameters.RetryAfter) * time.Second
			}
			if r.Description != "" {
				se.Err = fmt.Errorf("telegram: %d %s", se.Status, r.Description)
			}
		}
		// The token is in the path; send.JSON never shows it, and neither does this.
		return se
	}
	return err
}
