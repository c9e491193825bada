package notify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/alertmanager"
	"github.com/portpatrol/portpatrol/internal/notify/email"
)

const example = `
external_url: https://portpatrol.example.com
outbox:
  max_age: 24h
  backoff_min: 5s
  backoff_max: 10m
receivers:
  - name: noc-slack
    type: slack
    url: https://hooks.slack.com/services/T000/B000/XXXX
  - name: sre-pager
    type: pagerduty
    routing_key_file: pd.key
  - name: oncall-mail
    type: email
    lang: zh
    timezone: Asia/Shanghai
    smtp:
      host: smtp.example.com
      port: 587
      from: portpatrol <alerts@example.com>
      to: [oncall@example.com]
      username: alerts
      password_file: smtp.pass
      starttls: true
  - name: ops-dingtalk
    type: dingtalk
    url: https://oapi.dingtalk.com/robot/send?access_token=XXXX
    secret_file: dingtalk.secret
    lang: zh
  - name: am
    type: alertmanager
    url: http://alertmanager:9093
    resend_interval: 1m
  - name: status-page
    type: webhook
    url: https://status.example.com/hooks/portpatrol
    secret: s3cret
    templates:
      title: '{{if eq .Kind "impact"}}{{services .}}{{else}}[{{.Severity}}] {{subject .}}{{end}}'
`

// The documented example decodes and builds.
func TestExampleConfig(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"pd.key", "smtp.pass", "dingtalk.secret"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var cfg notify.Config
	if err := yaml.Unmarshal([]byte(example), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Outbox.MaxAge != 24*time.Hour {
		t.Fatalf("decoded %+v", cfg.Outbox)
	}
	am, ok := cfg.Receivers[4].Settings.(*alertmanager.ReceiverConfig)
	if !ok || am.ResendInterval != time.Minute {
		t.Errorf("alertmanager settings: got %#v, want *alertmanager.ReceiverConfig with resend_interval 1m", cfg.Receivers[4].Settings)
	}
	mail, ok := cfg.Receivers[2].Settings.(*email.ReceiverConfig)
	if !ok || mail.SMTP == nil || mail.SMTP.StartTLS == nil || !*mail.SMTP.StartTLS || mail.SMTP.PasswordFile != "smtp.pass" {
		t.Errorf("email settings: got %#v, want *email.ReceiverConfig with starttls and password_file", cfg.Receivers[2].Settings)
	}
	if cfg.Receivers[2].Lang != "zh" || cfg.Receivers[2].Timezone != "Asia/Shanghai" {
		t.Errorf("common fields: got lang %q timezone %q, want zh Asia/Shanghai", cfg.Receivers[2].Lang, cfg.Receivers[2].Timezone)
	}
	cfg.Dir = dir
	d, err := notify.New(cfg, &notify.MemStore{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Receivers()); got != 6 {
		t.Errorf("got %d receivers, want 6", got)
	}
}

// A receiver's YAML mapping holds the common fields and its type's own: each type
// builds from its own fields, and a field its type does not declare is named.
func TestReceiverFieldsByType(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       string // "" means valid
	}{
		{"webhook", "{name: r, type: webhook, url: 'https://h/x', token: t, secret: s}", ""},
		{"slack", "{name: r, type: slack, url: 'https://h/x'}", ""},
		{"email", "{name: r, type: email, smtp: {host: mx, from: a@b.c, to: [d@e.f], username: u, password: p}}", ""},
		{"pagerduty", "{name: r, type: pagerduty, routing_key: k, url: 'https://h'}", ""},
		{"opsgenie", "{name: r, type: opsgenie, api_key: k}", ""},
		{"alertmanager", "{name: r, type: alertmanager, url: 'http://am:9093', token: t, resend_interval: 2m}", ""},
		{"dingtalk", "{name: r, type: dingtalk, url: 'https://h/x', secret: s, lang: zh}", ""},
		{"feishu", "{name: r, type: feishu, url: 'https://h/x', secret: s, timezone: Asia/Shanghai}", ""},
		{"wecom", "{name: r, type: wecom, url: 'https://h/x', templates: {title: hi}}", ""},
		{"telegram", "{name: r, type: telegram, token: t, chat_id: '@ops'}", ""},
		{"field of another type", "{name: r, type: slack, url: 'https://h/x', routing_key: k}",
			"notify.receivers[0].routing_key: not used by type slack"},
		{"resend_interval on a webhook", "{name: r, type: webhook, url: 'https://h/x', resend_interval: 1m}",
			"notify.receivers[0].resend_interval: not used by type webhook"},
		{"url on email", "{name: r, type: email, url: 'https://h/x', smtp: {host: mx, from: a@b.c, to: [d@e.f]}}",
			"notify.receivers[0].url: not used by type email"},
		{"typo", "{name: r, type: slack, urll: 'https://h/x'}",
			`notify.receivers[0].urll: unknown field "urll"; valid fields for type slack: buttons, lang, name, templates, timezone, type, url`},
		{"missing field", "{name: r, type: opsgenie}", "notify.receivers[0].api_key: required for type opsgenie"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg notify.Config
			if err := yaml.Unmarshal([]byte("receivers: ["+tt.yaml+"]"), &cfg); err != nil {
				t.Fatal(err)
			}
			d, err := notify.New(cfg, &notify.MemStore{}, nil)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case tt.want == "" && len(d.Receivers()) != 1:
				t.Fatalf("got %d receivers, want 1", len(d.Receivers()))
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
