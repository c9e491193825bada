//go:build linux

package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// connectOnly checks that ap accepts a TCP connection and closes it at once with a
// reset, using raw non-blocking syscalls: socket, connect (twice on loopback, where the
// kernel has the answer by the second call), setsockopt(SO_LINGER 0), close. A bare
// connect check is the most frequent probe there is, and net.Dialer spends as much
// again in poller registration, socket options and address lookups as the kernel
// spends on the handshake itself. A connect the kernel cannot answer at once waits in
// p's epoll set until ctx is done. Without p (a nil or closed Env) it connects through
// net.Dialer, which needs nothing of the Env's.
func connectOnly(ctx context.Context, ap netip.AddrPort, p *poller) error {
	if !p.acquire() {
		return dialReset(ctx, ap)
	}
	defer p.release()
	sa := makeRawSockaddr(ap)
	fd, err := unix.Socket(sa.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer closeReset(fd)
	err = sa.connect(fd)
	for err == unix.EINPROGRESS || err == unix.EALREADY || err == unix.EINTR {
		err = sa.connect(fd)
		if err == unix.EALREADY || err == unix.EINPROGRESS {
			if werr := p.wait(ctx, fd); werr != nil {
				return werr
			}
			var soErr int
			soErr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soErr != 0 {
				err = unix.Errno(soErr)
			}
			if err == nil {
				err = sa.connect(fd)
			}
		}
	}
	return p.connected(fd, ap, err)
}

// tryConnect is connectOnly for a caller that cannot wait: the scheduler's loop. It
// connects to ap only when ap is a loopback address, where the kernel completes the
// handshake (or refuses it) within the connect calls themselves, and reports done
// false when it did not: ap is not on loopback, p is closed, or the listener's accept
// queue is full and its SYN went unanswered. Then the socket is closed before a
// handshake was made (a socket closed in SYN_SENT sends nothing), and nothing is left
// behind for connectOnly, which starts over and waits.
func tryConnect(ap netip.AddrPort, p *poller) (done bool, err error) {
	if !ap.Addr().IsLoopback() || !p.acquire() {
		return false, nil
	}
	defer p.release()
	sa := makeRawSockaddr(ap)
	fd, err := unix.Socket(sa.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return true, os.NewSyscallError("socket", err)
	}
	err = sa.connect(fd)
	if err == unix.EINPROGRESS || err == unix.EINTR {
		err = sa.connect(fd)
	}
	if err == unix.EALREADY || err == unix.EINPROGRESS || err == unix.EINTR {
		unix.Close(fd)
		return false, nil
	}
	err = p.connected(fd, ap, err)
	closeReset(fd)
	return true, err
}

// connected turns the last connect's error on fd into the check's: nil once the
// connection is made (EISCONN), and refused for a loopback socket that met itself.
func (p *poller) connected(fd int, ap netip.AddrPort, err error) error {
	if err == unix.EISCONN {
		err = nil
	}
	if err != nil {
		return os.NewSyscallError("connect", err)
	}
	if ap.Addr().IsLoopback() && p.maySelfConnect(ap.Port()) && selfConnected(fd, ap.Port()) {
		// A connect from an ephemeral port to the same port of the same address meets
		// itself (TCP simultaneous open) although nothing listens there.
		return os.NewSyscallError("connect", unix.ECONNREFUSED)
	}
	return nil
}

// closeReset closes a connected fd with a reset: no TIME_WAIT on the prober.
func closeReset(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	unix.Close(fd)
}

// rawSockaddr is an address in the kernel's own form, for connect(2) without the
// allocation a unix.Sockaddr costs on every call.
type rawSockaddr struct {
	family int
	len    uintptr
	raw    [unsafe.Sizeof(unix.RawSockaddrInet6{})]byte
}

func makeRawSockaddr(ap netip.AddrPort) (sa rawSockaddr) {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		r.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r.Port))[:], ap.Port())
		r.Addr = a.Unmap().As4()
		sa.family, sa.len = unix.AF_INET, unix.SizeofSockaddrInet4
		return
	}
	r := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
	r.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r.Port))[:], ap.Port())
	r.Addr = ap.Addr().As16()
	sa.family, sa.len = unix.AF_INET6, unix.SizeofSockaddrInet6
	return
}

// connect calls connect(2) on fd; its error is a bare unix.Errno, or nil.
func (sa *rawSockaddr) connect(fd int) error {
	_, _, e := unix.Syscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa.raw)), sa.len)
	if e != 0 {
		return e
	}
	return nil
}

