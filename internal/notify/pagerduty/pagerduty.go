// Package pagerduty sends notifications as PagerDuty Events API v2 events (POST
// /v2/enqueue): one event per alert, with the alert's fingerprint as dedup_key, so a
// trigger, its acknowledge and its resolve land on the same PagerDuty incident and a
// retried send does not page twice.
package pagerduty

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultURL is the Events API's base URL.
const DefaultURL = "https://events.pagerduty.com"

// Config configures a PagerDuty.
type Config struct {
	// RoutingKey is the service integration key. Required.
	RoutingKey string
	// URL is the Events API base URL; empty means DefaultURL (EU accounts use
	// https://events.eu.pagerduty.com).
	URL string
	// ExternalURL is portpatrol's own address, sent as client_url.
	ExternalURL string
	// Templates render summaries; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// PagerDuty sends events. It is safe for concurrent use.
type PagerDuty struct {
	cfg Config
}

// New returns a PagerDuty.
func New(cfg Config) (*PagerDuty, error) {
	if cfg.RoutingKey == "" {
		return nil, errors.New("pagerduty: missing routing key")
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &PagerDuty{cfg: cfg}, nil
}

// Type names a PagerDuty receiver in notify.receivers.
const Type = "pagerduty"

// ReceiverConfig is a PagerDuty receiver's own fields in notify.receivers. The routing
// key is given inline (prefer ${ENV}) or read from routing_key_file, not both.
type ReceiverConfig struct {
	// RoutingKey is the Events v2 integration key. Required.
	RoutingKey     string `yaml:"routing_key"`
	RoutingKeyFile string `yaml:"routing_key_file"`
	// URL overrides the Events API base URL (DefaultURL).
	URL string `yaml:"url"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "routing_key", c.RoutingKey != "" || c.RoutingKeyFile != ""),
		receiver.Secret("routing_key", c.RoutingKey, c.RoutingKeyFile),
		receiver.URL("url", c.URL),
	)
}

// Build reads c's routing key file and returns the PagerDuty c describes. c should
// have passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*PagerDuty, error) {
	key, err := env.Secret("routing_key", c.RoutingKey, c.RoutingKeyFile)
	if err != nil {
		return nil, err
	}
	return New(Config{RoutingKey: key, URL: c.URL, ExternalURL: env.ExternalURL, Templates: env.Templates, Client: env.Client})
}

// Event is an Events API v2 event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload,omitempty"`
	Client      string   `json:"client,omitempty"`
	ClientURL   string   `json:"client_url,omitempty"`
	Links       []Link   `json:"links,omitempty"`
}

// Payload is the body of a trigger event.
type Payload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     time.Time      `json:"timestamp,omitzero"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// Link is a link shown on the incident.
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Severity maps P0–P3 to PagerDuty's severities.
func Severity(s patrol.Severity) string {
	switch s {
	case patrol.P0:
		return "critical"
	case patrol.P1:
		return "error"
	case patrol.P2:
		return "warning"
	default:
		return "info"
	}
}

// Events API limits.
const maxSummary = 1024

// Notify sends one event per alert: trigger for firing, escalation and reminder,
// acknowledge for acknowledged, resolve for resolved (per alert: an alert already
// resolved is resolved whatever the kind). A test sends a trigger and its resolve.
// Impact notices are for customers, not for paging: they fail permanently.
func (p *PagerDuty) Notify(ctx context.Context, n patrol.Notification) error {
	if n.Kind == patrol.NotifyImpact {
		return send.Permanentf("pagerduty: impact notices are not sent to pagers")
	}
	for _, ev := range p.Events(n) {
		if _, err := send.JSON(ctx, p.cfg.Client, send.Request{URL: strings.TrimRight(p.cfg.URL, "/") + "/v2/enqueue", Body: ev}); err != nil {
			return err
		}
	}
	return nil
}

// Events returns the events Notify sends for n, in order.
func (p *PagerDuty) Events(n patrol.Notification) []Event {
	if n.Kind == patrol.NotifyTest {
		m, _ := p.cfg.Templates.Render(n)
		key := "portpatrol-test-" + n.Key
		return []Event{
			{RoutingKey: p.cfg.RoutingKey, EventAction: "trigger", DedupKey: key, Client: "portpatrol", ClientURL: p.cfg.ExternalURL,
				Payload: &Payload{Summary: render.Truncate(m.Title, maxSummary), Source: "portpatrol", Severity: "info", Timestamp: n.CreatedAt}},
			{RoutingKey: p.cfg.RoutingKey, EventAction: "resolve", DedupKey: key},
		}
	}
	var out []Event
	for _, a := range n.Alerts {
		key := a.Fingerprint
		if key == "" {
			key = a.ID
		}
		ev := Event{RoutingKey: p.cfg.RoutingKey, DedupKey: key}
		switch {
		case a.State == patrol.AlertResolved || n.Kind == patrol.NotifyResolved:
			ev.EventAction = "resolve"
		case n.Kind == patrol.NotifyAck:
			ev.EventAction = "acknowledge"
		default:
			ev.EventAction = "trigger"
			ev.Payload = p.payload(n, a)
			ev.Client = "portpatrol"
			ev.ClientURL = p.cfg.ExternalURL
			if a.RunbookURL != "" {
				ev.Links = []Link{{Href: a.RunbookURL, Text: "Runbook"}}
			}
		}
		out = append(out, ev)
	}
	return out
}

// payload describes one alert; its summary is the alert's own title.
func (p *PagerDuty) payload(n patrol.Notification, a patrol.Alert) *Payload {
	one := n
	one.Alerts = []patrol.Alert{a}
	m, err := p.cfg.Templates.Render(one)
	summary := m.Title
	if err != nil || summary == "" {
		summary = a.Summary
	}
	details := map[string]any{
		"summary":  a.Summary,
		"rule":     a.Rule,
		"severity": a.Severity.String(),
		"state":    string(a.State),
		"since":    a.StartsAt,
		"alert_id": a.ID,
	}
	if a.Description != "" {
		details["description"] = a.Description
	}
	if !a.Deadline.IsZero() {
		details["ack_deadline"] = a.Deadline
	}
	if len(a.Labels) > 0 {
		details["labels"] = a.Labels
	}
	if len(a.Evidence) > 0 {
		last := a.Evidence[len(a.Evidence)-1]
		details["last_result"] = map[string]any{"class": last.Class, "error": last.Error, "at": last.Start}
	}
	if len(a.Told) > 0 {
		details["told"] = a.Told
	}
	if err == nil && m.Body != "" {
		details["message"] = m.Body
	}
	source := a.Target
	if source == "" {
		source = "portpatrol"
	}
	return &Payload{
		Summary:       render.Truncate(summary, maxSummary),
		Source:        source,
		Severity:      Severity(a.Severity),
		Timestamp:     a.StartsAt,
		Component:     a.Labels["service"],
		Group:         n.Group,
		Class:         string(a.Class),
		CustomDetails: details,
	}
}
