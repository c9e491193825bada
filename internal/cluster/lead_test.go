package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// term records one election: who, its token, when elected and when its context ended.
type term struct {
	id           string
	token        uint64
	elected, end time.Time
}

type terms struct {
	mu  sync.Mutex
	all []*term
}

func (ts *terms) campaign(ctx context.Context, n *Node) {
	n.Lead(ctx, func(ctx context.Context, token uint64) {
		tm := &term{id: n.ID(), token: token, elected: time.Now()}
		ts.mu.Lock()
		ts.all = append(ts.all, tm)
		ts.mu.Unlock()
		<-ctx.Done()
		ts.mu.Lock()
		tm.end = time.Now()
		ts.mu.Unlock()
	})
}

func (ts *terms) snapshot() []term {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var out []term
	for _, t := range ts.all {
		out = append(out, *t)
	}
	return out
}

func leaders(nodes []*Node) []string {
	var ids []string
	for _, n := range nodes {
		if n.IsLeader() {
			ids = append(ids, n.ID())
		}
	}
	return ids
}

func TestLeadOnCluster(t *testing.T) {
	srv := startCluster(t)
	var nodes []*Node
	ctxs := map[string]context.CancelFunc{}
	var ts terms
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the cancels registered below
	for i, s := range srv {
		n := join(t, Config{URL: s.URL(), Name: fmt.Sprintf("l%d", i+1), Replicas: 3})
		nodes = append(nodes, n)
	}
	waitReady(t, nodes...)
	for _, n := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[n.ID()] = cancel
		t.Cleanup(cancel)
		wg.Add(1)
		go func() { defer wg.Done(); ts.campaign(ctx, n) }()
	}
	waitFor(t, 10*time.Second, "a leader", func() bool { return len(leaders(nodes)) == 1 })
	// Exactly one, for a while.
	for range 8 {
		if ls := leaders(nodes); len(ls) != 1 {
			t.Fatalf("leaders = %v, want exactly one", ls)
		}
		time.Sleep(testHB / 2)
	}
	first := ts.snapshot()
	if len(first) != 1 {
		t.Fatalf("%d terms, want 1: %+v", len(first), first)
	}
	old := first[0]
	for _, n := range nodes {
		if n.ID() == old.id {
			continue
		}
		waitFor(t, 5*time.Second, n.ID()+" knowing the leader", func() bool {
			id, tok := n.Leader()
			return id == old.id && tok == old.token
		})
	}

	// Metrics of the leader.
	var leader *Node
	for _, n := range nodes {
		if n.ID() == old.id {
			leader = n
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(leader.Collector())
	want := fmt.Sprintf(`
# HELP portpatrol_cluster_leader 1 when this node is the alerting leader, else 0.
# TYPE portpatrol_cluster_leader gauge
portpatrol_cluster_leader 1
# HELP portpatrol_cluster_members Live cluster members seen by this node, by location.
# TYPE portpatrol_cluster_members gauge
portpatrol_cluster_members{location="default"} %d
# HELP portpatrol_cluster_connected 1 when connected to NATS, else 0.
# TYPE portpatrol_cluster_connected gauge
portpatrol_cluster_connected 1
`, len(leader.Members()))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"portpatrol_cluster_leader", "portpatrol_cluster_members", "portpatrol_cluster_connected"); err != nil {
		t.Errorf("metrics: %v", err)
	}

	// Crash: the leader stops renewing and does not delete the lease.
	crashed := time.Now()
	leader.frozen.Store(true)
	waitFor(t, testTTL+10*time.Second, "a new leader after a crash", func() bool { return len(ts.snapshot()) == 2 })
	all := ts.snapshot()
	old, next := all[0], all[1]
	t.Logf("crash of %s: its term ended after %s, %s took over after %s (TTL %s, heartbeat %s)",
		old.id, old.end.Sub(crashed), next.id, next.elected.Sub(crashed), testTTL, testHB)
	if old.end.IsZero() || !old.end.Before(next.elected) {
		t.Errorf("old term ended at %v, new began at %v: want the old cancelled before the new elected", old.end, next.elected)
	}
	if next.token <= old.token {
		t.Errorf("new token %d, old %d: want a larger token", next.token, old.token)
	}
	if next.id == old.id {
		t.Errorf("the crashed member %s won again", old.id)
	}
	if d := next.elected.Sub(crashed); d < testTTL-testHB {
		t.Errorf("a successor won %s after the crash, before the lease could expire (TTL %s)", d, testTTL)
	}

	// Graceful: the leader's Lead ends; a successor wins at once.
	var third *Node
	for _, n := range nodes {
		if n.ID() != old.id && n.ID() != next.id {
			third = n
		}
	}
	stepped := time.Now()
	ctxs[next.id]()
	waitFor(t, 10*time.Second, "a successor after a step-down", func() bool { return len(ts.snapshot()) == 3 })
	all = ts.snapshot()
	if all[2].id != third.ID() || all[2].token <= next.token {
		t.Errorf("after the step-down: %+v, want %s with a token above %d", all[2], third.ID(), next.token)
	}
	if d := all[2].elected.Sub(stepped); d > testTTL/2 {
		t.Errorf("successor after a step-down took %s, want at once (well under the TTL %s)", d, testTTL)
	}
	t.Logf("a step-down handed over in %s", all[2].elected.Sub(stepped))
	if !all[1].end.Before(all[2].elected) {
		t.Errorf("the stepped-down term ended at %v, after the successor's election at %v", all[1].end, all[2].elected)
	}
}