// selfConnected reports whether fd's own port is port. It reads the address with a
// bare getsockname: unix.Getsockname allocates and, for every address, asks the
// socket's protocol with a getsockopt of its own.
func selfConnected(fd int, port uint16) bool {
	var raw [unix.SizeofSockaddrInet6]byte // sin_port and sin6_port are both bytes 2–3
	n := uint32(len(raw))
	_, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n)))
	if e != 0 || n < 4 {
		return false
	}
	return binary.BigEndian.Uint16(raw[2:4]) == port
}

// maySelfConnect reports whether a connect to port could have been given port as its
// own ephemeral source port, which only a port within the kernel's local port range
// (net.ipv4.ip_local_port_range, read at most once a second) can. Outside it the
// getsockname that would tell is skipped. When the range cannot be read, every port may.
func (p *poller) maySelfConnect(port uint16) bool {
	now := time.Now().Unix()
	r := p.portRange.Load()
	if r == nil || r.read != now {
		lo, hi := localPortRange()
		r = &portRange{read: now, lo: lo, hi: hi}
		p.portRange.Store(r)
	}
	return port >= r.lo && port <= r.hi
}

// portRange is the kernel's local port range as read at second read.
type portRange struct {
	read   int64
	lo, hi uint16
}

// localPortRange reads the kernel's local port range; on failure, every port.
func localPortRange() (lo, hi uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 65535
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 65535
	}
	l, err1 := strconv.ParseUint(f[0], 10, 16)
	h, err2 := strconv.ParseUint(f[1], 10, 16)
	if err1 != nil || err2 != nil || l > h {
		return 0, 65535
	}
	return uint16(l), uint16(h)
}

// poller waits for sockets to become writable (a connect finished) in one epoll set
// served by one goroutine, started on first use. The zero value is ready to use; close
// stops the goroutine and closes the set. It is safe for concurrent use.
type poller struct {
	// life is held for reading by every connect that may wait (acquire, release),
	// and for writing by close, which so never closes the set under a waiter.
	// closed, guarded by life, turns later connects to net.Dialer.
	life   sync.RWMutex
	closed bool

	mu      sync.Mutex // guards the fields below
	started bool
	err     error // why the set could not be made, once started
	epfd    int
	wake    int           // an eventfd in the set, written by close to stop loop
	done    chan struct{} // closed when loop has returned
	waiters map[int32]chan struct{}

	portRange atomic.Pointer[portRange] // see maySelfConnect
}

// acquire reports whether p can serve a connect, and if so holds it open until
// release. A nil poller cannot.
func (p *poller) acquire() bool {
	if p == nil {
		return false
	}
	p.life.RLock()
	if p.closed {
		p.life.RUnlock()
		return false
	}
	return true
}

func (p *poller) release() { p.life.RUnlock() }

// start makes the epoll set and starts loop; p.mu is held.
func (p *poller) start() error {
	p.started = true
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	p.epfd, p.wake = epfd, wake
	p.waiters = map[int32]chan struct{}{}
	p.done = make(chan struct{})
	go p.loop()
	return nil
}

func (p *poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			continue // EINTR
		}
		p.mu.Lock()
		for _, ev := range events[:n] {
			if int(ev.Fd) == p.wake {
				p.mu.Unlock()
				return
			}
			if ch, ok := p.waiters[ev.Fd]; ok {
				delete(p.waiters, ev.Fd)
				close(ch)
			}
		}
		p.mu.Unlock()
	}
}

// close stops loop and closes the set, once the connects in flight have returned.
func (p *poller) close() error {
	p.life.Lock()
	defer p.life.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	p.mu.Lock()
	running := p.started && p.err == nil
	p.mu.Unlock()
	if !running {
		return nil
	}
	if err := wakeUp(p.wake); err != nil {
		return fmt.Errorf("stop the connect poller: %w", err)
	}
	<-p.done
	return errors.Join(closeFD(p.wake), closeFD(p.epfd))
}

func closeFD(fd int) error {
	if err := unix.Close(fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// wait blocks until fd is writable or has an error, or ctx is done. A wake-up may be
// spurious (the fd number reused after a cancelled wait); callers re-check the socket.
// The caller holds p (acquire).
func (p *poller) wait(ctx context.Context, fd int) error {
	ch := make(chan struct{})
	p.mu.Lock()
	if !p.started {
		p.err = p.start()
	}
	if p.err != nil {
		p.mu.Unlock()
		return p.err
	}
	p.waiters[int32(fd)] = ch
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLERR | unix.EPOLLHUP | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.forget(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	select {
	case <-ch:
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		return nil
	case <-ctx.Done():
		_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		p.forget(fd)
		return ctx.Err()
	}
}

func (p *poller) forget(fd int) {
	p.mu.Lock()
	delete(p.waiters, int32(fd))
	p.mu.Unlock()
}

// connectsRaw says connectOnly makes its own syscalls here, and tryConnect can answer.
const connectsRaw = true
