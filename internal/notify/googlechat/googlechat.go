// Package googlechat sends notifications to a Google Chat space's incoming webhook as a
// text message: the title in bold (*…*), then the body. Messages about one alert carry
// a threadKey made of its fingerprint, with messageReplyOption
// REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD, so firing, acknowledgement and resolution of
// an alert read as one thread. Google Chat has no colours; severity is in the title.
package googlechat

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures a GoogleChat.
type Config struct {
	// URL is the space's webhook
	// (https://chat.googleapis.com/v1/spaces/<space>/messages?key=…&token=…). Required;
	// its key and token are the credential, so it is never shown in errors.
	URL string
	// NoThreads sends every message to a new thread.
	NoThreads bool
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// GoogleChat posts to a space's incoming webhook. It is safe for concurrent use.
type GoogleChat struct {
	cfg Config
}

// New returns a GoogleChat.
func New(cfg Config) (*GoogleChat, error) {
	if cfg.URL == "" {
		return nil, errors.New("googlechat: missing url")
	}
	if _, err := url.Parse(cfg.URL); err != nil {
		return nil, errors.New("googlechat: url does not parse")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &GoogleChat{cfg: cfg}, nil
}

// Type names a Google Chat receiver in notify.receivers.
const Type = "googlechat"

// ReceiverConfig is a Google Chat receiver's own fields in notify.receivers. The webhook
// URL carries its key and token: give it as ${ENV} or read it from url_file.
type ReceiverConfig struct {
	// URL is the space's webhook. Required.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// NoThreads sends every message to a new thread instead of one thread per alert.
	NoThreads bool `yaml:"no_threads"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "url", c.URL != "" || c.URLFile != ""),
		receiver.Secret("url", c.URL, c.URLFile),
		receiver.URL("url", c.URL),
	)
}

// Build reads c's url file and returns the GoogleChat c describes. c should have passed
// Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*GoogleChat, error) {
	u, err := env.Secret("url", c.URL, c.URLFile)
	if err != nil {
		return nil, err
	}
	if err := receiver.URL("url_file", u); err != nil {
		return nil, err
	}
	return New(Config{URL: u, NoThreads: c.NoThreads, Templates: env.Templates, Client: env.Client})
}

type message struct {
	Text   string  `json:"text"`
	Thread *thread `json:"thread,omitempty"`
}

type thread struct {
	ThreadKey string `json:"threadKey"`
}

// Google Chat's limit on a message's text is 32,000 bytes; stay well below.
const maxText = 16000

// Notify posts n.
func (g *GoogleChat) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := g.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("googlechat: %w", err)
	}
	msg := message{Text: render.Truncate("*"+m.Title+"*\n"+m.Body, maxText)}
	target := g.cfg.URL
	if !g.cfg.NoThreads && len(n.Alerts) == 1 && n.Group == "" {
		msg.Thread = &thread{ThreadKey: "portpatrol-" + n.Alerts[0].Fingerprint}
		u, _ := url.Parse(g.cfg.URL)
		q := u.Query()
		q.Set("messageReplyOption", "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD")
		u.RawQuery = q.Encode()
		target = u.String()
	}
	_, err = send.JSON(ctx, g.cfg.Client, send.Request{URL: target, Body: msg})
	return err
}
