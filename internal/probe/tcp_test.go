package probe

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// pingServer answers "PONG" to "PING" and "ERR" to anything else, line by line.
func pingServer(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimSpace(line) == "PING" {
			c.Write([]byte("PONG\r\n"))
		} else {
			c.Write([]byte("ERR\r\n"))
		}
	}
}

func TestTCP(t *testing.T) {
	leakCheck(t)
	open := serveTCP(t, func(c net.Conn) { c.Read(make([]byte, 1)) })
	silent := serveTCP(t, func(c net.Conn) {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		c.Read(make([]byte, 1))
	})
	resetter := serveTCP(t, func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0)
	})
	ping := serveTCP(t, pingServer)
	banner := serveTCP(t, func(c net.Conn) {
		c.Write([]byte("220 mail.test ESMTP\r\n"))
		pingServer(c)
	})
	chatter := serveTCP(t, func(c net.Conn) {
		c.Write([]byte("hello\r\nstill not it\r\n"))
	})
	flood := serveTCP(t, func(c net.Conn) {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte(strings.Repeat("x", maxLine+1024)))
	})
	closed := closedTCPAddr(t)

	tests := []struct {
		name      string
		target    string
		module    Module
		class     patrol.Class
		fragments []string
		detail    map[string]string
	}{
		{name: "open", target: open, class: patrol.ClassOK},
		{name: "open with scheme", target: "tcp://" + open, class: patrol.ClassOK},
		{name: "closed port is refused", target: closed, class: patrol.ClassRefused, fragments: []string{"connect " + closed, "refused"}},
		{name: "silent server with expect times out", target: "tcp://" + silent + "?expect=hello&timeout=200ms", class: patrol.ClassTimeout,
			fragments: []string{`waiting for "hello"`, "timed out"}},
		{name: "server reset", target: "tcp://" + resetter + "?expect=.", class: patrol.ClassReset, fragments: []string{"reset"}},
		{name: "send and expect", target: "tcp://" + ping + "?send=PING&expect=^PONG$", class: patrol.ClassOK,
			detail: map[string]string{"expect_2": "PONG"}},
		{name: "send and expect mismatch", target: "tcp://" + ping + "?send=HELLO&expect=^PONG$&timeout=300ms", class: patrol.ClassTimeout,
			fragments: []string{`last line "ERR"`}},
		{name: "lines then close is protocol", target: "tcp://" + chatter + "?expect=^OK", class: patrol.ClassProtocol,
			fragments: []string{`last line "still not it"`}},
		{name: "endless line is protocol", target: "tcp://" + flood + "?expect=^OK", class: patrol.ClassProtocol,
			fragments: []string{"longer than"}},
		{name: "module dialogue", target: banner, module: Module{TCP: TCPModule{QueryResponse: []QueryResponse{
			{Expect: "^220 "}, {Send: "PING"}, {Expect: "^PONG"},
		}}}, class: patrol.ClassOK, detail: map[string]string{"expect_1": "220 mail.test ESMTP", "expect_3": "PONG"}},
		{name: "escaped send", target: "tcp://" + ping + `?send=PI\x4eG&expect=PONG`, class: patrol.ClassOK},
		{name: "slow over warn", target: "tcp://" + open + "?warn=1ns", class: patrol.ClassSlow, fragments: []string{"over the 1ns threshold"}},
		{name: "graceful close", target: "tcp://" + open + "?close=graceful", class: patrol.ClassOK},
		{name: "tls against plain server", target: "tcp://" + ping + "?tls=true&timeout=1s", class: patrol.ClassTLS, fragments: []string{"TLS handshake"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runProbe(t, tt.target, tt.module, &Env{})
			wantResult(t, res, tt.class, tt.fragments...)
			for k, want := range tt.detail {
				if got := res.Details[k]; got != want {
					t.Errorf("got detail %s=%q, want %q", k, got, want)
				}
			}
			if _, ok := res.Phase("connect"); !ok {
				t.Errorf("got phases %v, want a connect phase", res.Phases)
			}
			if tt.class != patrol.ClassRefused && !strings.HasPrefix(res.RemoteAddr, "127.0.0.1:") {
				t.Errorf("got remote address %q, want 127.0.0.1:port", res.RemoteAddr)
			}
		})
	}
}

