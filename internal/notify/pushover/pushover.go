// Package pushover sends notifications through Pushover's Messages API: a form POST to
// /1/messages.json with the application token and the user (or group) key. Severity
// maps to Pushover priority: P0 → 2 (emergency: repeated every Retry until
// acknowledged in the app or Expire passes), P1 → 1 (high, bypasses quiet hours),
// P2 → 0 (normal), P3 → -1 (quiet); resolved → 0 and acknowledged → -1.
package pushover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultURL is Pushover's API.
const DefaultURL = "https://api.pushover.net"

// Emergency-priority defaults and Pushover's bounds on them.
const (
	DefaultRetry  = time.Minute
	DefaultExpire = time.Hour
	MinRetry      = 30 * time.Second
	MaxExpire     = 3 * time.Hour
)

// Config configures a Pushover.
type Config struct {
	// Token is the application's API token. Required.
	Token string
	// User is the user or group key. Required.
	User string
	// Device limits delivery to one of the user's devices; empty means all.
	Device string
	// Sound overrides the user's default sound.
	Sound string
	// Retry and Expire apply to emergency (P0) messages; zero means DefaultRetry and
	// DefaultExpire.
	Retry, Expire time.Duration
	// URL is the API base URL; empty means DefaultURL.
	URL string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Pushover sends messages to a user or group. It is safe for concurrent use.
type Pushover struct {
	cfg Config
}

// New returns a Pushover.
func New(cfg Config) (*Pushover, error) {
	if cfg.Token == "" || cfg.User == "" {
		return nil, errors.New("pushover: missing token or user")
	}
	if cfg.Retry == 0 {
		cfg.Retry = DefaultRetry
	}
	if cfg.Expire == 0 {
		cfg.Expire = DefaultExpire
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Pushover{cfg: cfg}, nil
}

// Type names a Pushover receiver in notify.receivers.
const Type = "pushover"

// ReceiverConfig is a Pushover receiver's own fields in notify.receivers. The token and
// user key are each given inline (prefer ${ENV}) or read from their *_file twin.
type ReceiverConfig struct {
	// Token is the application's API token. Required.
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// UserKey is the user or group key. Required.
	UserKey     string `yaml:"user_key"`
	UserKeyFile string `yaml:"user_key_file"`
	Device      string `yaml:"device"`
	Sound       string `yaml:"sound"`
	// Retry and Expire apply to P0 (emergency) messages: resent every retry (≥ 30s)
	// until acknowledged or expire (≤ 3h) passes.
	Retry  time.Duration `yaml:"retry"`
	Expire time.Duration `yaml:"expire"`
	// URL overrides the API base URL (DefaultURL).
	URL string `yaml:"url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	var errs []error
	if c.Retry != 0 && c.Retry < MinRetry {
		errs = append(errs, receiver.Errorf("retry", "%s is under Pushover's minimum of 30s", c.Retry))
	}
	if c.Expire < 0 || c.Expire > MaxExpire {
		errs = append(errs, receiver.Errorf("expire", "%s is outside Pushover's 0–3h", c.Expire))
	}
	return errors.Join(append([]error{
		receiver.Required(Type, "token", c.Token != "" || c.TokenFile != ""),
		receiver.Secret("token", c.Token, c.TokenFile),
		receiver.Required(Type, "user_key", c.UserKey != "" || c.UserKeyFile != ""),
		receiver.Secret("user_key", c.UserKey, c.UserKeyFile),
		receiver.URL("url", c.URL),
	}, errs...)...)
}

// Build reads c's secret files and returns the Pushover c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Pushover, error) {
	token, err1 := env.Secret("token", c.Token, c.TokenFile)
	user, err2 := env.Secret("user_key", c.UserKey, c.UserKeyFile)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return New(Config{Token: token, User: user, Device: c.Device, Sound: c.Sound, Retry: c.Retry, Expire: c.Expire,
		URL: c.URL, Templates: env.Templates, Client: env.Client})
}

// Priority returns the Pushover priority (-2…2) of a rendered message.
func Priority(m render.Message) int {
	switch m.Tone {
	case render.ToneOK:
		return 0
	case render.ToneMuted:
		return -1
	}
	switch m.Severity {
	case patrol.P0:
		return 2
	case patrol.P1:
		return 1
	case patrol.P2:
		return 0
	default:
		return -1
	}
}

// Pushover's limits on title, message and supplementary URL.
const (
	maxTitle   = 250
	maxMessage = 1024
	maxURL     = 512
)

type reply struct {
	Status int      `json:"status"`
	Errors []string `json:"errors"`
}

// Notify sends n.
func (p *Pushover) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := p.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("pushover: %w", err)
	}
	prio := Priority(m)
	f := url.Values{}
	f.Set("token", p.cfg.Token)
	f.Set("user", p.cfg.User)
	f.Set("title", render.Truncate(m.Title, maxTitle))
	f.Set("message", render.Truncate(m.Body, maxMessage))
	f.Set("priority", strconv.Itoa(prio))
	if prio == 2 {
		f.Set("retry", strconv.Itoa(int(p.cfg.Retry/time.Second)))
		f.Set("expire", strconv.Itoa(int(p.cfg.Expire/time.Second)))
	}
	if !n.CreatedAt.IsZero() {
		f.Set("timestamp", strconv.FormatInt(n.CreatedAt.Unix(), 10))
	}
	if len(n.Alerts) == 1 && strings.HasPrefix(n.Alerts[0].RunbookURL, "http") && len(n.Alerts[0].RunbookURL) <= maxURL {
		f.Set("url", n.Alerts[0].RunbookURL)
		f.Set("url_title", "Runbook")
	}
	if p.cfg.Device != "" {
		f.Set("device", p.cfg.Device)
	}
	if p.cfg.Sound != "" {
		f.Set("sound", p.cfg.Sound)
	}
	u := strings.TrimRight(p.cfg.URL, "/") + "/1/messages.json"
	resp, err := send.Post(ctx, p.cfg.Client, u, "application/x-www-form-urlencoded", nil, []byte(f.Encode()))
	var se *send.Error
	if errors.As(err, &se) {
		var r reply
		if json.Unmarshal([]byte(se.Body), &r) == nil && len(r.Errors) > 0 {
			se.Err = fmt.Errorf("pushover: %d %s", se.Status, strings.Join(r.Errors, "; "))
		}
		return se
	}
	if err != nil {
		return err
	}
	var r reply
	if err := resp.Decode("pushover", &r); err != nil {
		return err
	}
	if r.Status != 1 {
		return resp.Refused(false, fmt.Errorf("pushover: status %d: %s", r.Status, strings.Join(r.Errors, "; ")))
	}
	return nil
}
