package probe

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// A full connect to a loopback address runs on the scheduler's loop (Try): it
// connects, resets and classifies as Run does, and declines, having left nothing
// behind, when the kernel cannot answer within the connect.
func TestTryConnect(t *testing.T) {
	leakCheck(t)
	env := &Env{}
	lfd, open := testsvc.RawListener(t, 16)
	closed := testsvc.ClosedPort(t)
	full := fullQueue(t)

	p := build(t, "tcp://"+open.String()+"?handshake=full", Module{}, env)
	try := p.Try()
	if try == nil {
		t.Fatal("got no Try for a full connect to loopback, want one")
	}
	res, ok := try()
	if !ok {
		t.Fatal("Try of an open loopback port: got false, want true")
	}
	wantResult(t, res, patrol.ClassOK)
	if res.RemoteAddr != open.String() || res.Target != p.ID() {
		t.Errorf("got remote %q target %q, want %q %q", res.RemoteAddr, res.Target, open, p.ID())
	}
	if _, ok := res.Phase("connect"); !ok {
		t.Error("got no connect phase, want one")
	}
	if n := accepted(lfd, 1, 5*time.Second); n != 1 {
		t.Errorf("the listener got %d connections, want 1", n)
	}

	res, ok = build(t, "tcp://"+closed+"?handshake=full", Module{}, env).Try()()
	if !ok {
		t.Fatal("Try of a closed loopback port: got false, want true")
	}
	wantResult(t, res, patrol.ClassRefused, "connect "+closed, "connection refused")
	// The same wording as a connect that Run makes.
	wantResult(t, build(t, "tcp://"+closed+"?handshake=full", Module{}, env).Run(context.Background()),
		patrol.ClassRefused, "connect "+closed, "connection refused")

	// A full accept queue drops the SYN: no answer at once, so Try declines and Run
	// waits for the deadline, as it always has.
	waits := build(t, "tcp://"+full.String()+"?handshake=full&timeout=200ms", Module{}, env)
	if res, ok := waits.Try()(); ok {
		t.Errorf("Try with a full accept queue: got true %s (%q), want false", res.Class, res.Error)
	}
	wantResult(t, waits.Run(context.Background()), patrol.ClassTimeout, "timed out")

	// Elsewhere a connect waits for the network: no Try (the probe is only built).
	if try := build(t, "tcp://192.0.2.1:80?handshake=full", Module{}, env).Try(); try != nil {
		t.Error("got a Try for a full connect to a remote address, want none")
	}

	// A closed Env has no poller: Try declines and Run connects through net.Dialer.
	if err := env.Close(); err != nil {
		t.Fatal(err)
	}
	if res, ok := try(); ok {
		t.Errorf("Try after Close: got true %s, want false", res.Class)
	}
	wantResult(t, p.Run(context.Background()), patrol.ClassOK)
}

// selfConnected reads the socket's own port; the getsockname it needs is skipped for
// ports outside the kernel's local port range, which a connect never gets as its own.
func TestSelfConnected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := netip.MustParseAddrPort(c.LocalAddr().String()).Port()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.Control(func(fd uintptr) {
		if !selfConnected(int(fd), local) {
			t.Errorf("selfConnected(fd, its own port %d): got false, want true", local)
		}
		if selfConnected(int(fd), local+1) {
			t.Errorf("selfConnected(fd, %d): got true, want false", local+1)
		}
	})

	lo, hi := localPortRange()
	if lo == 0 && hi == 65535 {
		t.Skip("the kernel's local port range is unreadable here")
	}
	if local < lo || local > hi {
		t.Errorf("an ephemeral port %d outside the local port range %d–%d", local, lo, hi)
	}
	var p poller
	if !p.maySelfConnect(lo) || !p.maySelfConnect(hi) {
		t.Errorf("maySelfConnect of the range's ends %d, %d: got false, want true", lo, hi)
	}
	if lo > 1 && p.maySelfConnect(lo-1) {
		t.Errorf("maySelfConnect(%d), below the range: got true, want false", lo-1)
	}
	if hi < 65535 && p.maySelfConnect(hi+1) {
		t.Errorf("maySelfConnect(%d), above the range: got true, want false", hi+1)
	}
}
