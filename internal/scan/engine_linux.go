//go:build linux

package scan

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Linux engine. Each worker owns an epoll instance and runs connects itself:
//
//	socket(NONBLOCK) → connect → EINPROGRESS → connect again
//
// On loopback (and any path the kernel completes at once) the second connect already
// knows the answer: 0 means open, ECONNREFUSED means closed — and leaves the socket
// unconnected, so it is reused for the next port, saving a socket() and close() per
// closed port. EALREADY means the answer is still on its way: the socket joins the
// worker's epoll set with a deadline. Open sockets are closed with SO_LINGER 0 (a
// reset), so the scanner leaves no TIME_WAIT behind.

func fileLimit() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

// job is one port of one host; i indexes hosts×ports with hosts varying fastest, so
// consecutive connects spread over the hosts.
type job struct {
	i         int64
	tries     uint8 // attempts that timed out
	transient uint8 // attempts that failed for lack of local resources
}

type pend struct {
	fd       int32
	job      job
	deadline time.Time
	idx      int
}

type pendHeap []*pend

func (h pendHeap) Len() int           { return len(h) }
func (h pendHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h pendHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *pendHeap) Push(x any)        { p := x.(*pend); p.idx = len(*h); *h = append(*h, p) }
func (h *pendHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

type retryJob struct {
	job       job
	notBefore time.Time
}

type engine struct {
	cfg   engineConfig
	hosts []netip.Addr
	ports PortList
	total int64
	next  atomic.Int64
	done  *atomic.Int64
	limit atomic.Int64 // adaptive in-flight cap, shared by the workers
	pacer *pacer

	probes, retries, transient atomic.Int64

	mu       sync.Mutex
	lastDrop time.Time
}

func runEngine(ctx context.Context, cfg engineConfig, hosts []netip.Addr, ports PortList, done *atomic.Int64) ([]outcome, Stats, error) {
	e := &engine{cfg: cfg, hosts: hosts, ports: ports, total: int64(len(hosts)) * int64(len(ports)), done: done, pacer: newPacer(cfg.rate)}
	e.limit.Store(int64(cfg.concurrency))
	workers := min(cfg.workers, int(max(1, e.total/64)))
	results := make([][]outcome, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk, err := newWorker(e, workers)
			if err != nil {
				errs[w] = err
				return
			}
			defer wk.shutdown()
			errs[w] = wk.run(ctx)
			results[w] = wk.out
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, Stats{}, err
	}
	var all []outcome
	for _, r := range results {
		all = append(all, r...)
	}
	st := Stats{Probes: e.probes.Load(), Retries: e.retries.Load(), Transient: e.transient.Load(), Concurrency: int(e.limit.Load())}
	return all, st, nil
}

// shrink cuts the in-flight cap by num/den, at most once per interval, so that one
// burst of errors does not collapse it to the floor.
func (e *engine) shrink(num, den int64, interval time.Duration, now time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.lastDrop) < interval {
		return
	}
	e.lastDrop = now
	l := e.limit.Load()
	e.limit.Store(max(minConcurrency, l*num/den))
}

func (e *engine) grow() {
	if l := e.limit.Load(); l < int64(e.cfg.concurrency) {
		e.limit.CompareAndSwap(l, l+1)
	}
}

type worker struct {
	e       *engine
	share   int64 // 1/share of the global cap is this worker's
	epfd    int
	pending map[int32]*pend
	heap    pendHeap
	retry   []retryJob
	spare4  int
	spare6  int
	out     []outcome
	events  []unix.EpollEvent
	sa4     unix.RawSockaddrInet4
	sa6     unix.RawSockaddrInet6
	lo, hi  int64 // the batch of job indices taken from the engine
	slots   int   // connects allowed by the pacer before asking again
	unsaved int64 // finished jobs not yet added to e.done
	okCount int
}

func newWorker(e *engine, share int) (*worker, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	// Out of descriptors is a passing state: wait for some to be freed, up to a second.
	for try := 0; err != nil && isTransient(err) && try < 10; try++ {
		e.transient.Add(1)
		time.Sleep(time.Millisecond << try)
		epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	}
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	return &worker{
		e: e, share: int64(share), epfd: epfd, pending: make(map[int32]*pend),
		spare4: -1, spare6: -1, events: make([]unix.EpollEvent, 256),
		sa4: unix.RawSockaddrInet4{Family: unix.AF_INET},
		sa6: unix.RawSockaddrInet6{Family: unix.AF_INET6},
	}, nil
}

func (w *worker) shutdown() {
	for fd := range w.pending {
		unix.Close(int(fd))
	}
	w.pending = nil
	if w.spare4 >= 0 {
		unix.Close(w.spare4)
	}
	if w.spare6 >= 0 {
		unix.Close(w.spare6)
	}
	unix.Close(w.epfd)
}

const batchSize = 256

