// Package wecom sends notifications to a WeCom (企业微信) group robot webhook as
// markdown messages, the title coloured by urgency with WeCom's font colours.
package wecom

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Config configures a WeCom.
type Config struct {
	// URL is the robot webhook, with its key
	// (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…). Required.
	URL string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// WeCom posts to a group robot. It is safe for concurrent use.
type WeCom struct {
	cfg Config
}

// New returns a WeCom.
func New(cfg Config) (*WeCom, error) {
	if cfg.URL == "" {
		return nil, errors.New("wecom: missing url")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &WeCom{cfg: cfg}, nil
}

// Type names a WeCom receiver in notify.receivers.
const Type = "wecom"

// ReceiverConfig is a WeCom receiver's own fields in notify.receivers.
type ReceiverConfig struct {
	// URL is the group robot's webhook, with its key. Required.
	URL string `yaml:"url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(receiver.Required(Type, "url", c.URL != ""), receiver.URL("url", c.URL))
}

// Build returns the WeCom c describes. c should have passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*WeCom, error) {
	return New(Config{URL: c.URL, Templates: env.Templates, Client: env.Client})
}

// Colours maps a message's tone to a WeCom markdown font colour.
var Colours = map[render.Tone]string{
	render.ToneCritical: "warning",
	render.ToneHigh:     "warning",
	render.ToneWarning:  "warning",
	render.ToneInfo:     "comment",
	render.ToneOK:       "info",
	render.ToneMuted:    "comment",
}

type message struct {
	MsgType  string   `json:"msgtype"`
	Markdown markdown `json:"markdown"`
}

type markdown struct {
	Content string `json:"content"`
}

type reply struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// WeCom's limit on markdown content, in bytes.
const maxContent = 4096

// errcode 45009: API frequency exceeded.
var rateLimited = map[int]bool{45009: true, 45033: true}

// Notify posts n.
func (w *WeCom) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := w.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("wecom: %w", err)
	}
	content := fmt.Sprintf("### <font color=\"%s\">%s</font>\n%s", Colours[m.Tone], m.Title, m.Body)
	resp, err := send.JSON(ctx, w.cfg.Client, send.Request{URL: w.cfg.URL, Body: message{
		MsgType: "markdown", Markdown: markdown{Content: render.Truncate(content, maxContent)},
	}})
	if err != nil {
		return err
	}
	var r reply
	if err := resp.Decode("wecom", &r); err != nil {
		return err
	}
	if r.ErrCode != 0 {
		return resp.Refused(rateLimited[r.ErrCode], fmt.Errorf("wecom: errcode %d: %s", r.ErrCode, r.ErrMsg))
	}
	return nil
}
