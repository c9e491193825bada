package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// maxInflight bounds the asynchronous publishes awaiting their acknowledgement.
const maxInflight = 4096

// outMsg is one encoded result on its way to the stream. id is its JetStream message
// ID, so that a result sent again after a lost acknowledgement is stored once.
type outMsg struct {
	id   string
	data []byte
}

type inflight struct {
	m   outMsg
	fut jetstream.PubAckFuture
}

// fifo is a bounded queue that drops its oldest entry when full. Its zero value with
// max set is empty; it is guarded by Node.bufMu.
type fifo struct {
	max        int
	items      []outMsg // ring of capacity up to max
	head, size int
}

func (q *fifo) len() int { return q.size }

// push appends m and reports whether the oldest entry was dropped to make room.
func (q *fifo) push(m outMsg) (dropped bool) {
	if q.size == q.max {
		q.items[q.head] = m
		q.head = (q.head + 1) % q.max
		return true
	}
	if q.size == len(q.items) {
		grown := make([]outMsg, min(max(2*len(q.items), 64), q.max))
		for i := range q.size {
			grown[i] = q.items[(q.head+i)%len(q.items)]
		}
		q.items, q.head = grown, 0
	}
	q.items[(q.head+q.size)%len(q.items)] = m
	q.size++
	return false
}

// pop removes and returns up to k entries from the front.
func (q *fifo) pop(k int) []outMsg {
	k = min(k, q.size)
	out := make([]outMsg, k)
	for i := range k {
		out[i] = q.items[q.head]
		q.items[q.head] = outMsg{}
		q.head = (q.head + 1) % len(q.items)
	}
	q.size -= k
	return out
}

// pushFront puts ms back at the front in their order; what does not fit is dropped,
// oldest first, and counted.
func (q *fifo) pushFront(ms []outMsg) (dropped int) {
	for i := len(ms) - 1; i >= 0; i-- {
		if q.size == q.max {
			return i + 1
		}
		if q.size == len(q.items) {
			q.push(outMsg{}) // grow, then undo the placeholder
			q.size--
		}
		q.head = (q.head - 1 + len(q.items)) % len(q.items)
		q.items[q.head] = ms[i]
		q.size++
	}
	return 0
}

func (n *Node) bufLen() int {
	n.bufMu.Lock()
	defer n.bufMu.Unlock()
	return n.buf.len()
}

// keep puts m at the end of the local buffer.
func (n *Node) keep(m outMsg) {
	n.bufMu.Lock()
	dropped := n.buf.push(m)
	n.bufMu.Unlock()
	if dropped {
		n.dropped.Add(1)
	}
}

// Publish sends r to the stream on subject "<prefix>.results.<location>", after filling
// in Member, Location and Epoch. It does not wait for the acknowledgement: a result that
// cannot be sent now (disconnected, or the publish fails) waits in a bounded buffer that
// is flushed after a reconnect; when the buffer is full its oldest result is dropped and
// counted. Results of one node keep their order unless a publish fails. Publish waits at
// most about 100ms and returns an error only after Close or for r that cannot be encoded.
func (n *Node) Publish(r Result) error {
	n.mu.Lock()
	closed, ready := n.closed, n.ready
	r.Member, r.Location, r.Epoch = n.self.ID, n.self.Location, n.epoch
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("cluster: encode result of %s: %w", r.Target, err)
	}
	m := outMsg{id: n.self.ID + "." + n.boot + "." + strconv.FormatUint(n.seq.Add(1), 10), data: data}

	n.bufMu.Lock()
	if !ready || n.flushing || n.buf.len() > 0 || !n.nc.IsConnected() {
		dropped := n.buf.push(m)
		n.bufMu.Unlock()
		if dropped {
			n.dropped.Add(1)
		}
		return nil
	}
	n.bufMu.Unlock()
	fut, err := n.send(m, 100*time.Millisecond)
	if err != nil {
		n.keep(m)
		return nil
	}
	select {
	case n.pending <- inflight{m: m, fut: fut}:
	default:
		// More in flight than tracked: keep a copy; its message ID makes a second
		// arrival a duplicate the server drops.
		n.keep(m)
	}
	return nil
}

func (n *Node) send(m outMsg, stall time.Duration) (jetstream.PubAckFuture, error) {
	msg := &nats.Msg{Subject: n.subject, Data: m.data}
	return n.js.PublishMsgAsync(msg, jetstream.WithMsgID(m.id), jetstream.WithStallWait(stall))
}

// acker counts acknowledged publishes and buffers the failed ones.
func (n *Node) acker() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case p := <-n.pending:
			select {
			case <-p.fut.Ok():
				n.published.Add(1)
			case err := <-p.fut.Err():
				n.log.Debug("cluster publish failed; buffering", "err", err)
				n.keep(p.m)
				n.signal(n.flushReq)
			case <-n.ctx.Done():
				return
			}
		}
	}
}

// flusher sends the buffer when asked, while connected.
func (n *Node) flusher() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.flushReq:
			n.flushOnce(n.ctx)
		}
	}
}

// flushOnce sends buffered results in order, in batches, until the buffer is empty, a
// batch fails, or ctx ends. Meanwhile new results queue behind the buffered ones.
func (n *Node) flushOnce(ctx context.Context) {
	n.bufMu.Lock()
	if n.flushing {
		n.bufMu.Unlock()
		return
	}
	n.flushing = true
	n.bufMu.Unlock()
	defer func() {
		n.bufMu.Lock()
		n.flushing = false
		n.bufMu.Unlock()
	}()
	for ctx.Err() == nil && n.nc.IsConnected() {
		n.mu.Lock()
		ready := n.ready
		n.mu.Unlock()
		if !ready {
			return
		}
		n.bufMu.Lock()
		batch := n.buf.pop(256)
		n.bufMu.Unlock()
		if len(batch) == 0 {
			return
		}
		futs := make([]jetstream.PubAckFuture, 0, len(batch))
		for _, m := range batch {
			f, err := n.send(m, time.Second)
			if err != nil {
				break
			}
			futs = append(futs, f)
		}
		var failed []outMsg
		for i, m := range batch {
			if i >= len(futs) {
				failed = append(failed, m)
				continue
			}
			select {
			case <-futs[i].Ok():
				n.published.Add(1)
			case <-futs[i].Err():
				failed = append(failed, m)
			case <-ctx.Done():
				failed = append(failed, m)
			}
		}
		if len(failed) > 0 {
			n.bufMu.Lock()
			d := n.buf.pushFront(failed)
			n.bufMu.Unlock()
			n.dropped.Add(uint64(d))
			return
		}
	}
}