// nextJob returns the next job to start: a due retry first, then fresh work.
func (w *worker) nextJob(now time.Time) (job, bool) {
	if len(w.retry) > 0 && !w.retry[0].notBefore.After(now) {
		j := w.retry[0].job
		w.retry = w.retry[1:]
		return j, true
	}
	if w.lo >= w.hi {
		w.lo = w.e.next.Add(batchSize) - batchSize
		w.hi = min(w.lo+batchSize, w.e.total)
		if w.lo >= w.hi {
			return job{}, false
		}
	}
	j := job{i: w.lo}
	w.lo++
	return j, true
}

func (w *worker) run(ctx context.Context) error {
	e := w.e
	defer func() { e.done.Add(w.unsaved) }()
	for n := 0; ; n++ {
		if n&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if w.unsaved > 0 {
				e.done.Add(w.unsaved)
				w.unsaved = 0
			}
		}
		now := time.Now()
		if len(w.pending) > 0 {
			w.reap(0)
			w.expire(now)
		}
		limit := max(1, e.limit.Load()/w.share)
		if int64(len(w.pending)) >= limit {
			w.reap(w.waitMillis(now, time.Time{}))
			continue
		}
		if e.pacer != nil && w.slots == 0 {
			at := e.pacer.take(e.pacer.batch(), now)
			if d := at.Sub(now); d > 0 {
				w.sleep(d)
			}
			w.slots = e.pacer.batch()
		}
		j, ok := w.nextJob(now)
		if !ok {
			if len(w.pending) == 0 && len(w.retry) == 0 {
				return nil
			}
			var wake time.Time
			if len(w.retry) > 0 {
				wake = w.retry[0].notBefore
			}
			w.reap(w.waitMillis(now, wake))
			continue
		}
		w.slots = max(0, w.slots-1)
		w.start(j, now)
	}
}

// sleep waits d while still collecting answers.
func (w *worker) sleep(d time.Duration) {
	if len(w.pending) == 0 {
		time.Sleep(d)
		return
	}
	w.reap(int(max(1, d.Milliseconds())))
}

// waitMillis returns how long epoll_wait may block: until the earliest deadline or wake.
func (w *worker) waitMillis(now, wake time.Time) int {
	until := wake
	if len(w.heap) > 0 && (until.IsZero() || w.heap[0].deadline.Before(until)) {
		until = w.heap[0].deadline
	}
	if until.IsZero() {
		return 100
	}
	ms := until.Sub(now).Milliseconds() + 1
	return int(min(max(ms, 0), 1000))
}

func (w *worker) addr(j job) (netip.Addr, uint16) {
	nh := int64(len(w.e.hosts))
	return w.e.hosts[j.i%nh], w.e.ports[j.i/nh]
}

func (w *worker) finish(j job, st State, reason string) {
	w.unsaved++
	if st == Closed {
		return
	}
	_, p := w.addr(j)
	w.out = append(w.out, outcome{host: int32(j.i % int64(len(w.e.hosts))), port: p, state: st, reason: reason})
}

// start begins one connect and, where the kernel answers at once, finishes it.
func (w *worker) start(j job, now time.Time) {
	e := w.e
	a, port := w.addr(j)
	e.probes.Add(1)
	var sa unsafe.Pointer
	var salen uintptr
	spare := &w.spare4
	family := unix.AF_INET
	if a.Is4() {
		w.sa4.Addr = a.As4()
		putPort(&w.sa4.Port, port)
		sa, salen = unsafe.Pointer(&w.sa4), unsafe.Sizeof(w.sa4)
	} else {
		spare, family = &w.spare6, unix.AF_INET6
		w.sa6.Addr = a.As16()
		putPort(&w.sa6.Port, port)
		w.sa6.Scope_id = zoneID(a.Zone())
		sa, salen = unsafe.Pointer(&w.sa6), unsafe.Sizeof(w.sa6)
	}
	fd := *spare
	*spare = -1
	if fd < 0 {
		var err error
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			w.transientErr(j, err, now)
			return
		}
	}
	errno := connect(fd, sa, salen)
	if errno == unix.EINPROGRESS {
		errno = connect(fd, sa, salen)
	}
	switch errno {
	case 0, unix.EISCONN:
		w.connected(j, fd, port)
	case unix.ECONNREFUSED:
		// The socket is unconnected again: keep it for the next port.
		*spare = fd
		w.finish(j, Closed, "")
		w.grow()
	case unix.EALREADY, unix.EINPROGRESS, unix.EINTR:
		ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLERR | unix.EPOLLHUP, Fd: int32(fd)}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			w.transientErr(j, err, now)
			return
		}
		p := &pend{fd: int32(fd), job: j, deadline: now.Add(e.cfg.timeout << j.tries)}
		w.pending[p.fd] = p
		heap.Push(&w.heap, p)
	default:
		unix.Close(fd)
		w.settle(j, errno, now)
	}
}

// connected finishes a job whose connect succeeded. A connect from an ephemeral port
// to the same port of the same address meets itself (TCP simultaneous open) although
// nothing listens there; the kernel picks such a source port about once per full scan
// of a loopback address, so it is checked for, and counted as closed.
func (w *worker) connected(j job, fd int, port uint16) {
	if selfConnected(fd, port) {
		closeReset(fd)
		w.finish(j, Closed, "")
		return
	}
	closeReset(fd)
	w.finish(j, Open, "syn-ack")
	w.grow()
}

