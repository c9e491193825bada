package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestJoinRejectsBadConfig(t *testing.T) {
	ok := Config{URL: "nats://127.0.0.1:1"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "cluster.url: required"},
		{"bad scheme", func(c *Config) { c.URL = "http://127.0.0.1:4222" }, "cluster.url:"},
		{"second url bad", func(c *Config) { c.URL = "nats://127.0.0.1:4222,nats://" }, "cluster.url:"},
		{"name charset", func(c *Config) { c.Name = "a b" }, "cluster.name:"},
		{"name dot at end", func(c *Config) { c.Name = "a." }, "cluster.name:"},
		{"location charset", func(c *Config) { c.Location = "eu/1" }, "cluster.location:"},
		{"role", func(c *Config) { c.Role = "probe" }, "cluster.role:"},
		{"capacity", func(c *Config) { c.Capacity = -1 }, "cluster.capacity:"},
		{"heartbeat", func(c *Config) { c.Heartbeat = -time.Second }, "cluster.heartbeat:"},
		{"ttl below two heartbeats", func(c *Config) { c.Heartbeat, c.TTL = 2*time.Second, 3*time.Second }, "cluster.ttl:"},
		{"ttl below default two heartbeats", func(c *Config) { c.TTL = 3 * time.Second }, "cluster.ttl:"},
		{"prefix with dot", func(c *Config) { c.Prefix = "a.b" }, "cluster.prefix:"},
		{"replicas", func(c *Config) { c.Replicas = 7 }, "cluster.replicas:"},
		{"buffer", func(c *Config) { c.Buffer = -1 }, "cluster.buffer:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			n, err := Join(context.Background(), c)
			if err == nil {
				n.Close()
				t.Fatalf("Join accepted %+v", c)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want it to start with %q", err, tt.want)
			}
		})
	}
}

func TestJoinDefaults(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent()) // Close ends every goroutine of the node
	// Nothing listens on port 1: Join must still return at once, with the defaults set.
	start := time.Now()
	n, err := Join(context.Background(), Config{URL: "nats://127.0.0.1:1"})
	if err != nil {
		t.Fatalf("Join with NATS unreachable: %v", err)
	}
	defer n.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Join took %s with NATS unreachable, want it to return at once", d)
	}
	c := n.cfg
	if c.Location != "default" || c.Role != "serve" || c.Heartbeat != 2*time.Second ||
		c.TTL != 10*time.Second || c.Prefix != "portpatrol" || c.Replicas != 1 || c.Buffer != 100000 {
		t.Errorf("defaults = %+v", c)
	}
	if err := checkName("name", n.ID(), true); err != nil || len(n.ID()) < 8 {
		t.Errorf("default name %q: %v", n.ID(), err)
	}
	if n.Connected() {
		t.Error("Connected() = true with nothing listening")
	}
	if ms := n.Members(); len(ms) != 1 || ms[0].ID != n.ID() {
		t.Errorf("Members() while disconnected = %v, want self only", ms)
	}
	if !n.Owns("any-target", nil) || n.Owns("any-target", []string{"elsewhere"}) {
		t.Error("a lone member must own every target of its location and none of another's")
	}
	if err := n.Publish(Result{Target: "t"}); err != nil {
		t.Errorf("Publish while disconnected: %v", err)
	}
	if s := n.Status(context.Background()); s.Buffered != 1 || s.Connected {
		t.Errorf("Status while disconnected = %+v, want one buffered result", s)
	}
	n.Close()
	if err := n.Publish(Result{Target: "t"}); err != ErrClosed {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
}

func TestFIFO(t *testing.T) {
	q := fifo{max: 3}
	var dropped int
	for i := range 5 {
		if q.push(outMsg{id: string(rune('a' + i))}) {
			dropped++
		}
	}
	if dropped != 2 || q.len() != 3 {
		t.Fatalf("after 5 pushes into 3: dropped %d, len %d; want 2, 3", dropped, q.len())
	}
	got := q.pop(2)
	if got[0].id != "c" || got[1].id != "d" {
		t.Fatalf("pop = %v, want c, d (oldest dropped first)", got)
	}
	q.push(outMsg{id: "f"})
	if d := q.pushFront(got); d != 1 {
		t.Fatalf("pushFront of 2 into 1 free slot dropped %d, want 1", d)
	}
	var ids string
	for _, m := range q.pop(10) {
		ids += m.id
	}
	if ids != "def" {
		t.Errorf("order = %q, want def", ids)
	}
}
