package kube

import (
	"context"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/portpatrol/portpatrol/internal/kube/clientset"
)

func TestLeaderHandsOverOnRelease(t *testing.T) {
	c := clientset.New(fake.NewClientset())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ls := newLeaders()
	run := func(id string) (context.CancelFunc, chan error) {
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		onStart, onStop := ls.callbacks(id)
		go func() {
			done <- RunLeader(rctx, LeaderConfig{Client: c, Namespace: "ns", Identity: id,
				LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 50 * time.Millisecond,
			}, onStart, onStop)
		}()
		return stop, done
	}

	stop1, done1 := run("one")
	if e := <-ls.events; e != (leaderEvent{"one", true}) {
		t.Fatalf("got %+v, want one to start leading", e)
	}
	stop2, done2 := run("two")
	defer func() {
		stop2()
		if err := <-done2; err != nil {
			t.Errorf("RunLeader two: %v", err)
		}
	}()
	select {
	case e := <-ls.events:
		t.Fatalf("got %+v while one holds the lease, want nothing", e)
	case <-time.After(500 * time.Millisecond):
	}
	l, err := c.GetLease(ctx, "ns", "portpatrol")
	if err != nil {
		t.Fatal(err)
	}
	if got := deref(l.Spec.HolderIdentity); got != "one" {
		t.Errorf("lease holder: got %q, want one", got)
	}

	// one stops: it releases the Lease, so two takes over well before the lease
	// duration would have run out.
	start := time.Now()
	stop1()
	if err := <-done1; err != nil {
		t.Errorf("RunLeader one: %v", err)
	}
	if e := <-ls.events; e != (leaderEvent{"one", false}) {
		t.Fatalf("got %+v, want one to stop leading", e)
	}
	if e := <-ls.events; e != (leaderEvent{"two", true}) {
		t.Fatalf("got %+v, want two to start leading", e)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("hand-over took %s, want well under the 2s lease duration", took)
	}
	if n := ls.maxLeaders(); n != 1 {
		t.Errorf("%d replicas led at once, want 1", n)
	}
}

func TestLeaderRejectsInconsistentDurations(t *testing.T) {
	c := clientset.New(fake.NewClientset())
	for _, tc := range []struct {
		name                  string
		lease, renew, retryPd time.Duration
	}{
		{"renew deadline not below lease duration", time.Second, time.Second, 100 * time.Millisecond},
		{"retry period too close to renew deadline", 3 * time.Second, time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := RunLeader(context.Background(), LeaderConfig{Client: c, Identity: "x",
				LeaseDuration: tc.lease, RenewDeadline: tc.renew, RetryPeriod: tc.retryPd}, nil, nil)
			if err == nil {
				t.Error("got nil error, want one")
			}
		})
	}
}
