package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Timings of the tests: short, so that expiries happen in a test's time.
const (
	testHB  = 250 * time.Millisecond
	testTTL = 2 * time.Second
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// natsServer is an in-process NATS server with JetStream on a loopback port.
type natsServer struct {
	opts *server.Options
	srv  *server.Server
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

func (s *natsServer) start(t *testing.T) {
	t.Helper()
	o := *s.opts
	srv, err := server.NewServer(&o)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats server %s not ready", s.url())
	}
	s.srv = srv
}

func (s *natsServer) stop() {
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// startServer starts one JetStream server with its store in a temporary directory.
func startServer(t *testing.T) *natsServer {
	t.Helper()
	s := &natsServer{opts: &server.Options{ServerName: "solo", Host: "127.0.0.1", Port: freePort(t),
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// startCluster starts a real 3-node JetStream cluster on loopback ports and waits for
// its meta leader.
func startCluster(t *testing.T) []*natsServer {
	t.Helper()
	const size = 3
	routes := make([]int, size)
	for i := range routes {
		routes[i] = freePort(t)
	}
	var all []*natsServer
	for i := range size {
		var rs []*url.URL
		for j, p := range routes {
			if j != i {
				rs = append(rs, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		all = append(all, &natsServer{opts: &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: freePort(t),
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "pp", Host: "127.0.0.1", Port: routes[i]},
			Routes:  rs,
		}})
	}
	for _, s := range all {
		s.start(t)
		t.Cleanup(s.stop)
	}
	waitFor(t, 30*time.Second, "a JetStream meta leader", func() bool {
		leader := false
		for _, s := range all {
			if s.srv.JetStreamIsLeader() {
				leader = true
			}
			if !s.srv.JetStreamIsCurrent() {
				return false
			}
		}
		return leader
	})
	return all
}

func urls(ss []*natsServer) string {
	var u []string
	for _, s := range ss {
		u = append(u, s.url())
	}
	return strings.Join(u, ",")
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// join starts a node with the test timings; Close runs at cleanup.
func join(t *testing.T, c Config) *Node {
	t.Helper()
	if os.Getenv("CLUSTER_DEBUG") != "" {
		c.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if c.Heartbeat == 0 {
		c.Heartbeat, c.TTL = testHB, testTTL
	}
	n, err := Join(context.Background(), c)
	if err != nil {
		t.Fatalf("join %s: %v", c.Name, err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

func waitReady(t *testing.T, nodes ...*Node) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, 30*time.Second, n.ID()+" ready", n.isReady)
	}
}

func memberIDs(ms []Member) string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}
