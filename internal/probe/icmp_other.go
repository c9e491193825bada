//go:build !linux

package probe

import (
	"errors"
	"net"
)

// setDontFragment is supported on Linux only.
func setDontFragment(net.PacketConn) error {
	return errors.New("dont_fragment is supported on Linux only")
}
