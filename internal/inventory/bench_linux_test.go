//go:build linux

package inventory

import (
	"context"
	"net"
	"testing"
)

// holdConns opens n established loopback connections for the benchmark's duration.
func holdConns(b *testing.B, n int) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(); s.Close() })
	}
}

// BenchmarkListeners is `portpatrol ls`: listeners with owners and established counts,
// with a fresh Inventory (cold owner cache) or a kept one (a watch tick).
// bench/ls compares the same work with ss and lsof.
func BenchmarkListeners(b *testing.B) {
	holdConns(b, 2000)
	ctx := context.Background()
	f := Filter{Owners: true, Established: true}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			if _, err := New(Config{}).Listeners(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		inv := New(Config{})
		for b.Loop() {
			if _, err := inv.Listeners(ctx, f); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSocketsAll is `portpatrol ls --all --tcp`: every TCP socket with owners.
func BenchmarkSocketsAll(b *testing.B) {
	holdConns(b, 2000)
	ctx := context.Background()
	for b.Loop() {
		if _, err := New(Config{}).Sockets(ctx, Filter{Proto: TCP, Owners: true}); err != nil {
			b.Fatal(err)
		}
	}
}
