package probe

import (
	"fmt"
	"net"
	"syscall"
)

// setDontFragment sets DF on the IPv4 packets of pc, a raw socket: path MTU
// discovery "do" makes the kernel refuse to fragment, as blackbox's dont_fragment.
func setDontFragment(pc net.PacketConn) error {
	sc, ok := pc.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no file descriptor", pc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DO)
	}); err != nil {
		return err
	}
	return serr
}
