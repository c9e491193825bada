// Package feishu sends notifications to a Feishu (Lark) custom bot webhook as
// interactive cards with a coloured header, signed when the bot has a secret: the body
// gets timestamp (Unix seconds) and sign = base64(HMAC-SHA256(key=timestamp+"\n"+
// secret, message=empty)), as Feishu documents it.
package feishu

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures a Feishu.
type Config struct {
	// URL is the bot webhook (https://open.feishu.cn/open-apis/bot/v2/hook/…, or
	// open.larksuite.com). Required.
	URL string
	// Secret, when set, signs each request.
	Secret string
	// Templates render the card; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
	// Now is the clock for signing timestamps; nil means time.Now.
	Now func() time.Time
}

// Feishu posts to a custom bot. It is safe for concurrent use.
type Feishu struct {
	cfg Config
}

// New returns a Feishu.
func New(cfg Config) (*Feishu, error) {
	if cfg.URL == "" {
		return nil, errors.New("feishu: missing url")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Feishu{cfg: cfg}, nil
}

// Type names a Feishu receiver in notify.receivers.
const Type = "feishu"

// ReceiverConfig is a Feishu receiver's own fields in notify.receivers. The secret is
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

// Build reads c's secret file and returns the Feishu c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Feishu, error) {
	secret, err := env.Secret("secret", c.Secret, c.SecretFile)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: c.URL, Secret: secret, Templates: env.Templates, Client: env.Client, Now: env.Now})
}

// Templates maps a message's tone to the card header's colour template.
var Templates = map[render.Tone]string{
	render.ToneCritical: "red",
	render.ToneHigh:     "orange",
	render.ToneWarning:  "yellow",
	render.ToneInfo:     "blue",
	render.ToneOK:       "green",
	render.ToneMuted:    "grey",
}

type message struct {
	Timestamp string `json:"timestamp,omitempty"`
	Sign      string `json:"sign,omitempty"`
	MsgType   string `json:"msg_type"`
	Card      card   `json:"card"`
}

type card struct {
	Config   cardConfig `json:"config"`
	Header   header     `json:"header"`
	Elements []element  `json:"elements"`
}

type cardConfig struct {
	WideScreenMode bool `json:"wide_screen_mode"`
}

type header struct {
	Title    text   `json:"title"`
	Template string `json:"template"`
}

type element struct {
	Tag  string `json:"tag"`
	Text text   `json:"text"`
}

type text struct {
	Tag     string `json:"tag"`
	Content string `json:"content"`
}

// reply is the bot's answer: code (newer) or StatusCode (older), 0 on success.
type reply struct {
	Code       *int   `json:"code"`
	Msg        string `json:"msg"`
	StatusCode *int   `json:"StatusCode"`
}

// codes that mean "too many requests; try later".
var rateLimited = map[int]bool{9499: true, 11232: true}

// Sign returns the sign field for a timestamp in Unix seconds.
func Sign(secret string, timestamp int64) string {
	m := hmac.New(sha256.New, []byte(strconv.FormatInt(timestamp, 10)+"\n"+secret))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Notify posts n.
func (f *Feishu) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := f.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("feishu: %w", err)
	}
	msg := message{
		MsgType: "interactive",
		Card: card{
			Config: cardConfig{WideScreenMode: true},
			Header: header{Title: text{Tag: "plain_text", Content: m.Title}, Template: Templates[m.Tone]},
			Elements: []element{
				{Tag: "div", Text: text{Tag: "plain_text", Content: render.Truncate(m.Body, 20000)}},
			},
		},
	}
	if f.cfg.Secret != "" {
		ts := f.cfg.Now().Unix()
		msg.Timestamp = strconv.FormatInt(ts, 10)
		msg.Sign = Sign(f.cfg.Secret, ts)
	}
	resp, err := send.JSON(ctx, f.cfg.Client, send.Request{URL: f.cfg.URL, Body: msg})
	if err != nil {
		return err
	}
	var r reply
	if err := resp.Decode("feishu", &r); err != nil {
		return err
	}
	code := 0
	switch {
	case r.Code != nil:
		code = *r.Code
	case r.StatusCode != nil:
		code = *r.StatusCode
	}
	if code != 0 {
		return resp.Refused(rateLimited[code], fmt.Errorf("feishu: code %d: %s", code, r.Msg))
	}
	return nil
}
