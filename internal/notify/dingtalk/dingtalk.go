// Package dingtalk sends notifications to a DingTalk group robot webhook as markdown
// messages, signed when the robot has a secret ("加签"): the URL gets timestamp (Unix
// milliseconds) and sign = urlencode(base64(HMAC-SHA256(key=secret,
// message=timestamp+"\n"+secret))).
package dingtalk

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// Config configures a DingTalk.
type Config struct {
	// URL is the robot webhook, with its access_token. Required.
	URL string
	// Secret, when set, signs each request.
	Secret string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
	// Now is the clock for signing timestamps; nil means time.Now.
	Now func() time.Time
}

// DingTalk posts to a group robot. It is safe for concurrent use.
type DingTalk struct {
	cfg Config
}

// New returns a DingTalk.
func New(cfg Config) (*DingTalk, error) {
	if cfg.URL == "" {
		return nil, errors.New("dingtalk: missing url")
	}
	if _, err := url.Parse(cfg.URL); err != nil {
		return nil, errors.New("dingtalk: url does not parse")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &DingTalk{cfg: cfg}, nil
}

// Type names a DingTalk receiver in notify.receivers.
const Type = "dingtalk"

// ReceiverConfig is a DingTalk receiver's own fields in notify.receivers. The secret is
// given inline (prefer ${ENV}) or read from secret_file, not both.
type ReceiverConfig struct {
	// URL is the robot webhook. Required.
	URL string `yaml:"url"`
	// Secret, when set, signs each request.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "url", c.URL != ""),
		receiver.URL("url", c.URL),
		receiver.Secret("secret", c.Secret, c.SecretFile),
	)
}

// Build reads c's secret file and returns the DingTalk c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*DingTalk, error) {
	secret, err := env.Secret("secret", c.Secret, c.SecretFile)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: c.URL, Secret: secret, Templates: env.Templates, Client: env.Client, Now: env.Now})
}

type message struct {
	MsgType  string   `json:"msgtype"`
	Markdown markdown `json:"markdown"`
}

type markdown struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

// reply is the robot's answer; HTTP status is 200 even for errors.
type reply struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// errcodes that mean "too many messages; try later".
var rateLimited = map[int]bool{130101: true, 660026: true}

// Sign returns the sign parameter for a timestamp in Unix milliseconds, before URL
// encoding.
func Sign(secret string, timestampMillis int64) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d\n%s", timestampMillis, secret)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Notify posts n.
func (d *DingTalk) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := d.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("dingtalk: %w", err)
	}
	u, err := url.Parse(d.cfg.URL)
	if err != nil {
		return send.Permanentf("dingtalk: url does not parse")
	}
	if d.cfg.Secret != "" {
		ts := d.cfg.Now().UnixMilli()
		q := u.Query()
		q.Set("timestamp", strconv.FormatInt(ts, 10))
		q.Set("sign", Sign(d.cfg.Secret, ts))
		u.RawQuery = q.Encode()
	}
	body := "#### " + m.Title + "\n\n" + strings.ReplaceAll(m.Body, "\n", "\n\n")
	resp, err := send.JSON(ctx, d.cfg.Client, send.Request{URL: u.String(), Body: message{
		MsgType:  "markdown",
		Markdown: markdown{Title: m.Title, Text: render.Truncate(body, 20000)},
	}})
	if err != nil {
		return err
	}
	var r reply
	if err := resp.Decode("dingtalk", &r); err != nil {
		return err
	}
	if r.ErrCode != 0 {
		return resp.Refused(rateLimited[r.ErrCode], fmt.Errorf("dingtalk: errcode %d: %s", r.ErrCode, r.ErrMsg))
	}
	return nil
}
