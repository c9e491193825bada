//go:build linux

package scan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"
)

// The SYN engine. One goroutine sends, one reads. A SYN's sequence number is a keyed
// hash of the peer's address and port and the source port, so a reply is matched by
// its acknowledgement number alone, with no table of SYNs in flight: SYN-ACK means
// open, RST closed, silence past the timeout (after the retries) filtered. The sender
// keeps at most Concurrency SYNs unanswered, so that replies never outrun the raw
// socket's receive buffer; retries go out once every first SYN of the round has been
// answered or has timed out, each round waiting twice as long as the one before.
//
// SYNs to this host's own addresses are answered inside the send; the reader on the
// other core drains them as they come.

// synReadEvery is how many SYNs go out between reads of the replies.
const synReadEvery = 32

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
	stray    atomic.Int64    // replies that matched no SYN of this scan

	probes, retries, transient atomic.Int64
}

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
	h, ok := e.hostIdx[from.Addr().Unmap()]
	if !ok || ack != e.cookie(from, sport)+1 {
		e.stray.Add(1)
		return
	}
	p := e.portIdx[from.Port()]
	if p < 0 {
		e.stray.Add(1)
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
// times. It returns the jobs a send failed for, with what that says about them.
func (e *synEngine) send(ctx context.Context, total int64, done *atomic.Int64) (map[int64]sendFailure, error) {
	failed := map[int64]sendFailure{}
	pace := newPacer(e.cfg.rate)
	window := int64(e.cfg.concurrency)
	var queue []inflight // in the order sent
	var sent, expired int64
	slots := 0       // SYNs the pacer allows before asking again
	var todo []int64 // the round's jobs after the first
	for round := 0; round <= e.cfg.retries; round++ {
		timeout := e.cfg.timeout << round
		n := total
		if round > 0 {
			n = int64(len(todo))
			if n == 0 {
				break
			}
		}
		var next []int64
		// retire pops answered and timed-out SYNs off the head of the queue.
		retire := func(now time.Time) {
			for len(queue) > 0 {
				q := queue[0]
				switch {
				case e.isAnswered(q.i):
					done.Add(1)
				case !q.deadline.After(now):
					expired++
					if round == e.cfg.retries {
						done.Add(1)
					} else {
						next = append(next, q.i)
					}
				default:
					return
				}
				queue = queue[1:]
			}
		}
		outstanding := func() int64 { return sent - e.replies.Load() - expired }
		for k := int64(0); k < n; k++ {
			i := k
			if round > 0 {
				i = todo[k]
				if e.isAnswered(i) { // a late answer to the round before
					done.Add(1)
					continue
				}
				e.retries.Add(1)
			}
			if k&255 == 0 {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			now := time.Now()
			for outstanding() >= window {
				retire(now)
				if outstanding() < window {
					break
				}
				if _, err := e.sock.Read(time.Millisecond, e.reply); err != nil {
					return nil, err
				}
				now = time.Now()
				if err := ctx.Err(); err != nil {
					return nil, err
				}
			}
			if pace != nil && slots == 0 {
				slots = pace.batch()
				if d := pace.take(slots, now).Sub(now); d > 0 {
					time.Sleep(d)
					now = time.Now()
				}
			}
			slots = max(0, slots-1)
			dst := e.job(i)
			sport := e.sport[(i+int64(round))%int64(len(e.sport))]
			if f, ok := e.sendOne(dst, sport); !ok {
				failed[i] = f
				done.Add(1)
				continue
			}
			delete(failed, i)
			sent++
			queue = append(queue, inflight{i: i, deadline: now.Add(timeout)})
			if sent%synReadEvery == 0 {
				if _, err := e.sock.Read(0, e.reply); err != nil {
					return nil, err
				}
			}
			if len(queue) > 4096 && len(queue)&1023 == 0 {
				retire(now)
			}
		}
		// Wait out the round: every SYN answered or timed out.
		for len(queue) > 0 {
			now := time.Now()
			retire(now)
			if len(queue) == 0 {
				break
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if _, err := e.sock.Read(min(queue[0].deadline.Sub(now), 5*time.Millisecond), e.reply); err != nil {
				return nil, err
			}
		}
		queue = queue[:0]
		todo = next
	}
	return failed, nil
}

// sendOne sends a SYN, retrying while the system is short of buffers. ok is false
// when it could not be sent; the failure then says what that tells about the port.
func (e *synEngine) sendOne(dst netip.AddrPort, sport uint16) (f sendFailure, ok bool) {
	seq := e.cookie(dst, sport)
	for try := 0; ; try++ {
		e.probes.Add(1)
		err := e.sock.Send(dst, sport, seq)
		if err == nil {
			return f, true
		}
		var en syscall.Errno
		errors.As(err, &en)
		if isTransient(err) && try < maxTransient {
			e.transient.Add(1)
			e.probes.Add(-1)
			time.Sleep(time.Millisecond << try)
			continue
		}
		switch {
		case en == syscall.EHOSTUNREACH, en == syscall.ENETUNREACH, en == syscall.EPERM, en == syscall.EACCES:
			return sendFailure{Filtered, errnoName(en)}, false
		case isTransient(err):
			return sendFailure{Unknown, fmt.Sprintf("could not tell: %s after %d tries", errnoName(en), maxTransient)}, false
		}
		return sendFailure{Unknown, err.Error()}, false
	}
}