func selfConnected(fd int, port uint16) bool {
	local, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	remote, err := unix.Getpeername(fd)
	if err != nil {
		return false
	}
	switch l := local.(type) {
	case *unix.SockaddrInet4:
		r, ok := remote.(*unix.SockaddrInet4)
		return ok && l.Port == int(port) && r.Port == l.Port && r.Addr == l.Addr
	case *unix.SockaddrInet6:
		r, ok := remote.(*unix.SockaddrInet6)
		return ok && l.Port == int(port) && r.Port == l.Port && r.Addr == l.Addr
	}
	return false
}

// settle finishes a job from a connect error other than success or refusal.
func (w *worker) settle(j job, errno syscall.Errno, now time.Time) {
	switch errno {
	case unix.ECONNREFUSED:
		w.finish(j, Closed, "")
	case unix.ETIMEDOUT:
		w.timedOut(j, now)
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EACCES, unix.EPERM, unix.ECONNRESET:
		w.finish(j, Filtered, errnoName(errno))
	default:
		if isTransient(errno) {
			w.transientErr(j, errno, now)
			return
		}
		w.finish(j, Unknown, errnoName(errno))
	}
}

// isTransient reports errors that say nothing about the port: the scanner ran short.
func isTransient(err error) bool {
	var en syscall.Errno
	if !errors.As(err, &en) {
		return false
	}
	switch en {
	case unix.EMFILE, unix.ENFILE, unix.EADDRNOTAVAIL, unix.EAGAIN, unix.ENOBUFS, unix.ENOMEM, unix.EINTR:
		return true
	}
	return false
}

// transientErr retries j later with backoff and cuts concurrency.
func (w *worker) transientErr(j job, err error, now time.Time) {
	e := w.e
	e.transient.Add(1)
	var en syscall.Errno
	if !errors.As(err, &en) || !isTransient(en) {
		w.finish(j, Unknown, err.Error())
		return
	}
	j.transient++
	if j.transient > maxTransient {
		w.finish(j, Unknown, fmt.Sprintf("could not tell: %s after %d tries", errnoName(en), maxTransient))
		return
	}
	e.retries.Add(1)
	e.shrink(1, 2, 20*time.Millisecond, now)
	backoff := min(time.Millisecond<<j.transient, time.Second)
	w.retry = append(w.retry, retryJob{job: j, notBefore: now.Add(backoff)})
}

// timedOut retries a port that gave no answer, with a longer wait, or calls it filtered.
func (w *worker) timedOut(j job, now time.Time) {
	e := w.e
	if int(j.tries) < e.cfg.retries {
		j.tries++
		e.retries.Add(1)
		// Many connects in flight when one times out: the answer may have been lost
		// to the scan's own pressure. Ease off before asking again.
		if int64(len(w.pending))*w.share > e.limit.Load()/4 {
			e.shrink(3, 4, e.cfg.timeout, now)
		}
		w.retry = append(w.retry, retryJob{job: j, notBefore: now})
		return
	}
	w.finish(j, Filtered, "no-response")
}

func (w *worker) grow() {
	w.okCount++
	if w.okCount&63 == 0 {
		w.e.grow()
	}
}

// reap collects finished connects, waiting up to ms milliseconds for the first.
func (w *worker) reap(ms int) {
	n, err := unix.EpollWait(w.epfd, w.events, ms)
	if err != nil {
		return // EINTR: the caller loops
	}
	now := time.Now()
	for _, ev := range w.events[:n] {
		p, ok := w.pending[ev.Fd]
		if !ok {
			continue
		}
		delete(w.pending, ev.Fd)
		heap.Remove(&w.heap, p.idx)
		fd := int(p.fd)
		soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			unix.Close(fd)
			w.transientErr(p.job, err, now)
			continue
		}
		switch {
		case soErr == 0 && ev.Events&unix.EPOLLOUT != 0:
			_, port := w.addr(p.job)
			w.connected(p.job, fd, port)
		case soErr == 0:
			unix.Close(fd)
			w.finish(p.job, Unknown, "socket hung up without an error")
		default:
			unix.Close(fd)
			w.settle(p.job, syscall.Errno(soErr), now)
			if syscall.Errno(soErr) == unix.ECONNREFUSED {
				w.grow()
			}
		}
	}
}

// expire gives up on connects past their deadline.
func (w *worker) expire(now time.Time) {
	for len(w.heap) > 0 && !w.heap[0].deadline.After(now) {
		p := heap.Pop(&w.heap).(*pend)
		delete(w.pending, p.fd)
		unix.Close(int(p.fd))
		w.timedOut(p.job, now)
	}
}

// connect calls connect(2) directly: on a non-blocking socket it never sleeps, so the
// scheduler need not be told.
func connect(fd int, sa unsafe.Pointer, salen uintptr) syscall.Errno {
	_, _, errno := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(sa), salen)
	return errno
}

// closeReset closes a connected socket with a reset rather than a FIN.
func closeReset(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

func errnoName(en syscall.Errno) string {
	if n := unix.ErrnoName(en); n != "" {
		return n
	}
	return en.Error()
}
