//go:build linux

package main

import (
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// connectFloor is the kernel's own connect and close, the anchor of the full-connect
// check: the same syscalls the check makes (socket, connect until the loopback
// handshake is done, SO_LINGER 0, close) against the same listeners at the same rate,
// in batches as the scheduler starts them, with nothing else around them: no
// scheduler, no result, no classification. It runs warmup plus duration and returns
// the CPU per connect of the measured part and the connects that failed.
func connectFloor(addrs []string, rate int, warmup, duration time.Duration) (cpu time.Duration, n, failed int64, err error) {
	type target struct {
		family int
		sa     unix.Sockaddr
	}
	ts := make([]target, len(addrs))
	for i, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return 0, 0, 0, err
		}
		if ap.Addr().Is4() {
			ts[i] = target{unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}}
		} else {
			ts[i] = target{unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}}
		}
	}
	connect := func(t target) bool {
		fd, err := unix.Socket(t.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return false
		}
		defer func() {
			_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			unix.Close(fd)
		}()
		err = unix.Connect(fd, t.sa)
		if err == unix.EINPROGRESS {
			err = unix.Connect(fd, t.sa)
		}
		if err == unix.EALREADY || err == unix.EINPROGRESS { // not answered at once: wait
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(pfd, 1000); err != nil {
				return false
			}
			soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			return err == nil && soErr == 0
		}
		return err == nil || err == unix.EISCONN
	}
	const tick = 10 * time.Millisecond
	batch := max(1, rate*int(tick/time.Millisecond)/1000)
	next := 0
	run := func(d time.Duration) (int64, int64) {
		var done, bad int64
		tk := time.NewTicker(tick)
		defer tk.Stop()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			<-tk.C
			for range batch {
				if !connect(ts[next%len(ts)]) {
					bad++
				}
				next++
				done++
			}
		}
		return done, bad
	}
	run(warmup)
	cpu0 := cpuTime()
	n, failed = run(duration)
	cpu = cpuTime() - cpu0
	if n == 0 {
		return 0, 0, 0, fmt.Errorf("no connects in %s", duration)
	}
	return cpu / time.Duration(n), n, failed, nil
}
