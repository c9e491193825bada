// Package zulip sends notifications to a Zulip stream through the REST API: a form
// POST to <url>/api/v1/messages, authenticated with HTTP basic auth (the bot's email
// and API key), type stream, the configured stream and topic, the content in Zulip
// Markdown (title in bold, body as a quoted block). Without a configured topic each
// alert's messages go to a topic named after its target, so firing and resolution
// read together. Zulip has no colours; severity is in the title.
package zulip

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures a Zulip.
type Config struct {
	// URL is the Zulip server (https://example.zulipchat.com). Required.
	URL string
	// Email and APIKey are the bot's credentials. Required.
	Email, APIKey string
	// Stream is the stream (channel) posted to. Required.
	Stream string
	// Topic is the topic; empty means one topic per alert target ("portpatrol" for
	// groups and tests).
	Topic string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Zulip posts stream messages as a bot. It is safe for concurrent use.
type Zulip struct {
	cfg Config
}

// New returns a Zulip.
func New(cfg Config) (*Zulip, error) {
	if cfg.URL == "" || cfg.Email == "" || cfg.APIKey == "" || cfg.Stream == "" {
		return nil, errors.New("zulip: missing url, email, api_key or stream")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Zulip{cfg: cfg}, nil
}

// Type names a Zulip receiver in notify.receivers.
const Type = "zulip"

// ReceiverConfig is a Zulip receiver's own fields in notify.receivers. The API key is
// given inline (prefer ${ENV}) or read from api_key_file, not both.
type ReceiverConfig struct {
	// URL is the Zulip server. Required.
	URL string `yaml:"url"`
	// Email is the bot's email address. Required.
	Email string `yaml:"email"`
	// APIKey is the bot's API key. Required.
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file"`
	// Stream is the stream posted to. Required.
	Stream string `yaml:"stream"`
	// Topic is the topic; empty means one per alert target.
	Topic string `yaml:"topic"`
}

// Zulip's limit on a topic's length, in characters.
const maxTopic = 60

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	var topicErr error
	if n := len([]rune(c.Topic)); n > maxTopic {
		topicErr = receiver.Errorf("topic", "%d characters; Zulip allows %d", n, maxTopic)
	}
	var emailErr error
	if c.Email != "" && !strings.Contains(c.Email, "@") {
		emailErr = receiver.Errorf("email", "%q is not an email address (the bot's, e.g. alerts-bot@example.zulipchat.com)", c.Email)
	}
	return errors.Join(
		receiver.Required(Type, "url", c.URL != ""),
		receiver.URL("url", c.URL),
		receiver.Required(Type, "email", c.Email != ""),
		emailErr,
		receiver.Required(Type, "api_key", c.APIKey != "" || c.APIKeyFile != ""),
		receiver.Secret("api_key", c.APIKey, c.APIKeyFile),
		receiver.Required(Type, "stream", c.Stream != ""),
		topicErr,
	)
}

// Build reads c's API key file and returns the Zulip c describes. c should have passed
// Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Zulip, error) {
	key, err := env.Secret("api_key", c.APIKey, c.APIKeyFile)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: c.URL, Email: c.Email, APIKey: key, Stream: c.Stream, Topic: c.Topic, Templates: env.Templates, Client: env.Client})
}

type reply struct {
	Result     string  `json:"result"`
	Msg        string  `json:"msg"`
	Code       string  `json:"code"`
	RetryAfter float64 `json:"retry-after"`
}

// Zulip's default limit on a message, in bytes.
const maxContent = 10000

// Notify posts n.
func (z *Zulip) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := z.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("zulip: %w", err)
	}
	topic := z.cfg.Topic
	if topic == "" {
		topic = "portpatrol"
		if len(n.Alerts) == 1 && n.Group == "" {
			topic = n.Alerts[0].Target
		}
	}
	if r := []rune(topic); len(r) > maxTopic {
		topic = string(r[:maxTopic-1]) + "…"
	}
	content := "**" + m.Title + "**\n```quote\n" + render.Truncate(m.Body, maxContent-len(m.Title)-32) + "\n```"
	f := url.Values{}
	f.Set("type", "stream")
	f.Set("to", z.cfg.Stream)
	f.Set("topic", topic)
	f.Set("content", content)
	h := http.Header{}
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(z.cfg.Email+":"+z.cfg.APIKey)))
	u := strings.TrimRight(z.cfg.URL, "/") + "/api/v1/messages"
	resp, err := send.Post(ctx, z.cfg.Client, u, "application/x-www-form-urlencoded", h, []byte(f.Encode()))
	var se *send.Error
	if errors.As(err, &se) {
		var r reply
		if json.Unmarshal([]byte(se.Body), &r) == nil && r.Msg != "" {
			se.Err = fmt.Errorf("zulip: %d %s: %s", se.Status, r.Code, r.Msg)
		}
		return se
	}
	if err != nil {
		return err
	}
	var r reply
	if err := resp.Decode("zulip", &r); err != nil {
		return err
	}
	if r.Result != "success" {
		return resp.Refused(false, fmt.Errorf("zulip: %s: %s", r.Code, r.Msg))
	}
	return nil
}
