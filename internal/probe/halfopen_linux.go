//go:build linux

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A half-open check sends a SYN from a raw socket and reads the answer: SYN-ACK means
// open, RST means refused, silence until the deadline means timeout. The kernel itself
// answers the SYN-ACK with a RST, because no socket owns the source port, so the
// listener drops the half-made connection before it ever reaches accept().
//
// Against a bare connect it saves the socket the prober allocates and frees, the child
// socket the listener creates, queues and tears down, and four of the five system
// calls: about a third of the CPU on loopback (see docs/benchmarks.md). It also leaves
// nothing in the monitored service's logs: no accepted-then-reset connection every
// interval. It needs CAP_NET_RAW; without it everything takes the connect path.
//
// One raw socket per address family serves every half-open probe built on an Env (the
// daemon has one). Replies are told apart by the peer's address and port, the source
// port (one of a few reserved ones) and the acknowledgement number, which must be the
// probe's own sequence number plus one.

// halfOpenPorts is how many source ports are reserved. Probes of the same address and
// port at the same moment (rare: the scheduler never overlaps a target with itself)
// take different source ports; when all are busy the probe connects instead.
const halfOpenPorts = 4

// halfOpenRetry is the SYN retransmission interval, as the kernel's first one.
const halfOpenRetry = time.Second

type hoKey struct {
	addr  [16]byte // the peer's; IPv4 as an IPv4-mapped IPv6 address
	port  uint16   // the peer's
	sport uint16   // ours
}

type hoWait struct {
	seq   uint32
	reply atomic.Uint32 // 0 until answered, then replyOpen or replyRefused
	ch    chan struct{} // closed on the answer; nil for a check that reads its own
}

const (
	replyOpen    = 1
	replyRefused = 2
)

// halfOpener is the half-open prober of one Env: its raw sockets, reserved source
// ports and receiver goroutine. It is safe for concurrent use; close releases it all.
type halfOpener struct {
	fd4   int           // raw IPv4 socket; IP_HDRINCL, replies come with their IP header
	fd6   int           // raw IPv6 socket, or -1 without IPv6; replies start at the TCP header
	epfd  int           // the receiver's epoll set; holds fd4 and fd6 only while slow > 0
	wake  int           // an eventfd, always in the set: written once, by close, to stop the receiver
	done  chan struct{} // closed when the receiver has returned
	ports [halfOpenPorts]uint16
	holds [halfOpenPorts]int // bound TCP sockets that keep the ports ours
	next  atomic.Uint32
	seq   atomic.Uint32
	// slow counts checks waiting for a reply that did not come within their send;
	// the raw sockets are in the receiver's epoll set only while there are some, so
	// checks of this host's ports, which read their own replies, never wake it.
	// reading is set while the receiver holds packets not yet delivered.
	slowMu  sync.Mutex
	slow    int
	reading atomic.Int32

	mu      sync.Mutex
	waiting map[hoKey]*hoWait
	// waiters recycles the waiters of checks that read their own reply.
	waiters sync.Pool

	srcMu sync.Mutex
	srcs  map[netip.Addr]srcEntry // route source address by destination

	// life is held for reading by every check while it uses the sockets, and for
	// writing by close, which so waits for checks in flight: a descriptor is never
	// closed under a check, whose SYN would otherwise go out on whatever socket
	// reused its number. closed (guarded by life) turns later checks away.
	life   sync.RWMutex
	closed bool
}

type srcEntry struct {
	src     netip.Addr
	local   bool
	expires time.Time
}

