//go:build linux

package scan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The SYN engine. Each round's jobs are split among the workers (one per core); a
// worker sends its SYNs in batches and, after each batch, reads whatever replies are
// queued — its own or another worker's — rather than leaving them to a reader blocked
// in epoll_wait, whose wake-up per reply would cost more than the reply itself. A
// SYN's sequence number is a keyed hash of the peer's address and port and the source
// port, so a reply is matched by its acknowledgement number alone, with no table of
// SYNs in flight: SYN-ACK means open, RST closed, silence past the timeout (after the
// retries) filtered. At most Concurrency SYNs wait for an answer at once, so that
// replies never outrun the raw socket's receive buffer; the next round goes out once
// every SYN of this one has been answered or has timed out, and waits twice as long.

// synSendBatch is how many SYNs go out with one system call; the replies queued
// meanwhile are read after each batch.
const synSendBatch = 32

const (
	tcpRST    = 0x04
	tcpSYNACK = 0x12
)

type synEngine struct {
	cfg   engineConfig
	sock  SYNSocket
	hosts []netip.Addr
	ports PortList
	sport []uint16
	key   uint64

	hostIdx map[netip.Addr]int32
	portIdx []int32 // by port number; -1 when not scanned

	answered []atomic.Uint64 // bit per job: a reply came
	open     []atomic.Uint64 // bit per job: the reply was a SYN-ACK
	replies  atomic.Int64    // distinct jobs answered

	sent, expired              atomic.Int64 // SYNs sent, and those that timed out
	probes, retries, transient atomic.Int64
}

// outstanding is how many SYNs are waiting for an answer.
func (e *synEngine) outstanding() int64 { return e.sent.Load() - e.replies.Load() - e.expired.Load() }

// cookie is the sequence number of a SYN to dst from sport.
func (e *synEngine) cookie(dst netip.AddrPort, sport uint16) uint32 {
	a := dst.Addr().As16()
	x := e.key ^ uint64(dst.Port())<<16 ^ uint64(sport)
	x = mix64(x ^ binary.LittleEndian.Uint64(a[0:8]))
	x = mix64(x ^ binary.LittleEndian.Uint64(a[8:16]))
	return uint32(x)
}

// mix64 is splitmix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func (e *synEngine) job(i int64) netip.AddrPort {
	nh := int64(len(e.hosts))
	return netip.AddrPortFrom(e.hosts[i%nh], e.ports[i/nh])
}

// reply records one segment from the raw socket.
func (e *synEngine) reply(from netip.AddrPort, sport uint16, ack uint32, flags uint8) {
	var open bool
	switch {
	case flags&tcpRST != 0:
	case flags&tcpSYNACK == tcpSYNACK:
		open = true
	default:
		return
	}
	// Replies to no SYN of this scan (another scan's, a forged one) are ignored.
	h, ok := e.hostIdx[from.Addr().Unmap()]
	if !ok || ack != e.cookie(from, sport)+1 {
		return
	}
	p := e.portIdx[from.Port()]
	if p < 0 {
		return
	}
	i := int64(p)*int64(len(e.hosts)) + int64(h)
	word, bit := i/64, uint64(1)<<(i%64)
	if open {
		e.open[word].Or(bit)
	}
	if e.answered[word].Or(bit)&bit == 0 {
		e.replies.Add(1)
	}
}

func (e *synEngine) isAnswered(i int64) bool {
	return e.answered[i/64].Load()&(1<<(i%64)) != 0
}

// inflight is a SYN sent and not yet known to be answered.
type inflight struct {
	i        int64
	deadline time.Time
}

