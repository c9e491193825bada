package probe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// openAndClosed returns a loopback address that accepts and one that refuses.
func openAndClosed(t *testing.T) (open, closed netip.AddrPort) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed = netip.MustParseAddrPort(gone.Addr().String())
	gone.Close()
	return netip.MustParseAddrPort(ln.Addr().String()), closed
}

func TestIdentifyOpenAndClosedPorts(t *testing.T) {
	open, closed := openAndClosed(t)
	env := new(Env)
	defer env.Close()
	if got := Identify(context.Background(), open, time.Second, env); got.Service != "tcp" || got.Class != patrol.ClassOK {
		t.Errorf("open port: got %+v, want tcp and ok (no scheme guessed for the port)", got)
	}
	if got := Identify(context.Background(), closed, time.Second, env); got.Class != patrol.ClassRefused {
		t.Errorf("closed port: got %+v, want class refused", got)
	}
}

func TestRunOnceProbesEachTargetOnce(t *testing.T) {
	open, closed := openAndClosed(t)
	up, err := patrol.ParseTarget("tcp://" + open.String())
	if err != nil {
		t.Fatal(err)
	}
	down, _ := patrol.ParseTarget("tcp://" + closed.String())
	odd, _ := patrol.ParseTarget("tcp://" + open.String())
	odd.Module, odd.ID = "nope", odd.ID+"#nope"
	env := new(Env)
	defer env.Close()
	res := RunOnce(context.Background(), []patrol.Target{up, down, odd}, func(name string) (Module, error) {
		return Module{}, errors.New("unknown module " + name)
	}, env, time.Second, 2)
	if len(res) != 3 {
		t.Fatalf("got %d results, want 3: %v", len(res), res)
	}
	if r := res[up.ID]; r.Class != patrol.ClassOK {
		t.Errorf("%s: got %s (%s), want ok", up.ID, r.Class, r.Error)
	}
	if r := res[down.ID]; r.Class != patrol.ClassRefused {
		t.Errorf("%s: got %s, want refused", down.ID, r.Class)
	}
	if r := res[odd.ID]; r.Class != patrol.ClassError || !strings.Contains(r.Error, "unknown module nope") {
		t.Errorf("%s: got %s %q, want error naming the module", odd.ID, r.Class, r.Error)
	}
}