// openHalfOpener opens the raw sockets, reserves the source ports and starts the
// receiver. It fails (typically EPERM) without CAP_NET_RAW.
func openHalfOpener() (*halfOpener, error) {
	h := &halfOpener{fd4: -1, fd6: -1, epfd: -1, wake: -1, waiting: map[hoKey]*hoWait{}, srcs: map[netip.Addr]srcEntry{}}
	for i := range h.holds {
		h.holds[i] = -1
	}
	fail := func(err error) (*halfOpener, error) {
		h.closeFDs()
		return nil, err
	}
	var err error
	if h.fd4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP); err != nil {
		return nil, fmt.Errorf("raw socket for half-open probes: %w", err)
	}
	if err := unix.SetsockoptInt(h.fd4, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
		return fail(fmt.Errorf("IP_HDRINCL: %w", err))
	}
	for i := range h.ports {
		if h.holds[i], h.ports[i], err = reservePort(); err != nil {
			return fail(fmt.Errorf("reserve a source port: %w", err))
		}
	}
	if err := attachFilter(h.fd4, replyFilter(h.ports, true)); err != nil {
		return fail(err)
	}
	// IPv6 is optional: without it IPv6 checks connect. The kernel fills in the TCP
	// checksum (IPV6_CHECKSUM), as it knows the source address it picks.
	if fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP); err == nil {
		if unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 16) == nil &&
			attachFilter(fd, replyFilter(h.ports, false)) == nil {
			h.fd6 = fd
		} else {
			unix.Close(fd)
		}
	}
	// Packets that arrived before the filters were attached match no probe; the
	// first drain discards them.
	if h.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return fail(os.NewSyscallError("epoll_create1", err))
	}
	if h.wake, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return fail(os.NewSyscallError("eventfd", err))
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(h.wake)}
	if err := unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, h.wake, &ev); err != nil {
		return fail(os.NewSyscallError("epoll_ctl", err))
	}
	h.seq.Store(uint32(time.Now().UnixNano()))
	h.done = make(chan struct{})
	go h.receive()
	return h, nil
}

// close stops the receiver and closes every descriptor, once the checks in flight
// have returned; checks after it decline (errHalfOpenBusy), so their probes connect.
func (h *halfOpener) close() error {
	h.life.Lock()
	defer h.life.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	if err := wakeUp(h.wake); err != nil {
		return fmt.Errorf("stop the half-open receiver: %w", err)
	}
	<-h.done
	return h.closeFDs()
}

// closeFDs closes every descriptor h holds (those not opened are -1).
func (h *halfOpener) closeFDs() error {
	var errs []error
	for _, fd := range append(h.holds[:], h.fd4, h.fd6, h.epfd, h.wake) {
		if fd >= 0 {
			if err := unix.Close(fd); err != nil {
				errs = append(errs, os.NewSyscallError("close", err))
			}
		}
	}
	return errors.Join(errs...)
}

// wakeUp makes the eventfd fd readable, ending an epoll_wait that holds it.
func wakeUp(fd int) error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(fd, one[:]); err != nil {
		return os.NewSyscallError("write", err)
	}
	return nil
}

// reservePort binds a TCP socket to an ephemeral port on every address, of both
// families where the host has IPv6, and keeps it: no other socket gets the port, and
// SYN-ACKs sent to it find no socket, so the kernel answers them with a RST.
func reservePort() (fd int, port uint16, err error) {
	fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		if err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet6{})
		}
		if err != nil {
			unix.Close(fd)
		}
	}
	if err != nil { // no IPv6 here
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return -1, 0, err
		}
		if err = unix.Bind(fd, &unix.SockaddrInet4{}); err != nil {
			unix.Close(fd)
			return -1, 0, err
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet6:
		return fd, uint16(a.Port), nil
	case *unix.SockaddrInet4:
		return fd, uint16(a.Port), nil
	}
	unix.Close(fd)
	return -1, 0, fmt.Errorf("getsockname: unexpected %T", sa)
}

func attachFilter(fd int, prog []unix.SockFilter) error {
	// Replies to a burst of remote checks wait here for the receiver: room for
	// thousands (the default holds a few hundred). FORCE needs CAP_NET_ADMIN; without
	// it the size is capped by net.core.rmem_max.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	return nil
}

