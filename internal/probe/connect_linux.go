//go:build linux

package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"

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
	family, sa := sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer func() {
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
	}()
	err = unix.Connect(fd, sa)
	for errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.EALREADY) || errors.Is(err, unix.EINTR) {
		err = unix.Connect(fd, sa)
		if errors.Is(err, unix.EALREADY) || errors.Is(err, unix.EINPROGRESS) {
			if werr := p.wait(ctx, fd); werr != nil {
				return werr
			}
			var soErr int
			soErr, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			if err == nil && soErr != 0 {
				err = unix.Errno(soErr)
			}
			if err == nil {
				err = unix.Connect(fd, sa)
			}
		}
	}
	if errors.Is(err, unix.EISCONN) {
		err = nil
	}
	if err != nil {
		return os.NewSyscallError("connect", err)
	}
	if ap.Addr().IsLoopback() && selfConnected(fd, ap.Port()) {
		// A connect from an ephemeral port to the same port of the same address meets
		// itself (TCP simultaneous open) although nothing listens there.
		return os.NewSyscallError("connect", unix.ECONNREFUSED)
	}
	return nil
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	return unix.AF_INET6, sa
}

func selfConnected(fd int, port uint16) bool {
	local, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	switch l := local.(type) {
	case *unix.SockaddrInet4:
		return l.Port == int(port)
	case *unix.SockaddrInet6:
		return l.Port == int(port)
	}
	return false
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
