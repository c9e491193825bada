//go:build !linux

package scan

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The portable engine: one goroutine per connect through net.Dialer, bounded by the
// concurrency cap. It is slower than the Linux epoll engine but answers the same way.

func fileLimit() int { return 0 }

func runEngine(ctx context.Context, cfg engineConfig, hosts []netip.Addr, ports PortList, done *atomic.Int64) ([]outcome, Stats, error) {
	var (
		mu    sync.Mutex
		outs  []outcome
		st    Stats
		wg    sync.WaitGroup
		sem   = make(chan struct{}, cfg.concurrency)
		pacer = newPacer(cfg.rate)
	)
	var probes, retries, transient atomic.Int64
	nh := int64(len(hosts))
	total := nh * int64(len(ports))
	for i := int64(0); i < total; i++ {
		if err := ctx.Err(); err != nil {
			wg.Wait()
			return nil, Stats{}, err
		}
		if pacer != nil {
			if d := time.Until(pacer.take(1, time.Now())); d > 0 {
				time.Sleep(d)
			}
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(h int32, a netip.Addr, p uint16) {
			defer func() { <-sem; wg.Done(); done.Add(1) }()
			state, reason := Closed, ""
			for try, trans := 0, 0; ; {
				probes.Add(1)
				d := net.Dialer{Timeout: cfg.timeout << try}
				c, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, p).String())
				if err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetLinger(0)
					}
					c.Close()
					state, reason = Open, "syn-ack"
					break
				}
				var en syscall.Errno
				var ne net.Error
				switch {
				case errors.Is(err, syscall.ECONNREFUSED):
					state = Closed
				case errors.As(err, &en) && isTransientErrno(en) && trans < maxTransient:
					trans++
					transient.Add(1)
					retries.Add(1)
					time.Sleep(min(time.Millisecond<<trans, time.Second))
					continue
				case errors.As(err, &ne) && ne.Timeout() && try < cfg.retries:
					try++
					retries.Add(1)
					continue
				case errors.As(err, &ne) && ne.Timeout():
					state, reason = Filtered, "no-response"
				case errors.As(err, &en) && isTransientErrno(en):
					state, reason = Unknown, "could not tell: "+en.Error()
				default:
					state, reason = Filtered, err.Error()
				}
				break
			}
			if state != Closed {
				mu.Lock()
				outs = append(outs, outcome{host: h, port: p, state: state, reason: reason})
				mu.Unlock()
			}
		}(int32(i%nh), hosts[i%nh], ports[i/nh])
	}
	wg.Wait()
	st = Stats{Probes: probes.Load(), Retries: retries.Load(), Transient: transient.Load(), Concurrency: cfg.concurrency}
	return outs, st, nil
}

func isTransientErrno(en syscall.Errno) bool {
	switch en {
	case syscall.EMFILE, syscall.ENFILE, syscall.EADDRNOTAVAIL, syscall.EAGAIN, syscall.ENOBUFS:
		return true
	}
	return false
}

func runSYN(context.Context, engineConfig, SYNSocket, []netip.Addr, PortList, *atomic.Int64) ([]outcome, Stats, error) {
	return nil, Stats{}, errors.New("a SYN scan needs Linux")
}