// replyFilter is a classic BPF program that keeps only TCP segments to one of ports
// with SYN+ACK or RST set, so a raw socket never sees the host's other traffic.
// ipHeader says the packets start with an IPv4 header (IPv6 raw sockets see the TCP
// header first).
func replyFilter(ports [halfOpenPorts]uint16, ipHeader bool) []unix.SockFilter {
	n := uint8(len(ports))
	x := unix.SockFilter{Code: unix.BPF_LDX | unix.BPF_W | unix.BPF_IMM, K: 0} // x = 0
	if ipHeader {
		x = unix.SockFilter{Code: unix.BPF_LDX | unix.BPF_B | unix.BPF_MSH, K: 0} // x = IP header length
	}
	p := []unix.SockFilter{
		x,
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_IND, K: 2}, // a = TCP destination port
	}
	for i, port := range ports {
		// On a match jump to the flags test, past the remaining port tests and the drop.
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: n - uint8(i), K: uint32(port)})
	}
	return append(p,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0},
		unix.SockFilter{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_IND, K: 13},            // a = TCP flags
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 2, K: 0x04}, // RST
		unix.SockFilter{Code: unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, K: 0x12},
		unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: 0x12}, // SYN+ACK
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 128},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: 0},
	)
}

// receive reads replies for slow checks until close wakes it. It blocks in
// epoll_wait on a thread of its own; with no slow checks the set holds only the
// eventfd, which nothing but close writes to.
func (h *halfOpener) receive() {
	defer close(h.done)
	events := make([]unix.EpollEvent, 3)
	for {
		n, err := unix.EpollWait(h.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		h.reading.Add(1)
		for _, ev := range events[:n] {
			if int(ev.Fd) == h.wake {
				h.reading.Add(-1)
				return
			}
			h.drainFor(int(ev.Fd), nil)
		}
		h.reading.Add(-1)
	}
}

// slowEnter and slowLeave bracket a check that waits for its reply.
func (h *halfOpener) slowEnter() {
	h.slowMu.Lock()
	defer h.slowMu.Unlock()
	if h.slow++; h.slow == 1 {
		for _, fd := range []int{h.fd4, h.fd6} {
			if fd >= 0 {
				ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
				_ = unix.EpollCtl(h.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
			}
		}
	}
}

func (h *halfOpener) slowLeave() {
	h.slowMu.Lock()
	defer h.slowMu.Unlock()
	if h.slow--; h.slow == 0 {
		for _, fd := range []int{h.fd4, h.fd6} {
			if fd >= 0 {
				_ = unix.EpollCtl(h.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			}
		}
	}
}

// drainFor reads and delivers the replies queued on fd until w (when not nil) has its
// answer or none is left, without waiting. Stopping at w's answer saves the read that
// would only say the queue is empty; what is left is read by the next drain.
func (h *halfOpener) drainFor(fd int, w *hoWait) {
	var buf [128]byte
	for {
		var addr [16]byte
		var tcp []byte
		if fd == h.fd4 {
			n, err := unix.Read(fd, buf[:])
			if err != nil {
				return
			}
			if addr, tcp = ipv4Reply(buf[:n]); tcp == nil {
				continue
			}
		} else {
			n, from, err := unix.Recvfrom(fd, buf[:], 0)
			if err != nil {
				return
			}
			sa, ok := from.(*unix.SockaddrInet6)
			if !ok {
				continue
			}
			addr, tcp = sa.Addr, buf[:n]
		}
		h.deliver(addr, tcp)
		if w != nil && w.reply.Load() != 0 {
			return
		}
	}
}

// ipv4Reply splits an IPv4 packet into its source address (IPv4-mapped) and TCP
// segment; the segment is nil for a packet too short or not IPv4.
func ipv4Reply(b []byte) (addr [16]byte, tcp []byte) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return addr, nil
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl+14 {
		return addr, nil
	}
	return netip.AddrFrom4([4]byte(b[12:16])).As16(), b[ihl:]
}

// deliver matches one TCP segment from addr to the probe waiting for it.
func (h *halfOpener) deliver(addr [16]byte, tcp []byte) {
	if len(tcp) < 14 {
		return
	}
	k := hoKey{
		addr:  addr,
		port:  binary.BigEndian.Uint16(tcp[0:2]),
		sport: binary.BigEndian.Uint16(tcp[2:4]),
	}
	ack := binary.BigEndian.Uint32(tcp[8:12])
	flags := tcp[13]
	h.mu.Lock()
	w := h.waiting[k]
	if w == nil || ack != w.seq+1 {
		h.mu.Unlock()
		return
	}
	delete(h.waiting, k)
	h.mu.Unlock()
	ch := w.ch
	if flags&0x04 == 0 {
		w.reply.Store(replyOpen)
	} else {
		w.reply.Store(replyRefused)
	}
	if ch != nil {
		close(ch)
	}
}

// route returns the source address the kernel would use towards dst and whether dst
// is an address of this host. Answers are cached for a minute.
func (h *halfOpener) route(dst netip.Addr) (netip.Addr, bool, error) {
	if dst.IsLoopback() {
		return dst, true, nil
	}
	now := time.Now()
	h.srcMu.Lock()
	e, ok := h.srcs[dst]
	h.srcMu.Unlock()
	if ok && now.Before(e.expires) {
		return e.src, e.local, nil
	}
	src, err := routeSource(dst)
	if err != nil {
		return dst, false, err
	}
	e = srcEntry{src: src, local: src == dst, expires: now.Add(time.Minute)}
	h.srcMu.Lock()
	if len(h.srcs) > 4096 {
		clear(h.srcs)
	}
	h.srcs[dst] = e
	h.srcMu.Unlock()
	return src, e.local, nil
}

// routeSource asks the kernel which source address it would use towards dst: a
// connected UDP socket sends nothing, and getsockname shows the route's source.
func routeSource(dst netip.Addr) (netip.Addr, error) {
	family, to := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: 9, Addr: dst.As16()})
	if dst.Is4() {
		family, to = unix.AF_INET, &unix.SockaddrInet4{Port: 9, Addr: dst.As4()}
	}
	s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return netip.Addr{}, err
	}
	defer unix.Close(s)
	if err := unix.Connect(s, to); err != nil {
		return netip.Addr{}, err
	}
	sa, err := unix.Getsockname(s)
	if err != nil {
		return netip.Addr{}, err
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr), nil
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr), nil
	}
	return netip.Addr{}, fmt.Errorf("getsockname: unexpected %T", sa)
}

