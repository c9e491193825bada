package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/alertmanager"
	"github.com/portpatrol/portpatrol/internal/notify/dingtalk"
	"github.com/portpatrol/portpatrol/internal/notify/email"
	"github.com/portpatrol/portpatrol/internal/notify/feishu"
	"github.com/portpatrol/portpatrol/internal/notify/opsgenie"
	"github.com/portpatrol/portpatrol/internal/notify/pagerduty"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
	"github.com/portpatrol/portpatrol/internal/notify/telegram"
	"github.com/portpatrol/portpatrol/internal/notify/webhook"
	"github.com/portpatrol/portpatrol/internal/notify/wecom"
)

// Types lists the receiver types and the fields each one uses; the first fields listed
// before "|" are required (a secret counts as given inline or in its *_file).
var Types = map[string]string{
	"webhook":      "url | token secret",
	"slack":        "url |",
	"email":        "smtp |",
	"pagerduty":    "routing_key | url",
	"opsgenie":     "api_key | url",
	"alertmanager": "url | token resend_interval",
	"dingtalk":     "url | secret",
	"feishu":       "url | secret",
	"wecom":        "url |",
	"telegram":     "token chat_id | url",
}

// TypeNames returns the receiver types, sorted.
func TypeNames() []string {
	names := make([]string, 0, len(Types))
	for t := range Types {
		names = append(names, t)
	}
	slices.Sort(names)
	return names
}