func runSYN(ctx context.Context, cfg engineConfig, sock SYNSocket, hosts []netip.Addr, ports PortList, done *atomic.Int64) ([]outcome, Stats, error) {
	sports := sock.SourcePorts()
	if len(sports) == 0 {
		return nil, Stats{}, errors.New("the SYN socket has no source ports")
	}
	total := int64(len(hosts)) * int64(len(ports))
	e := &synEngine{
		cfg: cfg, sock: sock, hosts: hosts, ports: ports, sport: sports, key: rand.Uint64(),
		hostIdx:  make(map[netip.Addr]int32, len(hosts)),
		portIdx:  make([]int32, 1<<16),
		answered: make([]atomic.Uint64, (total+63)/64),
		open:     make([]atomic.Uint64, (total+63)/64),
	}
	for i, h := range hosts {
		e.hostIdx[h.Unmap()] = int32(i)
	}
	for i := range e.portIdx {
		e.portIdx[i] = -1
	}
	for i, p := range ports {
		e.portIdx[p] = int32(i)
	}

	failed, err := e.send(ctx, total, done)
	if err != nil {
		return nil, Stats{}, err
	}

	var outs []outcome
	nh := int64(len(hosts))
	for w := range e.answered {
		open := e.open[w].Load()
		for open != 0 {
			b := int64(bits.TrailingZeros64(open))
			open &= open - 1
			i := int64(w)*64 + b
			outs = append(outs, outcome{host: int32(i % nh), port: ports[i/nh], state: Open, reason: "syn-ack"})
		}
	}
	for i := int64(0); i < total; i++ {
		if e.isAnswered(i) {
			continue
		}
		st, reason := Filtered, "no-response"
		if f, ok := failed[i]; ok {
			st, reason = f.state, f.reason
		}
		outs = append(outs, outcome{host: int32(i % nh), port: ports[i/nh], state: st, reason: reason})
	}
	st := Stats{Probes: e.probes.Load(), Retries: e.retries.Load(), Transient: e.transient.Load(), Concurrency: cfg.concurrency}
	return outs, st, nil
}

type sendFailure struct {
	state  State
	reason string
}

// send runs the rounds: every job once, then the unanswered ones again, cfg.retries
// times, each round split among the workers. It returns the jobs a send failed for,
// with what that says about them.
func (e *synEngine) send(ctx context.Context, total int64, done *atomic.Int64) (map[int64]sendFailure, error) {
	failed := map[int64]sendFailure{}
	pace := newPacer(e.cfg.rate)
	var todo []int64 // the round's jobs after the first
	for round := 0; round <= e.cfg.retries; round++ {
		n := total
		if round > 0 {
			n = int64(len(todo))
			if n == 0 {
				break
			}
		}
		workers := int64(min(e.cfg.workers, int(max(1, n/1024))))
		rs := make([]*synRound, workers)
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			r := &synRound{e: e, pace: pace, done: done, round: round, timeout: e.cfg.timeout << round,
				lo: w * n / workers, hi: (w + 1) * n / workers, failed: map[int64]sendFailure{}}
			if round > 0 {
				r.list = todo
			}
			rs[w] = r
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = r.run(ctx)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		todo = nil
		for _, r := range rs {
			todo = append(todo, r.next...)
			maps.Copy(failed, r.failed)
		}
	}
	return failed, nil
}

// synRound is one worker's share of a round: jobs lo to hi, or list[lo:hi] after
// the first round.
type synRound struct {
	e       *synEngine
	pace    *pacer
	done    *atomic.Int64
	round   int
	timeout time.Duration
	lo, hi  int64
	list    []int64

	queue  []inflight // SYNs sent, in order
	next   []int64    // the jobs to try again next round
	failed map[int64]sendFailure
	slots  int // SYNs the pacer allows before asking again
	// The batch of SYNs to send with one system call.
	bi    []int64
	bdst  []netip.AddrPort
	bport []uint16
	bseq  []uint32
}

// retire pops answered and timed-out SYNs off the head of the queue.
func (r *synRound) retire(now time.Time) {
	e := r.e
	for len(r.queue) > 0 {
		q := r.queue[0]
		switch {
		case e.isAnswered(q.i):
			r.done.Add(1)
		case !q.deadline.After(now):
			e.expired.Add(1)
			if r.round == e.cfg.retries {
				r.done.Add(1)
			} else {
				r.next = append(r.next, q.i)
			}
		default:
			return
		}
		r.queue = r.queue[1:]
	}
}

