//go:build !linux

package probe

import (
	"context"
	"errors"
	"net/netip"
)

// connectOnly checks that ap accepts a TCP connection and closes it with a reset.
func connectOnly(ctx context.Context, ap netip.AddrPort, _ *poller) error {
	return dialReset(ctx, ap)
}

// tryConnect connects only on Linux; elsewhere every connect goes through connectOnly.
func tryConnect(netip.AddrPort, *poller) (bool, error) { return false, nil }

// poller exists only on Linux; elsewhere connects go through net.Dialer.
type poller struct{}

func (*poller) close() error { return nil }

// halfOpener is the half-open prober, which exists only on Linux.
type halfOpener struct{}

var errHalfOpenBusy = errors.New("half-open check unavailable")

func openHalfOpener() (*halfOpener, error) { return nil, errors.ErrUnsupported }

func (*halfOpener) close() error { return nil }

func (*halfOpener) check(context.Context, netip.AddrPort, bool) error { return errHalfOpenBusy }

func (*halfOpener) tryLocal(netip.AddrPort) (bool, error) { return false, nil }

// connectsRaw says connectOnly makes its own syscalls here, and tryConnect can answer.
const connectsRaw = false
