package probe

import (
	"context"

	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestOverridesNameWhatTheTargetChanges(t *testing.T) {
	tests := []struct {
		target string
		module Module
		want   []string
	}{
		{"tcp://127.0.0.1:6379", Module{}, nil},
		{"tcp://127.0.0.1:6379?timeout=1s&warn=10ms&handshake=full", Module{}, nil},
		{"tcp://127.0.0.1:6379?send=CONFIG%20GET%20*&expect=.", Module{}, []string{"expect", "send"}},
		{"tcp://127.0.0.1:443?tls=true&servername=x&insecure=true&close=graceful", Module{}, []string{"close", "insecure", "servername", "tls"}},
		{"http://127.0.0.1:80/?method=DELETE&header=Authorization:%20x&status=200&body=ok", Module{}, []string{"header", "method"}},
		// An http URL's own query is the target's, sent as it is.
		{"http://127.0.0.1:80/search?q=port&full=1", Module{}, nil},
		{"http://u:p@127.0.0.1:80/", Module{}, []string{"userinfo"}},
		{"redis://:secret@127.0.0.1:6379?role=master", Module{}, []string{"userinfo"}},
		{"postgres://127.0.0.1:5432/other", Module{}, []string{"path"}},
		{"postgres://127.0.0.1:5432?sslmode=disable", Module{}, []string{"sslmode"}},
		{"grpc://127.0.0.1:50051/pkg.Svc", Module{}, []string{"path"}},
		{"dns://127.0.0.1:53?name=example.org&type=A&rcode=NOERROR", Module{}, []string{"name", "type"}},
		{"udp://127.0.0.1:53?send=x", Module{}, []string{"send"}},
		{"smtp://127.0.0.1:25?ehlo=x", Module{}, []string{"ehlo"}},
		{"mqtt://127.0.0.1:1883?client_id=x", Module{}, []string{"client_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			got := build(t, tt.target, tt.module, &Env{}).Overrides()
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestProbeTimeoutIsTheTargetsOption(t *testing.T) {
	tests := []struct {
		target string
		module Module
		want   time.Duration
	}{
		{"tcp://127.0.0.1:1", Module{}, DefaultTimeout},
		{"tcp://127.0.0.1:1", Module{Timeout: 2 * time.Second}, 2 * time.Second},
		{"tcp://127.0.0.1:1?timeout=100000h", Module{Timeout: 2 * time.Second}, 100000 * time.Hour},
	}
	for _, tt := range tests {
		if got := build(t, tt.target, tt.module, &Env{}).Timeout(); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.target, got, tt.want)
		}
	}
}

// acceptCounter is a loopback listener that counts the connections it accepts.
type acceptCounter struct {
	ln       net.Listener
	accepted chan net.Conn
}

func newAcceptCounter(t *testing.T) *acceptCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCounter{ln: ln, accepted: make(chan net.Conn, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(a.accepted)
				return
			}
			a.accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		for c := range a.accepted {
			c.Close()
		}
	})
	return a
}

func (a *acceptCounter) addr() string { return a.ln.Addr().String() }

// Env.Allow is asked before any packet: a refused address never sees a connection,
// whether the target is an address (the connect fast path), a dialogue, or an http
// URL.
func TestEnvAllowRefusesBeforeConnecting(t *testing.T) {
	deny := func(ap netip.AddrPort) error { return fmt.Errorf("%s is not allowed", ap.Addr()) }
	for _, tt := range []struct{ name, target string }{
		{"connect", "tcp://%s"},
		{"connect full", "tcp://%s?handshake=full"},
		{"dialogue", "tcp://%s?send=PING&expect=PONG"},
		{"http", "http://%s/"},
		{"redis", "redis://%s"},
		{"memcached", "memcached://%s"},
		{"prometheus", "prometheus://%s"},
		{"name", "tcp://localhost:%s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newAcceptCounter(t)
			target := fmt.Sprintf(tt.target, a.addr())
			if tt.name == "name" {
				_, port, _ := net.SplitHostPort(a.addr())
				target = fmt.Sprintf(tt.target, port)
			}
			res := runProbe(t, target, Module{Timeout: time.Second}, &Env{Allow: deny})
			if res.Class != patrol.ClassError || !strings.Contains(res.Error, "is not allowed") {
				t.Errorf("got %s %q, want error naming the refusal", res.Class, res.Error)
			}
			select {
			case c := <-a.accepted:
				c.Close()
				t.Errorf("the refused address accepted a connection from %s", c.RemoteAddr())
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// silentServer accepts connections, reads what they send and never answers; it
// reports on gone when a connection's peer closes it (EOF or reset).
func silentServer(t *testing.T) (addr string, accepted <-chan struct{}, gone <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	acc, g := make(chan struct{}, 8), make(chan struct{}, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			acc <- struct{}{}
			go func() {
				defer c.Close()
				_, _ = io.Copy(io.Discard, c)
				g <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), acc, g
}

// Cancelling a run closes its connection at once, whatever the prober is waiting for:
// a caller that goes away must not leave a descriptor open until the target speaks.
func TestEveryProberClosesItsConnectionWhenCancelled(t *testing.T) {
	targets := []string{
		"tcp://%s?send=PING&expect=PONG",
		"tcp://%s?expect=banner",
		"tls://%s",
		"http://%s/",
		"https://%s/",
		"dns://%s?transport=tcp&name=example.org",
		"redis://%s",
		"mysql://%s",
		"postgres://%s?sslmode=disable",
		"ssh://%s",
		"smtp://%s",
		"grpc://%s",
		"nats://%s",
		"amqp://%s",
		"mqtt://%s",
	}
	for _, tmpl := range targets {
		name := strings.SplitN(tmpl, ":", 2)[0]
		t.Run(name+strings.TrimPrefix(tmpl, name+"://%s"), func(t *testing.T) {
			addr, accepted, gone := silentServer(t)
			p := build(t, fmt.Sprintf(tmpl, addr), Module{Timeout: time.Hour}, &Env{})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan patrol.Result, 1)
			go func() { done <- p.Run(ctx) }()
			select {
			case <-accepted:
			case <-time.After(5 * time.Second):
				cancel()
				t.Fatal("the probe never connected")
			}
			time.Sleep(50 * time.Millisecond) // let it send and start waiting
			cancel()
			select {
			case <-gone:
			case <-time.After(2 * time.Second):
				t.Fatal("the target's connection was still open 2s after the run was cancelled")
			}
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatal("Run did not return within 2s of the cancel")
			}
		})
	}
}