// errHalfOpenBusy says a half-open check could not be sent and the caller should
// connect instead.
var errHalfOpenBusy = errors.New("half-open check unavailable")

// syn is a SYN ready to send, and where.
type syn struct {
	fd  int
	pkt [44]byte
	n   int
	to  unix.Sockaddr
}

// prepare registers w for a SYN to dst:port and builds the SYN. ok is false when it
// cannot be sent: no raw socket for dst's family, or every source port busy with a
// check of dst:port.
func (h *halfOpener) prepare(w *hoWait, src, dst netip.Addr, port uint16) (k hoKey, s syn, ok bool) {
	if dst.Is6() && h.fd6 < 0 {
		return k, s, false
	}
	if k, ok = h.register(w, dst, port); !ok {
		return k, s, false
	}
	if dst.Is4() {
		s.fd, s.n, s.to = h.fd4, 44, &unix.SockaddrInet4{Addr: dst.As4()}
		synPacket4(s.pkt[:], src.As4(), dst.As4(), k.sport, k.port, w.seq)
	} else {
		// The kernel writes the IPv6 header and the checksum.
		s.fd, s.n, s.to = h.fd6, 24, &unix.SockaddrInet6{Addr: dst.As16()}
		tcpSyn(s.pkt[:24], k.sport, k.port, w.seq)
	}
	return k, s, true
}

func (s *syn) send() error { return unix.Sendto(s.fd, s.pkt[:s.n], 0, s.to) }

