//go:build !linux

package probe

import (
	"context"
	"net"
	"net/netip"
)

// connectOnly checks that ap accepts a TCP connection and closes it with a reset.
func connectOnly(ctx context.Context, ap netip.AddrPort) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ap.String())
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return c.Close()
}
