package cluster

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"
)

// TestMembershipOnCluster runs three members on a real 3-node JetStream cluster, each
// on its own server: a join shows everywhere within a heartbeat, a Close at once, a
// crash (heartbeats stop, the key is left behind) within TTL and a heartbeat.
func TestMembershipOnCluster(t *testing.T) {
	srv := startCluster(t)
	var nodes []*Node
	for i, s := range srv {
		loc := "eu-1"
		if i == 2 {
			loc = "us-1"
		}
		nodes = append(nodes, join(t, Config{URL: s.URL(), Name: fmt.Sprintf("m%d", i+1), Location: loc,
			Replicas: 3, Capacity: 100 * (i + 1), Version: "test"}))
		waitReady(t, nodes[i])
	}
	joined := time.Now() // the last member has announced itself
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.ID()+" seeing 3 members", func() bool { return len(n.Members()) == 3 })
		if since := time.Since(joined); since > testHB {
			t.Errorf("%s saw the third member %s after it announced itself, want within a heartbeat (%s)", n.ID(), since, testHB)
		}
	}
	want := "m1,m2,m3" // sorted by location (eu-1 < us-1), then ID
	for _, n := range nodes {
		if got := memberIDs(n.Members()); got != want {
			t.Errorf("%s sees %s, want %s", n.ID(), got, want)
		}
		if got := fmt.Sprint(n.Locations()); got != "[eu-1 us-1]" {
			t.Errorf("%s Locations() = %s", n.ID(), got)
		}
	}
	if m := nodes[0].Members()[2]; m.Capacity != 300 || m.Role != "serve" || m.Version != "test" || m.Started.IsZero() {
		t.Errorf("m3 as m1 sees it = %+v", m)
	}
	// Every member computes the same owner; each eu-1 target has exactly one eu-1 owner.
	for i := range 200 {
		key := fmt.Sprintf("target-%d", i)
		o := nodes[0].Owner("eu-1", key)
		owners := 0
		for _, n := range nodes {
			if n.Owner("eu-1", key) != o {
				t.Fatalf("members disagree on the owner of %s", key)
			}
			if n.Owns(key, []string{"eu-1"}) {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("%s has %d owners in eu-1, want 1", key, owners)
		}
		if !nodes[2].Owns(key, nil) || nodes[2].Owns(key, []string{"eu-1"}) {
			t.Fatalf("the only us-1 member must own %s for us-1 and not for eu-1 only", key)
		}
	}

	// The configuration document reaches every member.
	doc := []byte("targets: [tcp://127.0.0.1:5432]")
	if err := nodes[2].PutConfig(context.Background(), doc); err != nil {
		t.Fatalf("PutConfig: %v", err)
	}
	select {
	case <-nodes[0].ConfigChanges():
	case <-time.After(5 * time.Second):
		t.Fatal("no ConfigChanges signal on m1 within 5s")
	}
	if got := nodes[0].Config(); !bytes.Equal(got, doc) {
		t.Errorf("m1 Config() = %q, want %q", got, doc)
	}

	// Graceful leave: the others see it at once, through the watch.
	epoch := nodes[0].Epoch()
	drain(nodes[0].Changes())
	left := time.Now()
	if err := nodes[1].Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, n := range []*Node{nodes[0], nodes[2]} {
		waitFor(t, 5*time.Second, n.ID()+" seeing m2 leave", func() bool { return len(n.Members()) == 2 })
	}
	// At once: through the watch's delete, long before the key could expire (TTL) or
	// a missed renewal be noticed (TTL too); the time is mostly the replicated delete.
	if d := time.Since(left); d > testTTL/2 {
		t.Errorf("members saw a Close after %s, want at once (well under the TTL, %s)", d, testTTL)
	}
	t.Logf("a graceful leave was seen after %s", time.Since(left))
	if nodes[0].Epoch() <= epoch {
		t.Errorf("epoch stayed at %d after a member left", nodes[0].Epoch())
	}
	select {
	case <-nodes[0].Changes():
	default:
		t.Error("no Changes signal after a member left")
	}

	// Crash: heartbeats stop and the key stays until the bucket's MaxAge removes it.
	nodes[2].frozen.Store(true)
	d := waitFor(t, testTTL+5*time.Second, "m1 seeing m3 expire", func() bool { return len(nodes[0].Members()) == 1 })
	t.Logf("a crashed member disappeared after %s (TTL %s, heartbeat %s)", d, testTTL, testHB)
	if d > testTTL+2*testHB {
		t.Errorf("a crashed member disappeared after %s, want within TTL + a heartbeat (%s, plus one for a loaded machine)", d, testTTL+testHB)
	}
	if d < testTTL-2*testHB {
		t.Errorf("a crashed member disappeared after %s, before its TTL (%s)", d, testTTL)
	}
	// The crashed member, cut off from heartbeats, still counts itself in.
	if ms := nodes[2].Members(); len(ms) == 0 || memberIDs(ms) == "" {
		t.Errorf("a frozen member's view lost itself: %v", ms)
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