// check runs one half-open check of ap. It returns nil for open, ECONNREFUSED for a
// RST, ctx's error at the deadline, and errHalfOpenBusy when it could not send (the
// caller then connects), as after close. With localOnly it declines addresses not on
// this host.
func (h *halfOpener) check(ctx context.Context, ap netip.AddrPort, localOnly bool) error {
	h.life.RLock()
	defer h.life.RUnlock()
	if h.closed {
		return errHalfOpenBusy
	}
	dst := ap.Addr().Unmap()
	src, local, err := h.route(dst)
	if err != nil || (localOnly && !local) {
		return errHalfOpenBusy
	}
	if local {
		// On this host the kernel answers within the send, unless the listener's
		// queue is full and the SYN dropped: then wait, as for a remote address.
		if done, err := h.tryLocalOpen(ap); done {
			return err
		}
	}
	h.slowEnter()
	defer h.slowLeave()
	w := &hoWait{ch: make(chan struct{})}
	k, s, ok := h.prepare(w, src, dst, ap.Port())
	if !ok {
		return errHalfOpenBusy
	}
	if err := s.send(); err != nil {
		h.forget(k, w)
		return errHalfOpenBusy
	}
	var retry <-chan time.Time
	if local {
		h.drainFor(s.fd, w)
	} else {
		t := time.NewTicker(halfOpenRetry)
		defer t.Stop()
		retry = t.C
	}
	for {
		select {
		case <-w.ch:
			return replyErr(w.reply.Load())
		case <-retry:
			_ = s.send()
		case <-ctx.Done():
			h.forget(k, w)
			if r := w.reply.Load(); r != 0 { // answered as the deadline passed
				return replyErr(r)
			}
			return ctx.Err()
		}
	}
}

// tryLocal runs a half-open check of ap if ap is on this host and the kernel answers
// within the send, as it does unless the listener's queue is full. It reports done
// false, having withdrawn its SYN's waiter, when there was no answer at once, and
// after close.
func (h *halfOpener) tryLocal(ap netip.AddrPort) (done bool, err error) {
	h.life.RLock()
	defer h.life.RUnlock()
	if h.closed {
		return false, nil
	}
	return h.tryLocalOpen(ap)
}

// tryLocalOpen is tryLocal for a caller that holds h.life and found h open.
func (h *halfOpener) tryLocalOpen(ap netip.AddrPort) (done bool, err error) {
	dst := ap.Addr().Unmap()
	src, local, rerr := h.route(dst)
	if rerr != nil || !local {
		return false, nil
	}
	w, _ := h.waiters.Get().(*hoWait)
	if w == nil {
		w = new(hoWait)
	}
	w.reply.Store(0)
	k, s, ok := h.prepare(w, src, dst, ap.Port())
	if !ok {
		h.waiters.Put(w)
		return false, nil
	}
	if s.send() != nil {
		h.forget(k, w)
		return false, nil
	}
	h.drainFor(s.fd, w)
	if r := w.reply.Load(); r != 0 {
		h.waiters.Put(w) // deliver is done with it
		return true, replyErr(r)
	}
	// The receiver may have read the reply first and not yet delivered it.
	for h.reading.Load() > 0 {
		runtime.Gosched()
	}
	h.forget(k, w)
	if r := w.reply.Load(); r != 0 { // delivered by the receiver meanwhile
		return true, replyErr(r)
	}
	return false, nil
}

func replyErr(r uint32) error {
	if r == replyOpen {
		return nil
	}
	return os.NewSyscallError("connect", unix.ECONNREFUSED)
}

// register gives w a sequence number and a free source port for a SYN to dst:port;
// ok is false when every source port already has a check of dst:port in flight.
func (h *halfOpener) register(w *hoWait, dst netip.Addr, port uint16) (k hoKey, ok bool) {
	w.seq = h.seq.Add(0x9e3779b9)
	k = hoKey{addr: dst.As16(), port: port}
	h.mu.Lock()
	defer h.mu.Unlock()
	start := h.next.Add(1)
	for i := range uint32(halfOpenPorts) {
		k.sport = h.ports[(start+i)%halfOpenPorts]
		if _, busy := h.waiting[k]; !busy {
			h.waiting[k] = w
			return k, true
		}
	}
	return k, false
}

func (h *halfOpener) forget(k hoKey, w *hoWait) {
	h.mu.Lock()
	if h.waiting[k] == w {
		delete(h.waiting, k)
	}
	h.mu.Unlock()
}

// tcpSyn writes a TCP SYN with an MSS option, checksum zero, into t (24 bytes).
func tcpSyn(t []byte, sport, dport uint16, seq uint32) {
	clear(t[:24])
	binary.BigEndian.PutUint16(t[0:], sport)
	binary.BigEndian.PutUint16(t[2:], dport)
	binary.BigEndian.PutUint32(t[4:], seq)
	t[12] = 6 << 4 // data offset: 24 bytes
	t[13] = 0x02   // SYN
	binary.BigEndian.PutUint16(t[14:], 64240)
	t[20], t[21] = 2, 4 // MSS option
	binary.BigEndian.PutUint16(t[22:], 1440)
}

