package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// nakDelay is how long a result that its handler refused waits before it comes again.
const nakDelay = time.Second

// Consume feeds handle the results of the stream through the durable consumer
// "<prefix>_alerting" (explicit acknowledgement; a new consumer starts at the first
// result kept). It fetches in batches and calls handle in stream order, one result at
// a time; a nil error acknowledges the result, an error gives it back to the stream
// (with the rest of its batch) to come again after a second. Results are delivered at
// least once: one handled but not yet acknowledged when the leader dies comes again to
// the next. Consume survives reconnects and returns nil when ctx ends, ErrClosed when
// the node is closed. Only the alerting leader should call it.
func (n *Node) Consume(ctx context.Context, handle func(Result) error) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-n.ctx.Done():
			stop()
		case <-ctx.Done():
		}
	}()
	defer func() { _ = n.nc.FlushTimeout(time.Second) }() // send the last acknowledgements
	var cons jetstream.Consumer
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(min(n.cfg.Heartbeat, time.Second)):
		}
	}
	for {
		if ctx.Err() != nil {
			if n.ctx.Err() != nil {
				return ErrClosed
			}
			return nil
		}
		if cons == nil {
			c, err := n.consumer(ctx)
			if err != nil {
				n.log.Debug("cluster consumer not ready", "err", err)
				pause()
				continue
			}
			cons = c
		}
		batch, err := cons.Fetch(100, jetstream.FetchMaxWait(min(n.cfg.Heartbeat, time.Second)))
		if err != nil {
			cons = nil // recreated after a reconnect or a lost consumer
			pause()
			continue
		}
		refused := false
		for msg := range batch.Messages() {
			if refused || ctx.Err() != nil {
				if refused {
					_ = msg.NakWithDelay(nakDelay)
				} else {
					_ = msg.Nak()
				}
				continue
			}
			var r Result
			if err := json.Unmarshal(msg.Data(), &r); err != nil {
				n.log.Warn("cluster result undecodable; dropped", "subject", msg.Subject(), "err", err)
				_ = msg.Term()
				continue
			}
			if md, err := msg.Metadata(); err == nil {
				r.Seq = md.Sequence.Stream
			}
			if err := handle(r); err != nil {
				n.log.Debug("cluster result refused by its handler; it comes again", "seq", r.Seq, "err", err)
				_ = msg.NakWithDelay(nakDelay)
				refused = true
				continue
			}
			_ = msg.Ack()
		}
		if err := batch.Error(); err != nil && ctx.Err() == nil {
			cons = nil
		}
	}
}

func (n *Node) consumer(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return n.js.CreateOrUpdateConsumer(ctx, n.stream, jetstream.ConsumerConfig{
		Durable:       n.durable,
		Description:   "portpatrol alerting leader",
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// A result the previous leader read and did not acknowledge comes again after
		// this; the leader drops it when it has judged a newer one.
		AckWait:       max(2*n.cfg.TTL, 5*time.Second),
		MaxAckPending: 10000,
		Replicas:      n.cfg.Replicas,
	})
}
