//go:build linux

package intrusion

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// HostAddrsIn returns the interface addresses of the network namespace at path
// netns, or of this process's when netns is "".
func HostAddrsIn(netns string) ([]netip.Addr, error) {
	if netns == "" {
		return HostAddrs()
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread enters the namespace and is never returned to the pool: it ends
		// with this goroutine.
		runtime.LockOSThread()
		f, err := os.Open(netns)
		if err != nil {
			ch <- result{err: fmt.Errorf("network namespace: %w", err)}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("enter network namespace %s: %w", netns, err)}
			return
		}
		a, err := HostAddrs()
		ch <- result{a, err}
	}()
	r := <-ch
	return r.addrs, r.err
}
