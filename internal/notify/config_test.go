package notify_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/portpatrol/portpatrol/internal/notify"
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
	if cfg.Outbox.MaxAge != 24*time.Hour || cfg.Receivers[4].ResendInterval != time.Minute || !*cfg.Receivers[2].SMTP.StartTLS {
		t.Fatalf("decoded %+v", cfg.Outbox)
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
