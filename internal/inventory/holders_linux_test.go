package inventory

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
)

func TestHoldersSeeTheListenerItsOwnerAndItsConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ap := netip.MustParseAddrPort(ln.Addr().String())
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	inv := New(Config{})
	hs, err := inv.Holders(context.Background(), netip.Addr{}, ap.Port())
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 {
		t.Fatalf("got %d holders of port %d, want 1: %+v", len(hs), ap.Port(), hs)
	}
	h := hs[0]
	if h.Owner == nil || h.Owner.PID != os.Getpid() {
		t.Errorf("owner %+v, want this process (pid %d)", h.Owner, os.Getpid())
	}
	if h.Resources == nil {
		t.Error("no resources for this process")
	}
	if len(h.Connections) != 1 || h.Connections[0].Remote.String() != c.LocalAddr().String() {
		t.Errorf("connections %+v, want the one from %s", h.Connections, c.LocalAddr())
	}
	// An address the listener does not cover: none.
	if hs, err := inv.Holders(context.Background(), netip.MustParseAddr("127.0.0.2"), ap.Port()); err != nil || len(hs) != 0 {
		t.Errorf("127.0.0.2:%d: got %d holders (%v), want none", ap.Port(), len(hs), err)
	}
	// By process and user.
	name, uid := h.Owner.Command, strconv.Itoa(os.Getuid())
	for _, tc := range []struct {
		process, user string
		want          bool
	}{{"", "", true}, {name, "", true}, {name[:2], uid, true}, {"no-such-process", "", false}, {"", "no-such-user", false}} {
		if got := h.OwnedBy(tc.process, tc.user); got != tc.want {
			t.Errorf("OwnedBy(%q, %q) = %v, want %v", tc.process, tc.user, got, tc.want)
		}
	}
}
