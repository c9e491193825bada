package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestServerLoss shuts down the NATS server the alerting leader is connected to, in a
// real 3-node cluster with replicated buckets and stream: the members reconnect to the
// others, one leader holds the lease, and its consumer goes on receiving results.
func TestServerLoss(t *testing.T) {
	srv := startCluster(t)
	var nodes []*Node
	for i := range 3 {
		nodes = append(nodes, join(t, Config{URL: urls(srv), Name: fmt.Sprintf("f%d", i+1), Replicas: 3}))
	}
	waitReady(t, nodes...)

	var mu sync.Mutex
	got := map[string]bool{}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	for _, n := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Lead(ctx, func(ctx context.Context, token uint64) {
				_ = n.Consume(ctx, func(r Result) error {
					mu.Lock()
					got[r.Target] = true
					mu.Unlock()
					return nil
				})
			})
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	publish := func(round int) {
		for _, n := range nodes {
			for i := range 100 {
				if err := n.Publish(Result{Target: fmt.Sprintf("%d-%s-%d", round, n.ID(), i), Status: "up"}); err != nil {
					t.Fatalf("Publish: %v", err)
				}
			}
		}
	}
	waitFor(t, 20*time.Second, "a leader", func() bool { return len(leaders(nodes)) == 1 })
	publish(1)
	waitFor(t, 30*time.Second, "300 results consumed", func() bool { return count() == 300 })

	var leader *Node
	for _, n := range nodes {
		if n.IsLeader() {
			leader = n
		}
	}
	lost := leader.nc.ConnectedServerName()
	for _, s := range srv {
		if s.Server() != nil && s.Server().Name() == lost {
			s.Stop()
		}
	}
	t.Logf("stopped %s, the server of leader %s", lost, leader.ID())
	for _, n := range nodes {
		waitFor(t, 30*time.Second, n.ID()+" reconnected to another server", func() bool {
			return n.Connected() && n.nc.ConnectedServerName() != lost
		})
	}
	publish(2)
	d := waitFor(t, 60*time.Second, "600 results consumed after the server loss", func() bool { return count() == 600 })
	t.Logf("after the loss of a server, the results of the second round were all consumed in %s", d)
	if ls := leaders(nodes); len(ls) != 1 {
		t.Errorf("leaders after the server loss = %v, want one", ls)
	}
	for _, n := range nodes {
		// A member whose heartbeats stopped for a TTL while it reconnected was dropped;
		// it is back with its next heartbeat.
		waitFor(t, 15*time.Second, n.ID()+" seeing all 3 members after the server loss", func() bool { return len(n.Members()) == 3 })
		if s := n.Status(context.Background()); s.Buffered != 0 || s.Dropped != 0 {
			t.Errorf("%s: buffered %d, dropped %d; want 0, 0", n.ID(), s.Buffered, s.Dropped)
		}
	}
}
