// Package webhook sends notifications as JSON in the shape of Alertmanager's webhook
// (version 4), so receivers written for Alertmanager work unchanged. Three fields are
// added: kind (firing, acknowledged, escalation…, which Alertmanager's status cannot
// say) and the rendered title and message.
package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// SignatureHeader carries hex(HMAC-SHA256(secret, body)) as "sha256=<hex>" when a
// secret is configured, so the receiver can check the sender.
const SignatureHeader = "X-Portpatrol-Signature"

// IdempotencyHeader carries the notification's outbox key (the IETF draft
// "The Idempotency-Key HTTP Header Field"): delivery is at least once, and a resend of
// one notification carries the same key.
const IdempotencyHeader = "Idempotency-Key"

// Config configures a Webhook.
type Config struct {
	// URL is where payloads are POSTed. Required.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Secret, when set, signs each body in SignatureHeader.
	Secret string
	// ExternalURL is portpatrol's own address, for externalURL and generatorURL.
	ExternalURL string
	// Templates render title and message; nil means the defaults.
	Templates *render.Templates
	// Client sends the requests; nil means a client with a 30s timeout.
	Client *http.Client
}

// Webhook posts Alertmanager-style webhook payloads. It is safe for concurrent use.
type Webhook struct {
	cfg Config
}

// New returns a Webhook.
func New(cfg Config) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, errors.New("webhook: missing url")
	}
	cfg.Templates = render.OrDefault(cfg.Templates)
	return &Webhook{cfg: cfg}, nil
}

// Type names a webhook receiver in notify.receivers.
const Type = "webhook"

// ReceiverConfig is a webhook receiver's own fields in notify.receivers. Each secret is
// given inline (prefer ${ENV}) or read from its *_file twin, not both.
type ReceiverConfig struct {
	// URL is where payloads are POSTed. Required.
	URL string `yaml:"url"`
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	// Secret, when set, signs each body in SignatureHeader.
	Secret     string `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`
}

// Validate returns every problem of c, each a *receiver.FieldError, joined.
func (c ReceiverConfig) Validate() error {
	return errors.Join(
		receiver.Required(Type, "url", c.URL != ""),
		receiver.URL("url", c.URL),
		receiver.Secret("token", c.Token, c.TokenFile),
		receiver.Secret("secret", c.Secret, c.SecretFile),
	)
}

// Build reads c's secret files and returns the Webhook c describes. c should have
// passed Validate.
func (c ReceiverConfig) Build(env receiver.Env) (*Webhook, error) {
	token, err1 := env.Secret("token", c.Token, c.TokenFile)
	secret, err2 := env.Secret("secret", c.Secret, c.SecretFile)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	return New(Config{URL: c.URL, Token: token, Secret: secret, ExternalURL: env.ExternalURL, Templates: env.Templates, Client: env.Client})
}

