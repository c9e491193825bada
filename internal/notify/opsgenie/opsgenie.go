// Package opsgenie sends notifications to the Opsgenie Alert API: create for firing,
// escalation and reminder, acknowledge and close by alias for the rest. The alias is
// the alert's fingerprint, so Opsgenie deduplicates a retried create.
package opsgenie

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultURL is the Alert API's base URL (EU accounts: https://api.eu.opsgenie.com).
const DefaultURL = "https://api.opsgenie.com"

// Config configures an Opsgenie.
type Config struct {
	// APIKey is the API integration key. Required.
	APIKey string
	// URL is the API base URL; empty means DefaultURL.
	URL string
	// Templates render message and description; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Opsgenie sends alert actions. It is safe for concurrent use.
type Opsgenie struct {
	cfg Config
}

// New returns an Opsgenie.
func New(cfg Config) (*Opsgenie, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("opsgenie: missing api key")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Opsgenie{cfg: cfg}, nil
}

// Type names an Opsgenie receiver in notify.receivers.
const Type = "opsgenie"

// ReceiverConfig is an Opsgenie receiver's own fields in notify.receivers. The API key
// is given inline (prefer ${ENV}) or read from api_key_file, not both.
type ReceiverConfig struct {
	// APIKey is the API integration key. Required.
	APIKey     string `yaml:"api_key"`
	APIKeyFile string `yaml:"api_key_file"`
	// URL overrides the API base URL (DefaultURL).
	URL string `yaml:"url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "api_key", c.APIKey != "" || c.APIKeyFile != ""),
		receiver.Secret("api_key", c.APIKey, c.APIKeyFile),
		receiver.URL("url", c.URL),
	)
}

// Build reads c's API key file and returns the Opsgenie c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Opsgenie, error) {
	key, err := env.Secret("api_key", c.APIKey, c.APIKeyFile)
	if err != nil {
		return nil, err
	}
	return New(Config{APIKey: key, URL: c.URL, Templates: env.Templates, Client: env.Client})
}

// Priority maps P0–P3 to Opsgenie's P1–P4; P5 is not used.
func Priority(s patrol.Severity) string {
	switch s {
	case patrol.P0:
		return "P1"
	case patrol.P1:
		return "P2"
	case patrol.P2:
		return "P3"
	default:
		return "P4"
	}
}

type create struct {
	Message     string            `json:"message"`
	Alias       string            `json:"alias"`
	Description string            `json:"description,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Details     map[string]string `json:"details,omitempty"`
	Entity      string            `json:"entity,omitempty"`
	Source      string            `json:"source"`
	Priority    string            `json:"priority"`
}

type action struct {
	Source string `json:"source"`
	User   string `json:"user,omitempty"`
	Note   string `json:"note,omitempty"`
}

// Alert API limits, in characters; bytes are a safe bound.
const (
	maxMessage     = 130
	maxAlias       = 512
	maxDescription = 15000
)

// Notify sends one request per alert. A test creates an alert and closes it.
// Impact notices are for customers, not for on-call: they fail permanently.
func (o *Opsgenie) Notify(ctx context.Context, n patrol.Notification) error {
	if n.Kind == patrol.NotifyImpact {
		return send.Permanentf("opsgenie: impact notices are not sent to on-call")
	}
	if n.Kind == patrol.NotifyTest {
		m, _ := o.cfg.Templates.Render(n)
		alias := render.Truncate("portpatrol-test-"+n.Key, maxAlias)
		if err := o.post(ctx, "/v2/alerts", create{Message: render.Truncate(m.Title, maxMessage), Alias: alias,
			Description: m.Body, Source: "portpatrol", Priority: "P5"}); err != nil {
			return err
		}
		return o.post(ctx, actionPath(alias, "close"), action{Source: "portpatrol", Note: "test"})
	}
	for _, a := range n.Alerts {
		alias := a.Fingerprint
		if alias == "" {
			alias = a.ID
		}
		alias = render.Truncate(alias, maxAlias)
		var err error
		switch {
		case a.State == patrol.AlertResolved || n.Kind == patrol.NotifyResolved:
			act := action{Source: "portpatrol", Note: "resolved: the condition cleared"}
			if a.ResolvedBy != "" && a.ResolvedBy != "auto" {
				act.User, act.Note = a.ResolvedBy, "resolved in portpatrol"
			}
			err = o.post(ctx, actionPath(alias, "close"), act)
		case n.Kind == patrol.NotifyAck:
			err = o.post(ctx, actionPath(alias, "acknowledge"), action{Source: "portpatrol", User: a.AckedBy, Note: "acknowledged in portpatrol"})
		default:
			err = o.post(ctx, "/v2/alerts", o.create(n, a, alias))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func actionPath(alias, verb string) string {
	return "/v2/alerts/" + url.PathEscape(alias) + "/" + verb + "?identifierType=alias"
}

func (o *Opsgenie) create(n patrol.Notification, a patrol.Alert, alias string) create {
	one := n
	one.Alerts = []patrol.Alert{a}
	m, err := o.cfg.Templates.Render(one)
	if err != nil {
		m = render.Message{Title: a.Summary, Body: a.Description}
	}
	details := map[string]string{"rule": a.Rule, "severity": a.Severity.String(), "alert_id": a.ID}
	for k, v := range a.Labels {
		details[k] = v
	}
	if a.RunbookURL != "" {
		details["runbook_url"] = a.RunbookURL
	}
	tags := []string{"portpatrol", a.Severity.String()}
	if a.Class != "" {
		tags = append(tags, string(a.Class))
	}
	return create{
		Message:     render.Truncate(m.Title, maxMessage),
		Alias:       alias,
		Description: render.Truncate(m.Body, maxDescription),
		Tags:        tags,
		Details:     details,
		Entity:      a.Target,
		Source:      "portpatrol",
		Priority:    Priority(a.Severity),
	}
}

func (o *Opsgenie) post(ctx context.Context, path string, body any) error {
	_, err := send.JSON(ctx, o.cfg.Client, send.Request{
		URL:    strings.TrimRight(o.cfg.URL, "/") + path,
		Header: http.Header{"Authorization": {"GenieKey " + o.cfg.APIKey}},
		Body:   body,
	})
	return err
}