// synPacket4 writes an IPv4 header (the kernel fills in length, id and checksum) and
// a TCP SYN with its checksum into b, which must hold 44 bytes.
func synPacket4(b []byte, src, dst [4]byte, sport, dport uint16, seq uint32) {
	clear(b[:20])
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[6:], 0x4000) // don't fragment
	b[8] = 64                                 // TTL
	b[9] = unix.IPPROTO_TCP
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	t := b[20:44]
	tcpSyn(t, sport, dport, seq)
	sum := uint32(binary.BigEndian.Uint16(src[0:])) + uint32(binary.BigEndian.Uint16(src[2:])) +
		uint32(binary.BigEndian.Uint16(dst[0:])) + uint32(binary.BigEndian.Uint16(dst[2:])) +
		unix.IPPROTO_TCP + 24
	for i := 0; i < 24; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(t[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(t[16:], ^uint16(sum))
}

// SYNSocket lends a port scan the half-open machinery: the raw sockets, the reserved
// source ports (SYN-ACKs to them find no socket, so the kernel resets the half-made
// connection) and the reply filter, without the per-check bookkeeping. The scan picks
// its own sequence numbers and matches the replies itself. Send and Read may run at
// once on different goroutines; Close must wait until both have returned. The zero
// value is not usable: open one with OpenSYNSocket.
type SYNSocket struct {
	h    *halfOpener
	epfd int // holds the raw sockets, for Read to wait on
}

// OpenSYNSocket opens the raw sockets and reserves the source ports. Without root or
// CAP_NET_RAW it fails with an error that wraps syscall.EPERM.
func OpenSYNSocket() (*SYNSocket, error) {
	h, err := openHalfOpener()
	if err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		h.close()
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	for _, fd := range []int{h.fd4, h.fd6} {
		if fd < 0 {
			continue
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(epfd)
			h.close()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return &SYNSocket{h: h, epfd: epfd}, nil
}

// SourcePorts returns the reserved source ports SYNs may be sent from.
func (s *SYNSocket) SourcePorts() []uint16 { return s.h.ports[:] }

// Send sends SYNs, the i-th to dst[i] from sport[i] (one of SourcePorts) with
// sequence number seq[i], each from the source address the kernel's route to it
// would use. IPv4 SYNs go out up to synBatch per system call. It returns how many
// were sent before an error.
func (s *SYNSocket) Send(dst []netip.AddrPort, sport []uint16, seq []uint32) (int, error) {
	done := 0
	for done < len(dst) {
		if a := dst[done].Addr().Unmap(); !a.Is4() {
			if err := s.send6(dst[done], sport[done], seq[done]); err != nil {
				return done, err
			}
			done++
			continue
		}
		b := sendBufs.Get().(*mmsgSend)
		n := 0
		var rerr error
		for ; done+n < len(dst) && n < synBatch; n++ {
			d := dst[done+n]
			a := d.Addr().Unmap()
			if !a.Is4() {
				break
			}
			src, _, err := s.h.route(a)
			if err != nil {
				rerr = err
				break
			}
			synPacket4(b.pkts[n][:], src.As4(), a.As4(), sport[done+n], d.Port(), seq[done+n])
			b.addrs[n] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		}
		for sent := 0; sent < n; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(s.h.fd4), uintptr(unsafe.Pointer(&b.hdrs[sent])), uintptr(n-sent), 0, 0, 0)
			if errno != 0 {
				sendBufs.Put(b)
				return done + sent, os.NewSyscallError("sendmmsg", errno)
			}
			sent += int(r)
		}
		sendBufs.Put(b)
		done += n
		if rerr != nil {
			return done, rerr
		}
	}
	return done, nil
}

// mmsgSend holds one sendmmsg's headers, addresses and packets.
type mmsgSend struct {
	hdrs  [synBatch]unix.Mmsghdr
	iovs  [synBatch]unix.Iovec
	addrs [synBatch]unix.RawSockaddrInet4
	pkts  [synBatch][44]byte
}

var sendBufs = sync.Pool{New: func() any {
	b := new(mmsgSend)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.pkts[i][0]
		b.iovs[i].SetLen(len(b.pkts[i]))
		b.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.addrs[i]))
		b.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}}