func TestTCPOptionErrors(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		module   Module
		fragment string
	}{
		{"unknown option", "tcp://127.0.0.1:1?expcet=x", Module{}, "unknown option expcet"},
		{"unknown options listed with valid ones", "tcp://127.0.0.1:1?a=1&b=2", Module{}, "valid for tcp:"},
		{"bad regexp", "tcp://127.0.0.1:1?expect=(", Module{}, "expect"},
		{"bad timeout", "tcp://127.0.0.1:1?timeout=soon", Module{}, "option timeout"},
		{"negative warn", "tcp://127.0.0.1:1?warn=-1s", Module{}, "option warn"},
		{"bad bool", "tcp://127.0.0.1:1?tls=maybe", Module{}, "option tls"},
		{"bad close", "tcp://127.0.0.1:1?close=slam", Module{}, "tcp.close"},
		{"bad handshake", "tcp://127.0.0.1:1?handshake=quarter", Module{}, "want auto, half or full"},
		{"half-open with a dialogue", "tcp://127.0.0.1:1?handshake=half&send=PING", Module{}, "cannot be combined"},
		{"half-open with tls", "tls://127.0.0.1:1?handshake=half", Module{}, "cannot be combined"},
		{"bad module regexp", "tcp://127.0.0.1:1", Module{TCP: TCPModule{QueryResponse: []QueryResponse{{Expect: "["}}}}, "query_response[0]"},
		{"bad min version", "tls://127.0.0.1:1", Module{TLS: TLSConfig{MinVersion: "SSL3"}}, "min_version"},
		{"missing ca file", "tls://127.0.0.1:1", Module{TLS: TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "ca_file"},
		{"unsupported prober", "tcp://127.0.0.1:1", Module{Prober: "unix"}, `prober "unix" is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, tt.target, tt.module)
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.fragment)
			}
			if !strings.Contains(err.Error(), tt.fragment) {
				t.Errorf("got error %q, want it to contain %q", err, tt.fragment)
			}
			// The target is named once, by SetupError, so a caller can print the reason alone.
			tg, _ := patrol.ParseTarget(tt.target)
			var se *SetupError
			if !errors.As(err, &se) {
				t.Fatalf("got %T, want a *SetupError", err)
			}
			if se.Target != tg.ID || strings.Contains(se.Err.Error(), "127.0.0.1:1") {
				t.Errorf("got SetupError{Target: %q, Err: %q}, want Target %q and an Err that does not repeat it", se.Target, se.Err, tg.ID)
			}
		})
	}
}

func TestTCPEnvDial(t *testing.T) {
	leakCheck(t)
	ping := serveTCP(t, pingServer)
	var dialled string
	env := &Env{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled = addr
		var d net.Dialer
		return d.DialContext(ctx, network, ping)
	}}
	res := runProbe(t, "tcp://127.0.0.1:1?send=PING&expect=PONG", Module{}, env)
	wantResult(t, res, patrol.ClassOK)
	if dialled != "127.0.0.1:1" {
		t.Errorf("got Env.Dial address %q, want 127.0.0.1:1", dialled)
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{`a\nb`, "a\nb"},
		{`\r\n\t\\`, "\r\n\t\\"},
		{`\x00\x41`, "\x00A"},
		{`\x4g`, `\x4g`},
		{`\xzz`, `\xzz`},
		{`\q`, `\q`},
		{`end\`, `end\`},
	}
	for _, tt := range tests {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A nil Env has nothing to share: a bare check connects (the listener accepts the
// connection), offers no fast path, and handshake=half is refused.
func TestTCPNilEnv(t *testing.T) {
	leakCheck(t)
	accepted := make(chan struct{}, 1)
	addr := serveTCP(t, func(net.Conn) { accepted <- struct{}{} })
	p := build(t, "tcp://"+addr, Module{}, nil)
	if p.Try() != nil {
		t.Error("got a Try with a nil Env, want none")
	}
	wantResult(t, p.Run(context.Background()), patrol.ClassOK)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Error("the listener accepted no connection within 5s, want 1")
	}
	tg, err := patrol.ParseTarget("tcp://" + addr + "?handshake=half")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(tg, Module{}, nil); err == nil || !strings.Contains(err.Error(), "open probe environment") {
		t.Errorf("New(handshake=half) with a nil Env: got %v, want an error about the environment", err)
	}
}
