package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config of one member. The zero value of every field but URL means its default; Join
// validates it and names the offending field in its error ("cluster.ttl: ...").
type Config struct {
	// URL is one or more NATS server URLs separated by commas
	// (nats://h:p[,nats://h:p...]). Required.
	URL string
	// Name is the member ID. The default is the host name followed by "-" and 6 random
	// hex digits. Letters, digits, '_', '-' and '.' only, not starting or ending with '.'.
	Name string
	// Location is where the member probes from; default "default"; same characters as Name.
	Location string
	// Role is "serve" or "agent" (the default is "serve").
	Role string
	// Capacity is how many targets the member would take; announced only (0 = unstated).
	Capacity int
	// Heartbeat is how often the member renews its key and its lease; default 2s.
	Heartbeat time.Duration
	// TTL is how long a member or a lease outlives its last renewal; default 10s; at
	// least twice Heartbeat.
	TTL time.Duration
	// Prefix names the JetStream objects: KV buckets "<prefix>_members", "<prefix>_leader",
	// "<prefix>_config", the stream "<PREFIX>_RESULTS" on subjects
	// "<prefix>.results.<location>" and the consumer "<prefix>_alerting". Default
	// "portpatrol"; letters, digits, '_' and '-' only.
	Prefix string
	// Replicas is the JetStream replica count of the buckets and the stream; 0 means 1.
	Replicas int
	// Buffer is how many results are kept while NATS is unreachable; default 100000. When
	// it is full the oldest result is dropped and counted.
	Buffer int
	// Logger receives connection and leadership events; nil discards them.
	Logger *slog.Logger
	// Version is announced with the member.
	Version string
}

const (
	defaultHeartbeat = 2 * time.Second
	defaultTTL       = 10 * time.Second
	defaultPrefix    = "portpatrol"
	defaultLocation  = "default"
	defaultBuffer    = 100000
	maxReplicas      = 5
)

// resolve returns c with its defaults filled in, or an error that names the first bad field.
func (c Config) resolve() (Config, error) {
	if strings.TrimSpace(c.URL) == "" {
		return c, fmt.Errorf("cluster.url: required (nats://host:port, several separated by commas)")
	}
	for _, u := range strings.Split(c.URL, ",") {
		u = strings.TrimSpace(u)
		p, err := url.Parse(u)
		if err != nil {
			return c, fmt.Errorf("cluster.url: %q: %w", u, err)
		}
		switch p.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return c, fmt.Errorf("cluster.url: %q: scheme %q, want nats, tls, ws or wss", u, p.Scheme)
		}
		if p.Host == "" {
			return c, fmt.Errorf("cluster.url: %q: no host", u)
		}
	}
	if c.Name == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "member"
		}
		c.Name = sanitize(host) + "-" + randomHex(3)
	}
	if err := checkName("cluster.name", c.Name, true); err != nil {
		return c, err
	}
	if c.Location == "" {
		c.Location = defaultLocation
	}
	if err := checkName("cluster.location", c.Location, true); err != nil {
		return c, err
	}
	switch c.Role {
	case "":
		c.Role = "serve"
	case "serve", "agent":
	default:
		return c, fmt.Errorf("cluster.role: %q; want serve or agent", c.Role)
	}
	if c.Capacity < 0 {
		return c, fmt.Errorf("cluster.capacity: %d is negative; 0 means unstated", c.Capacity)
	}
	switch {
	case c.Heartbeat < 0:
		return c, fmt.Errorf("cluster.heartbeat: %s is negative", c.Heartbeat)
	case c.Heartbeat == 0:
		c.Heartbeat = defaultHeartbeat
	case c.Heartbeat < 10*time.Millisecond:
		return c, fmt.Errorf("cluster.heartbeat: %s is shorter than 10ms", c.Heartbeat)
	}
	switch {
	case c.TTL < 0:
		return c, fmt.Errorf("cluster.ttl: %s is negative", c.TTL)
	case c.TTL == 0:
		c.TTL = defaultTTL
	}
	if c.TTL < 2*c.Heartbeat {
		return c, fmt.Errorf("cluster.ttl: %s is shorter than twice cluster.heartbeat (%s); a member would expire between two heartbeats", c.TTL, c.Heartbeat)
	}
	if c.TTL < 100*time.Millisecond {
		return c, fmt.Errorf("cluster.ttl: %s is shorter than 100ms, the least JetStream keeps", c.TTL)
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if err := checkName("cluster.prefix", c.Prefix, false); err != nil {
		return c, err
	}
	switch {
	case c.Replicas < 0 || c.Replicas > maxReplicas:
		return c, fmt.Errorf("cluster.replicas: %d; want 1 to %d (0 means 1)", c.Replicas, maxReplicas)
	case c.Replicas == 0:
		c.Replicas = 1
	}
	switch {
	case c.Buffer < 0:
		return c, fmt.Errorf("cluster.buffer: %d is negative", c.Buffer)
	case c.Buffer == 0:
		c.Buffer = defaultBuffer
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// checkName reports whether s uses only letters, digits, '_', '-' and, when dots is
// set, '.' (neither first, last nor doubled: it separates subject tokens).
func checkName(field, s string, dots bool) error {
	allowed := "letters, digits, '_' and '-'"
	if dots {
		allowed = "letters, digits, '_', '-' and '.'"
	}
	if len(s) > 128 {
		return fmt.Errorf("%s: %q is longer than 128 characters", field, s)
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
		case r == '.' && dots:
		default:
			return fmt.Errorf("%s: %q has %q; use %s only", field, s, r, allowed)
		}
	}
	if dots && (strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..")) {
		return fmt.Errorf("%s: %q: a '.' may not start, end or follow another '.'", field, s)
	}
	return nil
}

// sanitize keeps the characters a member name may have and replaces the others by '-'.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			b[i] = '-'
		}
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}