// Message is the payload: Alertmanager's webhook v4 plus kind, title and message.
type Message struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`
	Kind              string            `json:"kind"`
	Title             string            `json:"title"`
	Message           string            `json:"message"`
}

// Alert is one alert of a Message.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Notify posts n.
func (w *Webhook) Notify(ctx context.Context, n patrol.Notification) error {
	msg, err := w.cfg.Templates.Render(n)
	if err != nil {
		return send.Permanentf("webhook: %w", err)
	}
	body, err := send.Marshal(Payload(n, msg, w.cfg.ExternalURL))
	if err != nil {
		return send.Permanentf("webhook: encode: %w", err)
	}
	h := send.Bearer(w.cfg.Token)
	if w.cfg.Secret != "" {
		h.Set(SignatureHeader, "sha256="+Sign(w.cfg.Secret, body))
	}
	if n.Key != "" {
		// The outbox key: the same on a resend of this notification (after a crash or a
		// failover in the middle of a send), so the receiver can drop the second copy.
		h.Set(IdempotencyHeader, n.Key)
	}
	_, err = send.JSON(ctx, w.cfg.Client, send.Request{URL: w.cfg.URL, Header: h, Body: body})
	return err
}

// Sign returns hex(HMAC-SHA256(secret, body)).
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Payload builds the webhook payload for n.
func Payload(n patrol.Notification, msg render.Message, externalURL string) Message {
	m := Message{
		Version:     "4",
		GroupKey:    n.Group,
		Status:      "firing",
		Receiver:    n.Receiver,
		GroupLabels: GroupLabels(n.Group),
		ExternalURL: externalURL,
		Alerts:      make([]Alert, 0, len(n.Alerts)),
		Kind:        string(n.Kind),
		Title:       msg.Title,
		Message:     msg.Body,
	}
	if m.GroupKey == "" && len(n.Alerts) > 0 {
		m.GroupKey = n.Alerts[0].Fingerprint
	}
	resolved := len(n.Alerts) > 0
	var labels, annotations []map[string]string
	for _, a := range n.Alerts {
		wa := Alert{
			Status:       "firing",
			Labels:       Labels(a),
			Annotations:  Annotations(a),
			StartsAt:     a.StartsAt,
			EndsAt:       a.ResolvedAt,
			GeneratorURL: GeneratorURL(externalURL, a),
			Fingerprint:  a.Fingerprint,
		}
		if n.Kind == patrol.NotifyImpact {
			// Customer-facing: doctor's findings are internals.
			delete(wa.Annotations, "diagnosis")
			delete(wa.Annotations, "impact")
		}
		if a.State == patrol.AlertResolved {
			wa.Status = "resolved"
		} else {
			resolved = false
			wa.EndsAt = time.Time{}
		}
		m.Alerts = append(m.Alerts, wa)
		labels = append(labels, wa.Labels)
		annotations = append(annotations, wa.Annotations)
	}
	if resolved || n.Kind == patrol.NotifyResolved {
		m.Status = "resolved"
	}
	m.CommonLabels = common(labels)
	m.CommonAnnotations = common(annotations)
	return m
}

// Labels returns an alert's labels in Alertmanager's terms: its own labels plus
// alertname (the rule), severity, class and target.
func Labels(a patrol.Alert) map[string]string {
	l := make(map[string]string, len(a.Labels)+4)
	for k, v := range a.Labels {
		l[k] = v
	}
	if a.Rule != "" {
		l["alertname"] = a.Rule
	}
	l["severity"] = a.Severity.String()
	if a.Class != "" {
		l["class"] = string(a.Class)
	}
	if a.Target != "" {
		l["target"] = a.Target
	}
	return l
}

// Annotations returns an alert's summary, description and runbook_url, those that
// are set.
func Annotations(a patrol.Alert) map[string]string {
	an := map[string]string{}
	for k, v := range map[string]string{"summary": a.Summary, "description": a.Description, "runbook_url": a.RunbookURL,
		"diagnosis": a.Diagnosis, "impact": a.Impact} {
		if v != "" {
			an[k] = v
		}
	}
	return an
}

// GeneratorURL links to the alert in portpatrol's dashboard, or is empty without an
// external URL.
func GeneratorURL(externalURL string, a patrol.Alert) string {
	if externalURL == "" || a.ID == "" {
		return ""
	}
	return strings.TrimRight(externalURL, "/") + "/alerts/" + a.ID
}

// GroupLabels parses a grouping key of comma-separated name=value pairs; a key that
// is not in that form gives no labels.
func GroupLabels(group string) map[string]string {
	l := map[string]string{}
	if group == "" {
		return l
	}
	for _, kv := range strings.Split(group, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return map[string]string{}
		}
		l[k] = v
	}
	return l
}

// common returns the pairs every map has.
func common(ms []map[string]string) map[string]string {
	out := map[string]string{}
	if len(ms) == 0 {
		return out
	}
	keys := make([]string, 0, len(ms[0]))
	for k := range ms[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
next:
	for _, k := range keys {
		v := ms[0][k]
		for _, m := range ms[1:] {
			if w, ok := m[k]; !ok || w != v {
				continue next
			}
		}
		out[k] = v
	}
	return out
}