func (s *SYNSocket) send6(dst netip.AddrPort, sport uint16, seq uint32) error {
	a := dst.Addr()
	if s.h.fd6 < 0 {
		return fmt.Errorf("no raw IPv6 socket for %s", a)
	}
	var pkt [24]byte
	tcpSyn(pkt[:], sport, dst.Port(), seq)
	return unix.Sendto(s.h.fd6, pkt[:], 0, &unix.SockaddrInet6{Addr: a.As16(), ZoneId: zoneIndex(a.Zone())})
}

func zoneIndex(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}

// Read calls fn for every SYN-ACK and RST queued for the source ports — from is the
// peer, sport the source port the SYN came from, ack the segment's acknowledgement
// number and flags its TCP flags — waiting up to wait for the first when none is
// queued. It returns how many it read.
func (s *SYNSocket) Read(wait time.Duration, fn func(from netip.AddrPort, sport uint16, ack uint32, flags uint8)) (int, error) {
	n := s.drain(fn)
	if n > 0 || wait <= 0 {
		return n, nil
	}
	var events [2]unix.EpollEvent
	ms := int(max(wait.Milliseconds(), 1))
	if _, err := unix.EpollWait(s.epfd, events[:], ms); err != nil && err != unix.EINTR {
		return 0, os.NewSyscallError("epoll_wait", err)
	}
	return s.drain(fn), nil
}

// synBatch is how many IPv4 replies one recvmmsg reads.
const synBatch = 64

// mmsgBuf holds one recvmmsg's headers and buffers.
type mmsgBuf struct {
	hdrs [synBatch]unix.Mmsghdr
	iovs [synBatch]unix.Iovec
	bufs [synBatch][128]byte
}

var mmsgBufs = sync.Pool{New: func() any {
	b := new(mmsgBuf)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(len(b.bufs[i]))
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
	}
	return b
}}

func (s *SYNSocket) drain(fn func(from netip.AddrPort, sport uint16, ack uint32, flags uint8)) int {
	var buf [128]byte
	n := 0
	emit := func(addr netip.Addr, tcp []byte) {
		if len(tcp) < 14 {
			return
		}
		n++
		fn(netip.AddrPortFrom(addr, binary.BigEndian.Uint16(tcp[0:2])), binary.BigEndian.Uint16(tcp[2:4]),
			binary.BigEndian.Uint32(tcp[8:12]), tcp[13])
	}
	// IPv4 replies come in bursts: read them a batch per system call.
	mb := mmsgBufs.Get().(*mmsgBuf)
	for {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(s.h.fd4), uintptr(unsafe.Pointer(&mb.hdrs[0])), synBatch, unix.MSG_DONTWAIT, 0, 0)
		if errno != 0 || r == 0 {
			break
		}
		for i := range int(r) {
			if addr, tcp := ipv4Reply(mb.bufs[i][:mb.hdrs[i].Len]); tcp != nil {
				emit(netip.AddrFrom16(addr).Unmap(), tcp)
			}
		}
		if r < synBatch {
			break
		}
	}
	mmsgBufs.Put(mb)
	if s.h.fd6 >= 0 {
		for {
			m, from, err := unix.Recvfrom(s.h.fd6, buf[:], 0)
			if err != nil {
				break
			}
			if sa, ok := from.(*unix.SockaddrInet6); ok {
				emit(netip.AddrFrom16(sa.Addr), buf[:m])
			}
		}
	}
	return n
}

// Close releases the sockets and the source ports.
func (s *SYNSocket) Close() error {
	err := s.h.close()
	if cerr := unix.Close(s.epfd); err == nil && cerr != nil {
		err = os.NewSyscallError("close", cerr)
	}
	return err
}
