// Package teams sends notifications to Microsoft Teams through a Workflows (Power
// Automate) webhook, "When a Teams webhook request is received": a message whose one
// attachment is an Adaptive Card (contentType application/vnd.microsoft.card.adaptive,
// card version 1.4). The title's colour follows severity: attention for P0 and P1,
// warning for P2, accent for P3 and tests, good when resolved, default when
// acknowledged. A single alert's runbook is an Action.OpenUrl button.
package teams

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

// Config configures a Teams.
type Config struct {
	// URL is the workflow's HTTP trigger (https://….logic.azure.com/workflows/…?…&sig=…).
	// Required; its sig parameter is the credential, so it is never shown in errors.
	URL string
	// Templates render the message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Teams posts Adaptive Cards to a Workflows webhook. It is safe for concurrent use.
type Teams struct {
	cfg Config
}

// New returns a Teams.
func New(cfg Config) (*Teams, error) {
	if cfg.URL == "" {
		return nil, errors.New("teams: missing url")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Teams{cfg: cfg}, nil
}

// Type names a Teams receiver in notify.receivers.
const Type = "teams"

// ReceiverConfig is a Teams receiver's own fields in notify.receivers. The workflow URL
// carries its signature: give it as ${ENV} or read it from url_file.
type ReceiverConfig struct {
	// URL is the workflow's HTTP trigger. Required.
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "url", c.URL != "" || c.URLFile != ""),
		receiver.Secret("url", c.URL, c.URLFile),
		receiver.URL("url", c.URL),
	)
}

// Build reads c's url file and returns the Teams c describes. c should have passed
// Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Teams, error) {
	u, err := env.Secret("url", c.URL, c.URLFile)
	if err != nil {
		return nil, err
	}
	if err := receiver.URL("url_file", u); err != nil {
		return nil, err
	}
	return New(Config{URL: u, Templates: env.Templates, Client: env.Client})
}

// Colours maps a message's tone to the title's Adaptive Card colour.
var Colours = map[render.Tone]string{
	render.ToneCritical: "attention",
	render.ToneHigh:     "attention",
	render.ToneWarning:  "warning",
	render.ToneInfo:     "accent",
	render.ToneOK:       "good",
	render.ToneMuted:    "default",
}

// ContentType is the attachment's content type for an Adaptive Card.
const ContentType = "application/vnd.microsoft.card.adaptive"

// CardVersion is the Adaptive Card schema version the cards declare; Teams renders
// up to 1.5 on desktop and mobile.
const CardVersion = "1.4"

// Message is the payload the workflow receives.
type Message struct {
	Type        string       `json:"type"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment holds one card.
type Attachment struct {
	ContentType string  `json:"contentType"`
	ContentURL  *string `json:"contentUrl"`
	Content     Card    `json:"content"`
}

// Card is an Adaptive Card. It carries no Teams-only properties (msteams), so it stays
// within the Adaptive Cards schema, whose AdaptiveCard allows no other properties.
type Card struct {
	Schema  string    `json:"$schema"`
	Type    string    `json:"type"`
	Version string    `json:"version"`
	Body    []Element `json:"body"`
	Actions []Action  `json:"actions,omitempty"`
}

// Element is a TextBlock.
type Element struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Wrap     bool   `json:"wrap"`
	Weight   string `json:"weight,omitempty"`
	Size     string `json:"size,omitempty"`
	Color    string `json:"color,omitempty"`
	Spacing  string `json:"spacing,omitempty"`
	IsSubtle bool   `json:"isSubtle,omitempty"`
}

// Action is an Action.OpenUrl.
type Action struct {
	Type  string `json:"type"`
	Title string `json:"title"`
	URL   string `json:"url"`
}

// Payload returns the message for a rendered notification.
func Payload(n patrol.Notification, m render.Message) Message {
	body := []Element{{Type: "TextBlock", Text: m.Title, Wrap: true, Weight: "bolder", Size: "medium", Color: Colours[m.Tone]}}
	// A TextBlock's markdown joins single line breaks; one block per line keeps them.
	for _, line := range strings.Split(render.Truncate(m.Body, maxBody), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		body = append(body, Element{Type: "TextBlock", Text: line, Wrap: true, Spacing: "none"})
	}
	body = append(body, Element{Type: "TextBlock", Text: "portpatrol · " + n.Receiver, Wrap: true, Size: "small", IsSubtle: true})
	card := Card{
		Schema:  "http://adaptivecards.io/schemas/adaptive-card.json",
		Type:    "AdaptiveCard",
		Version: CardVersion,
		Body:    body,
	}
	if len(n.Alerts) == 1 && strings.HasPrefix(n.Alerts[0].RunbookURL, "http") {
		card.Actions = []Action{{Type: "Action.OpenUrl", Title: "Runbook", URL: n.Alerts[0].RunbookURL}}
	}
	return Message{Type: "message", Attachments: []Attachment{{ContentType: ContentType, Content: card}}}
}

// The bound on the text of a card; Teams refuses messages over about 28 KB.
const maxBody = 16000

// Notify posts n.
func (t *Teams) Notify(ctx context.Context, n patrol.Notification) error {
	m, err := t.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("teams: %w", err)
	}
	_, err = send.JSON(ctx, t.cfg.Client, send.Request{URL: t.cfg.URL, Body: Payload(n, m)})
	return err
}
