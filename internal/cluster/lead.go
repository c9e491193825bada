package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lead campaigns for the alerting lease, the key "alerting" in the bucket
// "<prefix>_leader" whose entries expire TTL after their last write. It creates the key
// when it is absent and, once it holds it, renews it every Heartbeat with an update
// that succeeds only if nobody wrote the key since. On winning it calls elected in a
// new goroutine with the fencing token (the key's revision at acquisition, larger for
// every new term) and a context that is cancelled the moment leadership is lost: a
// renewal finds the key changed, or no renewal succeeded for half the TTL (so an old
// leader stops at least TTL/2 before its key expires and a successor can win), or
// ctx ends (then the key is deleted so that a successor wins at once). Lead returns when
// ctx ends or the node is closed.
func (n *Node) Lead(ctx context.Context, elected func(ctx context.Context, token uint64)) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	n.leadWG.Add(1)
	n.mu.Unlock()
	defer n.leadWG.Done()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-n.leadCtx.Done():
			stop()
		case <-ctx.Done():
		}
	}()
	hb := n.cfg.Heartbeat
	for ctx.Err() == nil {
		n.mu.Lock()
		kv := n.leaderKV
		n.mu.Unlock()
		if kv != nil && !n.frozen.Load() && n.nc.IsConnected() {
			n.term(ctx, kv, elected)
		}
		select {
		case <-ctx.Done():
		case <-n.leaseGone:
		case <-time.After(hb):
		}
	}
}

// term tries to take the lease and, when it does, holds it until it is lost or ctx ends.
func (n *Node) term(ctx context.Context, kv jetstream.KeyValue, elected func(context.Context, uint64)) {
	hb, ttl := n.cfg.Heartbeat, n.cfg.TTL
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, hb)
	token, err := kv.Create(cctx, leaseKey, n.leaseValue(0))
	cancel()
	if err != nil {
		return // held by another, or unreachable
	}
	lastOK := start // the key expires TTL after its write, which is after start
	// Half the TTL without a renewal ends the term: the old leader has stopped (its
	// ticks, saves and sends) for at least TTL/2 when a successor can win.
	deadline := func() time.Time { return lastOK.Add(ttl / 2) }
	// The first renewal records the token in the value, for the others to show.
	last := token
	rctx, cancel := context.WithDeadline(ctx, deadline())
	s := time.Now()
	if rev, err := kv.Update(rctx, leaseKey, n.leaseValue(token), last); err == nil {
		last, lastOK = rev, s
	} else if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		cancel()
		return
	}
	cancel()
	if ctx.Err() != nil || time.Now().After(deadline()) {
		n.release(kv, last)
		return
	}

	n.mu.Lock()
	n.leading, n.leader, n.token = true, n.self.ID, token
	n.mu.Unlock()
	n.log.Info("cluster: elected alerting leader", "token", token)
	lctx, lose := context.WithCancel(ctx)
	go elected(lctx, token)

	timer := time.NewTimer(time.Until(deadline()))
	defer timer.Stop()
	tick := time.NewTicker(hb)
	defer tick.Stop()
	reason := ""
	for reason == "" {
		select {
		case <-ctx.Done():
			lose()
			n.release(kv, last)
			reason = "stepped down"
		case <-timer.C:
			reason = "no renewal for half the TTL"
		case <-tick.C:
			if n.frozen.Load() {
				continue
			}
			s := time.Now()
			rctx, cancel := context.WithDeadline(ctx, deadline())
			rev, err := kv.Update(rctx, leaseKey, n.leaseValue(token), last)
			cancel()
			switch {
			case err == nil:
				last, lastOK = rev, s
				timer.Reset(time.Until(deadline()))
			case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyNotFound):
				reason = "lease taken or expired"
			}
		}
	}
	lose()
	n.mu.Lock()
	n.leading, n.leader, n.token = false, "", 0
	n.mu.Unlock()
	n.log.Info("cluster: alerting leadership ended", "token", token, "reason", reason)
}

// release deletes the lease if it is still the revision this node wrote last.
func (n *Node) release(kv jetstream.KeyValue, last uint64) {
	if n.frozen.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := kv.Delete(ctx, leaseKey, jetstream.LastRevision(last)); err != nil {
		n.log.Debug("cluster: lease not released; it expires", "err", err)
	}
}

func (n *Node) leaseValue(token uint64) []byte {
	b, _ := json.Marshal(lease{ID: n.self.ID, Token: token})
	return b
}
