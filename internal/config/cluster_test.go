package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestClusterErrorsCarryTheirPosition(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"settings without url", "cluster:\n  location: eu-1\n",
			`pp.yaml:2:3: cluster.url: cluster settings without a url`},
		{"bad location", "cluster:\n  url: nats://127.0.0.1:4222\n  location: eu 1\n",
			`pp.yaml:3:13: cluster.location: "eu 1": use 1-64 letters, digits, '-' or '_'`},
		{"ttl under two heartbeats", "cluster:\n  url: nats://127.0.0.1:4222\n  heartbeat: 5s\n  ttl: 6s\n",
			`pp.yaml:4:8: cluster.ttl: 6s is less than twice the heartbeat 5s`},
		{"replicas", "cluster:\n  url: nats://127.0.0.1:4222\n  replicas: 7\n",
			`pp.yaml:3:13: cluster.replicas: must be 1 to 5, got 7`},
		{"quorum over locations", "targets:\n  - url: tcp://127.0.0.1:22\n    locations: [eu-1, us-1]\n    quorum: 3\n",
			`pp.yaml:4:13: targets[0].quorum: quorum 3 is more than the 2 locations listed`},
		{"location twice", "targets:\n  - url: tcp://127.0.0.1:22\n    locations: [eu-1, eu-1]\n",
			`targets[0].locations[1]: location "eu-1" is listed twice`},
		{"bad location name", "targets:\n  - url: tcp://127.0.0.1:22\n    locations: [\"a.b\"]\n",
			`targets[0].locations[0]: "a.b": use 1-64 letters`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.body), "pp.yaml")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestClusterDefaultsAndPlacement(t *testing.T) {
	cfg, err := Parse([]byte(`cluster: {url: "nats://127.0.0.1:4222", heartbeat: 10s}
targets:
  - url: tcp://127.0.0.1:22
    locations: [eu-1, us-1, ap-1]
    quorum: 2
  - url: tcp://127.0.0.1:23
`), "pp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster.WithDefaults()
	if !cfg.Cluster.On() || c.Location != "default" || c.Heartbeat != 10*time.Second || c.TTL != 20*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if got := cfg.Checks[0]; !slices.Equal(got.Locations, []string{"eu-1", "us-1", "ap-1"}) || got.Quorum != 2 {
		t.Errorf("placement of the first target: %v quorum %d", got.Locations, got.Quorum)
	}
	if got := cfg.Checks[1]; got.Locations != nil || got.Quorum != 0 {
		t.Errorf("the second target has a placement it was not given: %v %d", got.Locations, got.Quorum)
	}
	if (Cluster{}).On() {
		t.Error("the zero cluster is on")
	}
}
