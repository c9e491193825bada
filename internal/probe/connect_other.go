//go:build !linux

package probe

import (
	"context"
	"errors"
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

// halfOpener is the half-open prober, which exists only on Linux.
type halfOpener struct{}

var errHalfOpenBusy = errors.New("half-open check unavailable")

func halfOpen() (*halfOpener, error) { return nil, errors.ErrUnsupported }

// HalfOpenSupported reports whether half-open checks can run here: not on this
// system.
func HalfOpenSupported() error { return errors.ErrUnsupported }

func (*halfOpener) check(context.Context, netip.AddrPort, bool) error { return errHalfOpenBusy }

func (*halfOpener) tryLocal(netip.AddrPort) (bool, error) { return false, nil }
