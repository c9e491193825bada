package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

// collector of delivered results for the tests.
type delivered struct {
	mu   sync.Mutex
	seqs []uint64
	rs   []Result
}

func (d *delivered) add(r Result) {
	d.mu.Lock()
	d.seqs = append(d.seqs, r.Seq)
	d.rs = append(d.rs, r)
	d.mu.Unlock()
}

func (d *delivered) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.rs)
}

func result(i int) Result {
	return Result{Target: fmt.Sprintf("t%d", i), Status: "up", Result: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
}

func index(t *testing.T, r Result) int {
	t.Helper()
	var v struct{ I int }
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("result payload %s: %v", r.Result, err)
	}
	return v.I
}

func TestPublishConsume(t *testing.T) {
	srv := startServer(t)
	var nodes []*Node
	for i := range 3 {
		nodes = append(nodes, join(t, Config{URL: srv.URL(), Name: fmt.Sprintf("p%d", i+1), Location: fmt.Sprintf("loc-%d", i%2)}))
	}
	waitReady(t, nodes...)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, "3 members", func() bool { return len(n.Members()) == 3 })
	}

	const total = 1000
	var pub sync.WaitGroup
	for i, n := range nodes {
		pub.Add(1)
		go func() {
			defer pub.Done()
			for k := i; k < total; k += len(nodes) {
				if err := n.Publish(result(k)); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		}()
	}
	pub.Wait()

	var got delivered
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- nodes[0].Consume(ctx, func(r Result) error {
			got.add(r)
			if got.len() == total {
				cancel()
			}
			return nil
		})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Consume: %v", err)
		}
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatalf("consumed %d of %d within 30s", got.len(), total)
	}
	last := map[string]int{}
	seen := map[int]bool{}
	var prevSeq uint64
	for _, r := range got.rs {
		i := index(t, r)
		want := nodes[i%len(nodes)]
		if r.Member != want.ID() || r.Location != want.Location() || r.Epoch == 0 {
			t.Fatalf("result %d: member %q location %q epoch %d, want %s in %s with an epoch", i, r.Member, r.Location, r.Epoch, want.ID(), want.Location())
		}
		if p, ok := last[r.Member]; ok && i <= p {
			t.Fatalf("from %s: result %d after %d; want publisher order", r.Member, i, p)
		}
		if r.Seq <= prevSeq {
			t.Fatalf("stream sequence %d after %d; want stream order", r.Seq, prevSeq)
		}
		last[r.Member], seen[i], prevSeq = i, true, r.Seq
	}
	if len(seen) != total {
		t.Fatalf("%d distinct results, want %d", len(seen), total)
	}
	var published uint64
	for _, n := range nodes {
		s := n.Status(context.Background())
		published += s.Published
		if s.Dropped != 0 || s.Buffered != 0 {
			t.Errorf("%s: dropped %d, buffered %d; want 0, 0", n.ID(), s.Dropped, s.Buffered)
		}
	}
	if published != total {
		t.Errorf("published %d, want %d", published, total)
	}
	if s := nodes[1].Status(context.Background()); s.Lag != 0 {
		t.Errorf("lag after consuming all = %d, want 0", s.Lag)
	}
}

