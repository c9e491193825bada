package config

import (
	"strings"
	"testing"
)

func TestHeartbeatErrorsCarryTheirPosition(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown receiver", `notify:
  receivers: [{name: default, type: webhook, url: "http://127.0.0.1:9/"}]
heartbeat:
  watchdog: {receiver: nobody}
`, `pp.yaml:4:24: heartbeat.watchdog.receiver: "nobody" is not a receiver under notify.receivers`},
		{"ping not http", `heartbeat:
  ping:
    url: "ftp://hc.example/abc"
`, `pp.yaml:3:10: heartbeat.ping.url: not an http or https URL with a host`},
		{"short interval", `heartbeat:
  interval: 10ms
  pagerduty: {url: "https://127.0.0.1/hb"}
`, `pp.yaml:2:13: heartbeat.interval: must be at least 1s, got 10ms`},
		{"negative backlog", `self_check:
  outbox_backlog: -1
`, `pp.yaml:2:19: self_check.outbox_backlog: must not be negative, got -1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body), "pp.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hc.example") {
				t.Fatalf("the error quotes the URL, which may hold a token: %v", err)
			}
		})
	}
	cfg, err := Parse([]byte(`heartbeat: {ping: {url: "https://127.0.0.1/ping/x"}}`), "pp.yaml")
	if err != nil || !cfg.Heartbeat.Enabled() {
		t.Fatalf("a valid heartbeat: %v", err)
	}
}