// flush sends the batch and reads the replies queued meanwhile.
func (r *synRound) flush() error {
	e := r.e
	now := time.Now()
	for off, try := 0, 0; off < len(r.bi); {
		k, err := e.sock.Send(r.bdst[off:], r.bport[off:], r.bseq[off:])
		for _, i := range r.bi[off : off+k] {
			r.queue = append(r.queue, inflight{i: i, deadline: now.Add(r.timeout)})
		}
		e.sent.Add(int64(k))
		e.probes.Add(int64(k))
		off += k
		if err == nil || off >= len(r.bi) {
			continue
		}
		if isTransient(err) && try < maxTransient {
			e.transient.Add(1)
			time.Sleep(time.Millisecond << try)
			try++
			continue
		}
		e.probes.Add(1)
		r.failed[r.bi[off]] = sendFailed(err)
		r.done.Add(1)
		off, try = off+1, 0
	}
	r.bi, r.bdst, r.bport, r.bseq = r.bi[:0], r.bdst[:0], r.bport[:0], r.bseq[:0]
	_, err := e.sock.Read(0, e.reply)
	return err
}

func (r *synRound) run(ctx context.Context) error {
	e := r.e
	window := int64(e.cfg.concurrency)
	for k := r.lo; k < r.hi; k++ {
		i := k
		if r.list != nil {
			i = r.list[k]
			if e.isAnswered(i) { // a late answer to the round before
				r.done.Add(1)
				continue
			}
			e.retries.Add(1)
		}
		if k&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if e.outstanding()+int64(len(r.bi)) >= window {
			if err := r.flush(); err != nil {
				return err
			}
			for now := time.Now(); e.outstanding() >= window; now = time.Now() {
				r.retire(now)
				if e.outstanding() < window {
					break
				}
				if _, err := e.sock.Read(time.Millisecond, e.reply); err != nil {
					return err
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		}
		if r.pace != nil && r.slots == 0 {
			if err := r.flush(); err != nil {
				return err
			}
			now := time.Now()
			r.slots = r.pace.batch()
			if d := r.pace.take(r.slots, now).Sub(now); d > 0 {
				time.Sleep(d)
			}
		}
		r.slots = max(0, r.slots-1)
		dst := e.job(i)
		sport := e.sport[(i+int64(r.round))%int64(len(e.sport))]
		r.bi, r.bdst = append(r.bi, i), append(r.bdst, dst)
		r.bport, r.bseq = append(r.bport, sport), append(r.bseq, e.cookie(dst, sport))
		if len(r.bi) == synSendBatch {
			if err := r.flush(); err != nil {
				return err
			}
			if len(r.queue) > 4096 && len(r.queue)&1023 < synSendBatch {
				r.retire(time.Now())
			}
		}
	}
	if err := r.flush(); err != nil {
		return err
	}
	// Wait out the round: every SYN answered or timed out.
	for len(r.queue) > 0 {
		now := time.Now()
		r.retire(now)
		if len(r.queue) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := e.sock.Read(min(r.queue[0].deadline.Sub(now), 5*time.Millisecond), e.reply); err != nil {
			return err
		}
	}
	return nil
}

// sendFailed says what a SYN that could not be sent tells about its port.
func sendFailed(err error) sendFailure {
	var en syscall.Errno
	errors.As(err, &en)
	switch {
	case en == syscall.EHOSTUNREACH, en == syscall.ENETUNREACH, en == syscall.EPERM, en == syscall.EACCES:
		return sendFailure{Filtered, errnoName(en)}
	case isTransient(err):
		return sendFailure{Unknown, fmt.Sprintf("could not tell: %s after %d tries", errnoName(en), maxTransient)}
	}
	return sendFailure{Unknown, err.Error()}
}
