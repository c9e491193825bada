package cluster

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// Timings of the tests: short, so that expiries happen in a test's time.
const (
	testHB  = 250 * time.Millisecond
	testTTL = 2 * time.Second
)

// natsServer is an in-process NATS server with JetStream (testsvc's).
type natsServer = testsvc.NATSServer

// startServer starts one JetStream server with its store in a temporary directory.
func startServer(t *testing.T) *natsServer { return testsvc.NATS(t) }

// startCluster starts a real 3-node JetStream cluster on loopback ports and waits for
// its meta leader.
func startCluster(t *testing.T) []*natsServer { return testsvc.NATSCluster(t, 3) }

func urls(ss []*natsServer) string { return testsvc.NATSURLs(ss) }

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
