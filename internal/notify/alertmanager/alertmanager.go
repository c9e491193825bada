// Package alertmanager posts alerts to Prometheus Alertmanager's API v2 (POST
// /api/v2/alerts), as Prometheus does. Alertmanager resolves an alert by itself once
// its endsAt passes, so an active alert is sent with endsAt = its notification's time
// + 4 × ResendInterval, and must be sent again while it lasts: the dispatcher does so
// for every receiver with a resend interval (notify.Receiver.Resend), which notify.New
// sets to ResendInterval for alertmanager receivers. A resolved alert is sent with its
// resolve time as endsAt.
package alertmanager

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/webhook"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// DefaultResendInterval is how often active alerts are re-sent when the config does
// not say.
const DefaultResendInterval = time.Minute

// Config configures an Alertmanager.
type Config struct {
	// URL is Alertmanager's base URL (http://alertmanager:9093). Required.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// ExternalURL is portpatrol's own address, for generatorURL.
	ExternalURL string
	// ResendInterval is how often the dispatcher re-sends active alerts; it sets
	// endsAt. Zero means DefaultResendInterval.
	ResendInterval time.Duration
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Alertmanager posts alerts. It is safe for concurrent use.
type Alertmanager struct {
	cfg Config
}

// New returns an Alertmanager.
func New(cfg Config) (*Alertmanager, error) {
	if cfg.URL == "" {
		return nil, errors.New("alertmanager: missing url")
	}
	if cfg.ResendInterval <= 0 {
		cfg.ResendInterval = DefaultResendInterval
	}
	return &Alertmanager{cfg: cfg}, nil
}

// Type names an Alertmanager receiver in notify.receivers.
const Type = "alertmanager"

// ReceiverConfig is an Alertmanager receiver's own fields in notify.receivers. The
// token is given inline (prefer ${ENV}) or read from token_file, not both.
type ReceiverConfig struct {
	// URL is Alertmanager's base URL. Required.
	URL string `yaml:"url"`
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// ResendInterval is how often active alerts are sent again
	// (DefaultResendInterval): Alertmanager drops an alert not re-sent before its
	// endsAt.
	ResendInterval time.Duration `yaml:"resend_interval"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	var negative error
	if c.ResendInterval < 0 {
		negative = receiver.Errorf("resend_interval", "must not be negative")
	}
	return errors.Join(
		receiver.Required(Type, "url", c.URL != ""),
		receiver.URL("url", c.URL),
		receiver.Secret("token", c.Token, c.TokenFile),
		negative,
	)
}

// Build reads c's token file and returns the Alertmanager c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Alertmanager, error) {
	token, err := env.Secret("token", c.Token, c.TokenFile)
	if err != nil {
		return nil, err
	}
	return New(Config{URL: c.URL, Token: token, ExternalURL: env.ExternalURL, ResendInterval: c.ResendInterval, Client: env.Client})
}

// ResendInterval returns how often active alerts must be re-sent.
func (am *Alertmanager) ResendInterval() time.Duration { return am.cfg.ResendInterval }

// Alert is a postable alert of the API v2.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// Notify posts n's alerts. Acknowledged alerts stay active (Alertmanager has no
// acknowledgement; silence them there if wanted). A test posts an alert named
// PortpatrolTest that ends a minute later. Impact notices fail permanently: they are
// for customers, not for Alertmanager's routing.
func (am *Alertmanager) Notify(ctx context.Context, n patrol.Notification) error {
	if n.Kind == patrol.NotifyImpact {
		return send.Permanentf("alertmanager: impact notices are not sent to alertmanager")
	}
	_, err := send.JSON(ctx, am.cfg.Client, send.Request{
		URL:    strings.TrimRight(am.cfg.URL, "/") + "/api/v2/alerts",
		Header: send.Bearer(am.cfg.Token),
		Body:   am.Alerts(n),
	})
	return err
}

// Alerts returns the alerts Notify posts for n.
func (am *Alertmanager) Alerts(n patrol.Notification) []Alert {
	if n.Kind == patrol.NotifyTest {
		return []Alert{{
			Labels:      map[string]string{"alertname": "PortpatrolTest", "receiver": n.Receiver},
			Annotations: map[string]string{"summary": "portpatrol test notification"},
			StartsAt:    n.CreatedAt,
			EndsAt:      n.CreatedAt.Add(time.Minute),
		}}
	}
	out := make([]Alert, 0, len(n.Alerts))
	for _, a := range n.Alerts {
		al := Alert{
			Labels:       webhook.Labels(a),
			Annotations:  webhook.Annotations(a),
			StartsAt:     a.StartsAt,
			GeneratorURL: webhook.GeneratorURL(am.cfg.ExternalURL, a),
		}
		if a.State == patrol.AlertResolved || n.Kind == patrol.NotifyResolved {
			al.EndsAt = a.ResolvedAt
			if al.EndsAt.IsZero() {
				al.EndsAt = n.CreatedAt
			}
		} else {
			al.EndsAt = n.CreatedAt.Add(4 * am.cfg.ResendInterval)
		}
		out = append(out, al)
	}
	return out
}
