package probe

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// serveUDP answers every datagram with reply(datagram), or stays silent when reply
// returns nil, and returns the loopback address.
func serveUDP(t *testing.T, reply func([]byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(buf[:n]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func TestUDP(t *testing.T) {
	leakCheck(t)
	echo := serveUDP(t, func(b []byte) []byte { return append([]byte("echo:"), b...) })
	pong := serveUDP(t, func(b []byte) []byte {
		if bytes.Equal(b, []byte("ping\n\x00")) {
			return []byte("pong")
		}
		return []byte("what?")
	})
	silent := serveUDP(t, func([]byte) []byte { return nil })
	closed := closedUDPAddr(t)

	tests := []struct {
		name      string
		target    string
		module    Module
		class     patrol.Class
		fragments []string
		reply     string
	}{
		{name: "send and expect", target: "udp://" + pong + `?send=ping\n\x00&expect=^pong$`, class: patrol.ClassOK, reply: `"pong"`},
		{name: "module send and expect", target: "udp://" + pong, module: Module{UDP: UDPModule{Send: `ping\n\x00`, Expect: "^pong$"}}, class: patrol.ClassOK},
		{name: "mismatch", target: "udp://" + pong + "?send=hello&expect=^pong$", class: patrol.ClassProtocol,
			fragments: []string{`reply "what?" does not match "^pong$"`}},
		{name: "any reply to a send", target: "udp://" + echo + "?send=hi", class: patrol.ClassOK, reply: `"echo:hi"`},
		{name: "bare probe gets a reply", target: "udp://" + echo, class: patrol.ClassOK, reply: `"echo:"`},
		{name: "closed port with send is refused", target: "udp://" + closed + "?send=ping&expect=pong", class: patrol.ClassRefused,
			fragments: []string{"refused"}},
		{name: "closed port bare is refused", target: "udp://" + closed, class: patrol.ClassRefused},
		{name: "silence with expect times out", target: "udp://" + silent + "?send=ping&expect=pong&timeout=200ms", class: patrol.ClassTimeout},
		{name: "silence bare is open", target: "udp://" + silent + "?timeout=300ms", class: patrol.ClassOK, reply: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runProbe(t, tt.target, tt.module, &Env{})
			wantResult(t, res, tt.class, tt.fragments...)
			if tt.reply != "" {
				if got := res.Details["reply"]; got != tt.reply {
					t.Errorf("got reply detail %q, want %q", got, tt.reply)
				}
			}
		})
	}

	t.Run("silence detail", func(t *testing.T) {
		res := runProbe(t, "udp://"+silent+"?timeout=300ms", Module{}, &Env{})
		if got := res.Details["reply"]; !strings.Contains(got, "open, or filtered") {
			t.Errorf("got reply detail %q, want it to say open, or filtered", got)
		}
	})
}

func TestUDPOptionErrors(t *testing.T) {
	for _, tt := range []struct{ name, target, fragment string }{
		{"bad expect", "udp://127.0.0.1:1?expect=(", "udp.expect"},
		{"unknown option", "udp://127.0.0.1:1?payload=x", "unknown option payload"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := buildErr(t, tt.target, Module{})
			if err == nil || !strings.Contains(err.Error(), tt.fragment) {
				t.Errorf("got error %v, want one containing %q", err, tt.fragment)
			}
		})
	}
}
