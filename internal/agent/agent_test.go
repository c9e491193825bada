package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/portpatrol/portpatrol/internal/cluster"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

func TestShareTakesOnlyThisMembersTargetsOfItsLocation(t *testing.T) {
	var b strings.Builder
	b.WriteString("targets:\n")
	for i := range 60 {
		fmt.Fprintf(&b, "  - url: tcp://127.0.0.1:%d\n", 20000+i)
	}
	b.WriteString("  - url: tcp://127.0.0.1:30000\n    locations: [eu]\n")
	cfg, err := config.Parse([]byte(b.String()), "doc")
	if err != nil {
		t.Fatal(err)
	}
	members := []cluster.Member{{ID: "a1", Location: "us", Role: "agent"}, {ID: "a2", Location: "us", Role: "agent"},
		{ID: "s1", Location: "eu", Role: "serve"}}
	seen := map[string]string{}
	for _, self := range []string{"a1", "a2"} {
		jobs, err := Share(cfg, members, self, "us", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			if prev, dup := seen[j.ID]; dup {
				t.Errorf("%s taken by %s and %s", j.ID, prev, self)
			}
			seen[j.ID] = self
			if j.ID == "tcp://127.0.0.1:30000" {
				t.Errorf("%s took a target that only eu watches", self)
			}
			if owner := cluster.OwnerOf(members, "us", j.ID); owner != self {
				t.Errorf("%s took %s, which %s owns", self, j.ID, owner)
			}
		}
		if len(jobs) < 15 {
			t.Errorf("%s took %d of 60 targets, a lopsided share", self, len(jobs))
		}
	}
	if len(seen) != 60 {
		t.Errorf("the two agents took %d of the 60 targets us watches", len(seen))
	}
}

// An agent takes its targets from the cluster, probes its share and sends the results
// to the stream; it needs no store and no configuration file of its own.
func TestAgentProbesWhatTheClusterGivesIt(t *testing.T) {
	srv := testsvc.NATS(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := testsvc.Listen(t)
	closed := testsvc.ClosedPort(t)
	cc := cluster.Config{URL: srv.URL(), Name: "lead", Location: "eu", Heartbeat: 200 * time.Millisecond, TTL: time.Second}
	leader, err := cluster.Join(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var mu sync.Mutex
	got := map[string]string{}
	if _, err := nc.Subscribe("portpatrol.results.us", func(m *nats.Msg) {
		var r struct {
			Member, Target, Status string
			Result                 json.RawMessage
		}
		if json.Unmarshal(m.Data, &r) == nil && r.Member == "ag" {
			mu.Lock()
			got[r.Target] = r.Status
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	a, err := New(ctx, Config{Cluster: cluster.Config{URL: srv.URL(), Name: "ag", Location: "us", Heartbeat: 200 * time.Millisecond, TTL: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	doc := fmt.Sprintf("defaults: {interval: 250ms, timeout: 200ms, failure_threshold: 1}\ntargets:\n  - url: tcp://%s\n  - url: tcp://%s\n  - url: tcp://127.0.0.1:9\n    locations: [eu]\n", open, closed)
	deadline := time.Now().Add(20 * time.Second)
	for leader.PutConfig(ctx, []byte(doc)) != nil && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	want := map[string]string{"tcp://" + open: "up", "tcp://" + closed: "down"}
	for {
		mu.Lock()
		ok := got["tcp://"+open] == "up" && got["tcp://"+closed] == "down"
		snapshot := fmt.Sprint(got)
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("results from the agent: %s, want %v", snapshot, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	if _, probed := got["tcp://127.0.0.1:9"]; probed {
		t.Error("the agent probed a target only eu watches")
	}
	mu.Unlock()
	if owned, targets := a.Owned(); owned != 2 || targets != 3 {
		t.Errorf("owned %d of %d, want 2 of 3", owned, targets)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run: %v", err)
	}
}