func TestConsumeResumes(t *testing.T) {
	srv := startServer(t)
	n := join(t, Config{URL: srv.URL(), Name: "r1"})
	waitReady(t, n)
	const total = 1000
	for i := range total {
		if err := n.Publish(result(i)); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	waitFor(t, 20*time.Second, "all published", func() bool { return n.Status(context.Background()).Published == total })
	if lag := n.Status(context.Background()).Lag; lag != 0 {
		// The consumer does not exist before the first Consume.
		t.Logf("lag before the first consumer: %d", lag)
	}

	// The first consumer stops after acknowledging 500.
	var first delivered
	ctx, cancel := context.WithCancel(context.Background())
	if err := n.Consume(ctx, func(r Result) error {
		first.add(r)
		if first.len() == 500 {
			cancel()
		}
		return nil
	}); err != nil {
		t.Fatalf("Consume: %v", err)
	}
	for k, seq := range first.seqs {
		if seq != uint64(k+1) {
			t.Fatalf("first consumer: delivery %d has sequence %d, want %d", k, seq, k+1)
		}
	}
	// The server settles the given-back rest of the last batch a moment later.
	var lag uint64
	deadline := time.Now().Add(10 * time.Second)
	for lag = n.Status(context.Background()).Lag; lag != total-500 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		lag = n.Status(context.Background()).Lag
	}
	if lag != total-500 {
		t.Errorf("lag after acknowledging 500 = %d, want %d", lag, total-500)
	}

	// A new consumer resumes at 501.
	var second delivered
	ctx, cancel = context.WithCancel(context.Background())
	if err := n.Consume(ctx, func(r Result) error {
		second.add(r)
		if second.len() == total-500 {
			cancel()
		}
		return nil
	}); err != nil {
		t.Fatalf("second Consume: %v", err)
	}
	for k, seq := range second.seqs {
		if seq != uint64(501+k) {
			t.Fatalf("second consumer: delivery %d has sequence %d, want %d", k, seq, 501+k)
		}
	}

	// A result its handler refuses comes again.
	if err := n.Publish(result(total)); err != nil {
		t.Fatal(err)
	}
	var third delivered
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = n.Consume(ctx, func(r Result) error {
		third.add(r)
		if third.len() == 1 {
			return fmt.Errorf("store unavailable")
		}
		cancel()
		return nil
	})
	if third.len() != 2 || third.seqs[0] != total+1 || third.seqs[1] != total+1 {
		t.Errorf("a refused result: deliveries %v, want [%d %d]", third.seqs, total+1, total+1)
	}
	waitFor(t, 5*time.Second, "lag 0", func() bool { return n.Status(context.Background()).Lag == 0 })
}

// TestBufferWhileDisconnected stops the NATS server, publishes, and restarts it on the
// same port and store: buffered results arrive, the overflow is counted.
func TestBufferWhileDisconnected(t *testing.T) {
	for _, tc := range []struct {
		buffer, arrive int
		dropped        uint64
	}{{buffer: 100, arrive: 50}, {buffer: 10, arrive: 10, dropped: 40}} {
		t.Run(fmt.Sprintf("buffer=%d", tc.buffer), func(t *testing.T) {
			srv := startServer(t)
			n := join(t, Config{URL: srv.URL(), Name: "b1", Buffer: tc.buffer})
			waitReady(t, n)
			srv.Stop()
			waitFor(t, 10*time.Second, "the disconnect", func() bool { return !n.Connected() })
			for i := range 50 {
				if err := n.Publish(result(i)); err != nil {
					t.Fatalf("Publish while disconnected: %v", err)
				}
			}
			s := n.Status(context.Background())
			if s.Buffered != tc.arrive || s.Dropped != tc.dropped || s.Connected {
				t.Fatalf("while disconnected: buffered %d, dropped %d, connected %v; want %d, %d, false",
					s.Buffered, s.Dropped, s.Connected, tc.arrive, tc.dropped)
			}
			if ms := n.Members(); len(ms) != 1 || ms[0].ID != "b1" {
				t.Errorf("members while disconnected = %v, want self", ms)
			}
			srv.Start(t)
			waitFor(t, 20*time.Second, "the buffer flushed", func() bool {
				s := n.Status(context.Background())
				return s.Buffered == 0 && s.Published == uint64(tc.arrive)
			})
			var got delivered
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = n.Consume(ctx, func(r Result) error {
				got.add(r)
				if got.len() == tc.arrive {
					cancel()
				}
				return nil
			})
			if got.len() != tc.arrive {
				t.Fatalf("consumed %d, want %d", got.len(), tc.arrive)
			}
			for k, r := range got.rs {
				// The oldest were dropped: the newest arrive, in order.
				if want := 50 - tc.arrive + k; index(t, r) != want {
					t.Errorf("result %d is %d, want %d", k, index(t, r), want)
				}
			}
		})
	}
}
