package probe

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// protoServe serves every connection to a loopback listener with handle, until the
// test ends. What the client sends is discarded; gone is closed when the client
// closes its side. It returns the listener's address.
func protoServe(t *testing.T, handle handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			gone := make(chan struct{})
			wg.Add(2)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c); close(gone) }()
			go func() { defer wg.Done(); handle(c, gone) }()
		}
	}()
	return l.Addr().String()
}

// handler serves one connection of protoServe.
type handler = func(c net.Conn, gone <-chan struct{})

// TestHostileServers runs every protocol probe against servers that send nothing,
// garbage, a truncated or an oversized message, or trickle bytes: each must end with
// protocol or timeout, within its timeout and a little slack, and never panic.
func TestHostileServers(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const slack = 400 * time.Millisecond
	random := func(c net.Conn, gone <-chan struct{}) {
		r := rand.New(rand.NewPCG(1, 2))
		b := make([]byte, 512)
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		_, _ = c.Write(b)
		<-gone
	}
	silent := func(c net.Conn, gone <-chan struct{}) { <-gone }
	trickle := func(c net.Conn, gone <-chan struct{}) {
		for range 50 {
			if _, err := c.Write([]byte{'A'}); err != nil {
				return
			}
			select {
			case <-gone:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	sendClose := func(s string) handler {
		return func(c net.Conn, _ <-chan struct{}) {
			_, _ = io.WriteString(c, s)
			// Give the client time to send its request, so it meets the truncated
			// reply and not a refused write.
			time.Sleep(50 * time.Millisecond)
			c.Close()
		}
	}
	sendHold := func(s string) handler {
		return func(c net.Conn, gone <-chan struct{}) { _, _ = io.WriteString(c, s); <-gone }
	}
	protocols := []struct {
		scheme    string
		truncated string
		oversized string
	}{
		{"redis", "$10\r\nabc", "$999999999\r\n"},
		{"mysql", "\x32\x00\x00\x00\x0a5.7.0\x00\x01", "\xff\xff\xff\x00\x0a"},
		{"postgres", "NR\x00\x00\x00\x08\x00\x00", "NE\x7f\xff\xff\xff"},
		{"ssh", "SSH-2.", strings.Repeat("A", 1000)},
		{"smtp", "220-hello\r\n220", "220-" + strings.Repeat("x", 5000)},
		{"nats", `INFO {"server_id":"x`, "INFO " + strings.Repeat("x", 70<<10)},
		{"amqp", "\x01\x00\x00\x00\x00\x00\x20\x00\x0a", "\x01\x00\x00\x7f\xff\xff\xff"},
		{"mqtt", "\x20", "\x20\xff\xff\xff\x7f"},
		{"grpc", "\x00\x00\x06\x04\x00\x00", "\xff\xff\xff\x04\x00\x00\x00\x00\x00"},
		{"http", "HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 70<<10)},
		{"prometheus", "HTTP/1.1 200 OK\r\nContent-Le", "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("x", 70<<10)},
		{"memcached", "STAT pid 1\r\nSTAT ver", "STAT " + strings.Repeat("x", 5000)},
	}
	behaviours := []struct {
		name   string
		handle func(p string, trunc, over string) handler
		want   []patrol.Class
	}{
		{"silent", func(string, string, string) handler { return silent }, []patrol.Class{patrol.ClassTimeout}},
		{"random", func(string, string, string) handler { return random }, []patrol.Class{patrol.ClassProtocol, patrol.ClassTimeout}},
		{"truncated", func(_, tr, _ string) handler { return sendClose(tr) }, []patrol.Class{patrol.ClassProtocol}},
		{"truncated-held", func(_, tr, _ string) handler { return sendHold(tr) }, []patrol.Class{patrol.ClassProtocol, patrol.ClassTimeout}},
		{"oversized", func(_, _, ov string) handler { return sendHold(ov) }, []patrol.Class{patrol.ClassProtocol}},
		{"trickle", func(string, string, string) handler { return trickle }, []patrol.Class{patrol.ClassProtocol, patrol.ClassTimeout}},
	}
	for _, p := range protocols {
		for _, b := range behaviours {
			t.Run(p.scheme+"/"+b.name, func(t *testing.T) {
				t.Parallel()
				addr := protoServe(t, b.handle(p.scheme, p.truncated, p.oversized))
				tg, err := patrol.ParseTarget(p.scheme + "://u:hostile-pw@" + addr)
				if err != nil {
					t.Fatal(err)
				}
				tg.Timeout = timeout
				pr, err := New(tg, Module{}, nil)
				if err != nil {
					t.Fatal(err)
				}
				res := pr.Run(context.Background())
				t.Logf("%s", res.String())
				ok := false
				for _, c := range b.want {
					ok = ok || res.Class == c
				}
				if !ok {
					t.Errorf("got %s (%s), want one of %v", res.Class, res.Error, b.want)
				}
				if res.Duration > timeout+slack {
					t.Errorf("took %s, want at most %s", res.Duration, timeout+slack)
				}
				if res.Error == "" {
					t.Errorf("got an empty error message")
				}
				if strings.Contains(res.Error, "hostile-pw") {
					t.Errorf("password leaked into %q", res.Error)
				}
			})
		}
	}
}