// New builds the receivers of cfg and a Dispatcher over store. Every problem in cfg is
// reported, each as a *FieldError naming the field ("notify.receivers[1].url: …"),
// joined with errors.Join. clock nil means the system clock.
func New(cfg Config, store Store, clock Clock) (*Dispatcher, error) {
	if clock == nil {
		clock = systemClock{}
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	var errs []error
	if err := cfg.Outbox.withDefaults().validate("outbox"); err != nil {
		errs = append(errs, err)
	}
	if cfg.ExternalURL != "" {
		if err := checkURL(cfg.ExternalURL); err != nil {
			errs = append(errs, &FieldError{Path: "external_url", Msg: err.Error()})
		}
	}
	seen := map[string]int{}
	var receivers []Receiver
	for i, rc := range cfg.Receivers {
		b := builder{cfg: cfg, rc: rc, path: fmt.Sprintf("receivers[%d]", i), client: client, clock: clock}
		if rc.Name == "" {
			b.fail("name", "missing")
		} else if j, dup := seen[rc.Name]; dup {
			b.fail("name", fmt.Sprintf("%q is already used by receivers[%d]", rc.Name, j))
		} else {
			seen[rc.Name] = i
		}
		r, ok := b.build()
		errs = append(errs, b.errs...)
		if ok && len(b.errs) == 0 {
			receivers = append(receivers, r)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return NewDispatcher(cfg.Outbox, store, clock, receivers...)
}

type builder struct {
	cfg    Config
	rc     ReceiverConfig
	path   string
	client *http.Client
	clock  Clock
	errs   []error
}

func (b *builder) fail(field, msg string) {
	b.errs = append(b.errs, &FieldError{Path: b.path + "." + field, Msg: msg})
}

// secret returns an inline secret or the trimmed content of its file.
func (b *builder) secret(field, inline, file string) string {
	if file == "" {
		return inline
	}
	if inline != "" {
		b.fail(field+"_file", fmt.Sprintf("give %s or %s_file, not both", field, field))
		return ""
	}
	if !filepath.IsAbs(file) && b.cfg.Dir != "" {
		file = filepath.Join(b.cfg.Dir, file)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		b.fail(field+"_file", err.Error())
		return ""
	}
	s := strings.TrimRight(string(data), "\r\n")
	if s == "" {
		b.fail(field+"_file", file+" is empty")
	}
	return s
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("does not parse as a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("URL has no host")
	}
	return nil
}

// build checks the receiver's fields against its type and makes its Notifier.
func (b *builder) build() (Receiver, bool) {
	rc := b.rc
	spec, ok := Types[rc.Type]
	if !ok {
		if rc.Type == "" {
			b.fail("type", "missing; want one of "+strings.Join(TypeNames(), ", "))
		} else {
			b.fail("type", fmt.Sprintf("unknown type %q; want one of %s", rc.Type, strings.Join(TypeNames(), ", ")))
		}
		return Receiver{}, false
	}
	reqPart, optPart, _ := strings.Cut(spec, "|")
	required, optional := strings.Fields(reqPart), strings.Fields(optPart)
	secret := b.secret("secret", rc.Secret, rc.SecretFile)
	token := b.secret("token", rc.Token, rc.TokenFile)
	routingKey := b.secret("routing_key", rc.RoutingKey, rc.RoutingKeyFile)
	apiKey := b.secret("api_key", rc.APIKey, rc.APIKeyFile)
	given := map[string]bool{
		"url": rc.URL != "", "secret": secret != "" || rc.SecretFile != "", "token": token != "" || rc.TokenFile != "",
		"routing_key": routingKey != "" || rc.RoutingKeyFile != "", "api_key": apiKey != "" || rc.APIKeyFile != "",
		"chat_id": rc.ChatID != "", "smtp": rc.SMTP != nil, "resend_interval": rc.ResendInterval != 0,
	}
	for _, f := range required {
		if !given[f] {
			b.fail(f, "required for type "+rc.Type)
		}
	}
	for _, f := range []string{"url", "secret", "token", "routing_key", "api_key", "chat_id", "smtp", "resend_interval"} {
		if given[f] && !slices.Contains(required, f) && !slices.Contains(optional, f) {
			b.fail(f, "not used by type "+rc.Type)
		}
	}
	if rc.URL != "" {
		if err := checkURL(rc.URL); err != nil {
			b.fail("url", err.Error())
		}
	}
	if rc.ResendInterval < 0 {
		b.fail("resend_interval", "must not be negative")
	}
	tc := render.Config{Lang: rc.Lang}
	if rc.Lang != "" && !slices.Contains(render.Languages, rc.Lang) {
		b.fail("lang", fmt.Sprintf("unknown language %q; want one of %s", rc.Lang, strings.Join(render.Languages, ", ")))
		tc.Lang = ""
	}
	if rc.Timezone != "" {
		loc, err := time.LoadLocation(rc.Timezone)
		if err != nil {
			b.fail("timezone", err.Error())
		}
		tc.Location = loc
	}
	if rc.Templates != nil {
		tc.Title, tc.Body = rc.Templates.Title, rc.Templates.Body
	}
	tp, err := render.New(tc)
	if err != nil {
		field := "templates"
		var te *render.TemplateError
		if errors.As(err, &te) {
			field += "." + te.Template
		}
		b.fail(field, err.Error())
	}
	if len(b.errs) > 0 {
		return Receiver{}, false
	}
	r := Receiver{Name: rc.Name, Provider: rc.Type}
	var n Notifier
	switch rc.Type {
	case "webhook":
		n, err = webhook.New(webhook.Config{URL: rc.URL, Token: token, Secret: secret, ExternalURL: b.cfg.ExternalURL, Templates: tp, Client: b.client})
	case "slack":
		n, err = slack.New(slack.Config{URL: rc.URL, Templates: tp, Client: b.client})
	case "pagerduty":
		n, err = pagerduty.New(pagerduty.Config{RoutingKey: routingKey, URL: rc.URL, ExternalURL: b.cfg.ExternalURL, Templates: tp, Client: b.client})
	case "opsgenie":
		n, err = opsgenie.New(opsgenie.Config{APIKey: apiKey, URL: rc.URL, Templates: tp, Client: b.client})
	case "alertmanager":
		var am *alertmanager.Alertmanager
		am, err = alertmanager.New(alertmanager.Config{URL: rc.URL, Token: token, ExternalURL: b.cfg.ExternalURL, ResendInterval: rc.ResendInterval, Client: b.client})
		if err == nil {
			r.Resend = am.ResendInterval()
		}
		n = am
	case "dingtalk":
		n, err = dingtalk.New(dingtalk.Config{URL: rc.URL, Secret: secret, Templates: tp, Client: b.client, Now: b.clock.Now})
	case "feishu":
		n, err = feishu.New(feishu.Config{URL: rc.URL, Secret: secret, Templates: tp, Client: b.client, Now: b.clock.Now})
	case "wecom":
		n, err = wecom.New(wecom.Config{URL: rc.URL, Templates: tp, Client: b.client})
	case "telegram":
		n, err = telegram.New(telegram.Config{Token: token, ChatID: rc.ChatID, URL: rc.URL, Templates: tp, Client: b.client})
	case "email":
		n, err = b.email(tp)
	}
	if err != nil {
		b.errs = append(b.errs, &FieldError{Path: b.path, Msg: err.Error()})
		return Receiver{}, false
	}
	if len(b.errs) > 0 {
		return Receiver{}, false
	}
	r.Notifier = n
	return r, true
}

func (b *builder) email(tp *render.Templates) (Notifier, error) {
	s := b.rc.SMTP
	p := "smtp."
	if s.Host == "" {
		b.fail(p+"host", "required")
	}
	if s.Port < 0 || s.Port > 65535 {
		b.fail(p+"port", fmt.Sprintf("%d is out of range 1-65535", s.Port))
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		b.fail(p+"from", fmt.Sprintf("%q: %v", s.From, err))
	}
	if len(s.To) == 0 {
		b.fail(p+"to", "at least one recipient is required")
	}
	for i, t := range s.To {
		if _, err := mail.ParseAddress(t); err != nil {
			b.fail(fmt.Sprintf("%sto[%d]", p, i), fmt.Sprintf("%q: %v", t, err))
		}
	}
	password := b.secret(p+"password", s.Password, s.PasswordFile)
	if password != "" && s.Username == "" {
		b.fail(p+"username", "required when a password is given")
	}
	if len(b.errs) > 0 {
		return nil, nil
	}
	return email.New(email.Config{
		Host: s.Host, Port: s.Port, From: s.From, To: s.To, Username: s.Username, Password: password,
		NoStartTLS: s.StartTLS != nil && !*s.StartTLS, Templates: tp,
	})
}
