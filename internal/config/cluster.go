package config

import (
	"fmt"
	"regexp"
	"time"
)

// Cluster is cluster mode (docs/scale-out.md): several portpatrol processes share the
// targets through NATS JetStream, each probing its share in its location, and one of
// them raises the alerts. The zero value is a single instance.
type Cluster struct {
	// URL is the NATS server list (nats://host:4222[,nats://host2:4222]); empty turns
	// cluster mode off.
	URL string `yaml:"url"`
	// Name is this member's ID; default the host name and a random suffix.
	Name string `yaml:"name"`
	// Location is where this member probes from (default "default"); targets list the
	// locations that must watch them.
	Location string `yaml:"location"`
	// Heartbeat is how often a member announces itself (default 2s).
	Heartbeat time.Duration `yaml:"heartbeat"`
	// TTL is how long a silent member stays a member, and the alerting lease lasts
	// (default 10s, at least twice the heartbeat).
	TTL time.Duration `yaml:"ttl"`
	// Prefix names the cluster's buckets and stream (default "portpatrol"): clusters
	// with different prefixes share a NATS system without seeing each other.
	Prefix string `yaml:"prefix"`
	// Replicas is the JetStream replication of the buckets and the results stream
	// (default 1; 3 on a three-server NATS cluster).
	Replicas int `yaml:"replicas"`
	// Buffer is how many results a member keeps while NATS is unreachable (default
	// 100000); beyond it the oldest are dropped and counted.
	Buffer int `yaml:"buffer"`
}

// The cluster defaults.
const (
	DefaultClusterHeartbeat = 2 * time.Second
	DefaultClusterTTL       = 10 * time.Second
	DefaultClusterLocation  = "default"
)

// On reports whether cluster mode is configured.
func (c Cluster) On() bool { return c.URL != "" }

// WithDefaults returns c with its zero fields set to the defaults.
func (c Cluster) WithDefaults() Cluster {
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultClusterHeartbeat
	}
	if c.TTL == 0 {
		c.TTL = max(DefaultClusterTTL, 2*c.Heartbeat)
	}
	if c.Location == "" {
		c.Location = DefaultClusterLocation
	}
	return c
}

// clusterName is the form of member and location names: they become NATS subject
// tokens and KV keys.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckClusterName returns why s cannot be a member or location name, or "".
func CheckClusterName(s string) string {
	if !clusterName.MatchString(s) {
		return fmt.Sprintf("%q: use 1-64 letters, digits, '-' or '_'", s)
	}
	return ""
}

func (c *Config) resolveCluster(at func(path, format string, args ...any)) {
	cl := c.Cluster
	if cl == (Cluster{}) {
		return
	}
	if cl.URL == "" {
		at("cluster.url", "cluster settings without a url: give the NATS servers (url: nats://127.0.0.1:4222) or remove the section")
		return
	}
	if cl.Name != "" {
		if msg := CheckClusterName(cl.Name); msg != "" {
			at("cluster.name", "%s", msg)
		}
	}
	if cl.Location != "" {
		if msg := CheckClusterName(cl.Location); msg != "" {
			at("cluster.location", "%s", msg)
		}
	}
	if cl.Prefix != "" {
		if msg := CheckClusterName(cl.Prefix); msg != "" {
			at("cluster.prefix", "%s", msg)
		}
	}
	checkNotNegative(at, "cluster.heartbeat", cl.Heartbeat)
	checkNotNegative(at, "cluster.ttl", cl.TTL)
	d := cl.WithDefaults()
	if d.Heartbeat > 0 && d.Heartbeat < 100*time.Millisecond {
		at("cluster.heartbeat", "%s is under 100ms", d.Heartbeat)
	}
	if d.TTL < 2*d.Heartbeat {
		at("cluster.ttl", "%s is less than twice the heartbeat %s: a member would expire between two heartbeats", d.TTL, d.Heartbeat)
	}
	if cl.Replicas < 0 || cl.Replicas > 5 {
		at("cluster.replicas", "must be 1 to 5, got %d", cl.Replicas)
	}
	if cl.Buffer < 0 {
		at("cluster.buffer", "must not be negative, got %d", cl.Buffer)
	}
}

// checkPlacement checks a target's locations and quorum.
func checkPlacement(at func(path, format string, args ...any), p string, tc TargetConfig) {
	seen := map[string]bool{}
	for j, l := range tc.Locations {
		if msg := CheckClusterName(l); msg != "" {
			at(fmt.Sprintf("%s.locations[%d]", p, j), "%s", msg)
		} else if seen[l] {
			at(fmt.Sprintf("%s.locations[%d]", p, j), "location %q is listed twice", l)
		}
		seen[l] = true
	}
	switch {
	case tc.Quorum < 0:
		at(p+".quorum", "must not be negative, got %d", tc.Quorum)
	case len(tc.Locations) > 0 && tc.Quorum > len(tc.Locations):
		at(p+".quorum", "quorum %d is more than the %d locations listed: the target could never be down", tc.Quorum, len(tc.Locations))
	}
}
