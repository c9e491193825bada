package config

import (
	"slices"
	"strings"
	"testing"
)

func TestAPIHostsAndMetricsSection(t *testing.T) {
	c, err := Parse([]byte("api:\n  hosts: [portpatrol.example.com, 10.0.0.5, '[fd00::5]']\n  max_inflight_per_client: 4\nmetrics: {require_token: true}\n"), "ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.API.Hosts, []string{"portpatrol.example.com", "10.0.0.5", "[fd00::5]"}; !slices.Equal(got, want) {
		t.Errorf("api.hosts: got %q, want %q", got, want)
	}
	if c.API.MaxInflightPerClient != 4 || !c.Metrics.RequireToken {
		t.Errorf("got max_inflight_per_client %d and metrics.require_token %v, want 4 and true", c.API.MaxInflightPerClient, c.Metrics.RequireToken)
	}
	if _, err := Parse([]byte("api: {hosts: ['*']}\n"), "ok.yaml"); err != nil {
		t.Errorf(`api.hosts ["*"]: got %v, want no error`, err)
	}

	for yaml, want := range map[string]string{"api: {socket: 'off'}\n": "off", "api: {socket: run/pp.sock}\n": "/etc/pp/run/pp.sock", "api: {socket: /run/pp.sock}\n": "/run/pp.sock"} {
		c, err := Parse([]byte(yaml), "/etc/pp/pp.yaml")
		if err != nil || c.APISocket() != want {
			t.Errorf("%s: got %q, %v; want %q", strings.TrimSpace(yaml), c.APISocket(), err, want)
		}
	}

	tests := []struct{ name, yaml, want string }{
		{"host with port", "api:\n  hosts: [pp.example.com:9115]\n", `bad.yaml:2:11: api.hosts[0]: "pp.example.com:9115": give the host without a port`},
		{"url", "api:\n  hosts: ['https://pp.example.com']\n", `api.hosts[0]: "https://pp.example.com" is not a host name`},
		{"empty", "api:\n  hosts: ['']\n", `api.hosts[0]: "" is not a host name`},
		{"star among names", "api:\n  hosts: ['*', pp.example.com]\n", `api.hosts[0]: "*" allows every Host header; give it alone`},
		{"wildcard name", "api:\n  hosts: ['*.example.com']\n", `api.hosts[0]: "*.example.com" is not a host name`},
		{"negative limit", "api: {max_inflight_per_client: -1}\n", "api.max_inflight_per_client: must not be negative, got -1"},
		{"socket too long", "api: {socket: /" + strings.Repeat("s", 120) + "}\n", "bad.yaml:1:15: api.socket: \"/sss"},
		{"unknown metrics field", "metrics: {require_tokens: true}\n", `metrics.require_tokens: unknown field "require_tokens"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "bad.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error\n  %v\nwant one containing\n  %s", err, tt.want)
			}
		})
	}
}
