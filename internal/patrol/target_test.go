package patrol

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in     string
		id     string // want ID; empty means an error is expected
		scheme string
		host   string
		port   int
		path   string
		err    string // fragment of the expected error
	}{
		{in: "db.internal:5432", id: "tcp://db.internal:5432", scheme: "tcp", host: "db.internal", port: 5432},
		{in: "  10.0.0.1:22 ", id: "tcp://10.0.0.1:22", scheme: "tcp", host: "10.0.0.1", port: 22},
		{in: "[::1]:22", id: "tcp://[::1]:22", scheme: "tcp", host: "::1", port: 22},
		{in: "tcp://[2001:db8::1]:443", id: "tcp://[2001:db8::1]:443", scheme: "tcp", host: "2001:db8::1", port: 443},
		{in: "TLS://Example.com:443", id: "tls://Example.com:443", scheme: "tls", host: "Example.com", port: 443},
		{in: "http://example.com", id: "http://example.com:80", scheme: "http", host: "example.com", port: 80},
		{in: "https://example.com/healthz", id: "https://example.com:443/healthz", scheme: "https", host: "example.com", port: 443, path: "/healthz"},
		{in: "dns://127.0.0.1", id: "dns://127.0.0.1:53", scheme: "dns", host: "127.0.0.1", port: 53},
		{in: "redis://cache", id: "redis://cache:6379", scheme: "redis", host: "cache", port: 6379},
		{in: "postgresql://db", id: "postgres://db:5432", scheme: "postgres", host: "db", port: 5432},
		{in: "mariadb://db", id: "mysql://db:3306", scheme: "mysql", host: "db", port: 3306},
		{in: "ssh://bastion", id: "ssh://bastion:22", scheme: "ssh", host: "bastion", port: 22},
		{in: "redis://admin:hunter2@cache:6380", id: "redis://admin@cache:6380", scheme: "redis", host: "cache", port: 6380},
		{in: "redis://:hunter2@cache", id: "redis://cache:6379", scheme: "redis", host: "cache", port: 6379},
		{in: "tcp://h:1?send=PING&expect=PONG", id: "tcp://h:1?expect=PONG&send=PING", scheme: "tcp", host: "h", port: 1},
		{in: `tcp://h:1?expect=^\+PONG&send=a%26b`, id: `tcp://h:1?expect=^\+PONG&send=a%26b`, scheme: "tcp", host: "h", port: 1},
		{in: "h:65535", id: "tcp://h:65535", scheme: "tcp", host: "h", port: 65535},

		{in: "", err: "empty target"},
		{in: "   ", err: "empty target"},
		{in: "host name:80", err: "white space"},
		{in: "::1:22", err: "IPv6 addresses must be in brackets"},
		{in: "tcp://::1:22", err: "IPv6 addresses must be in brackets"},
		{in: "[not-ip]:22", err: "not-ip"},
		{in: "host", err: "missing port"},
		{in: "tcp://host", err: "missing port"},
		{in: "udp://host", err: "missing port"},
		{in: "host:", err: "empty port"},
		{in: "host:0", err: "out of range"},
		{in: "host:65536", err: "out of range"},
		{in: "host:http", err: "invalid target"},
		{in: "gopher://host:70", err: `unknown scheme "gopher"`},
		{in: "host:80/path", err: "missing scheme"},
		{in: "tcp://:80", err: "missing host"},
		{in: "http://host#frag", err: "fragments"},
		{in: "tcp:host:80", err: "invalid target"},
		{in: "tcp://[fe80::1%25eth0]:22", id: "tcp://[fe80::1%25eth0]:22", scheme: "tcp", host: "fe80::1%eth0", port: 22},
		{in: "http://h/a%3Fb", id: "http://h:80/a%3Fb", scheme: "http", host: "h", port: 80, path: "/a?b"},
		{in: "ssh://ops%3Aadmin@h", id: "ssh://ops%3Aadmin@h:22", scheme: "ssh", host: "h", port: 22},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.id == "" {
				if err == nil {
					t.Fatalf("got target %q, want an error containing %q", got.ID, tt.err)
				}
				var te *TargetError
				if !errors.As(err, &te) {
					t.Errorf("got error type %T, want *TargetError", err)
				}
				if !strings.Contains(err.Error(), tt.err) {
					t.Errorf("got error %q, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want target %q", err, tt.id)
			}
			if got.ID != tt.id || got.Scheme != tt.scheme || got.Host != tt.host || got.Port != tt.port || got.Path != tt.path {
				t.Errorf("got %q %s %q %d %q, want %q %s %q %d %q", got.ID, got.Scheme, got.Host, got.Port, got.Path,
					tt.id, tt.scheme, tt.host, tt.port, tt.path)
			}
		})
	}
}

func TestParseTargetPassword(t *testing.T) {
	got, err := ParseTarget("mysql://monitor:s3cr%40t@db:3306")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got.ID, "s3cr") {
		t.Errorf("got ID %q, want no password in it", got.ID)
	}
	if p, ok := got.Password(); !ok || p != "s3cr@t" {
		t.Errorf("got password %q, %v, want s3cr@t, true", p, ok)
	}
	if got, _ := ParseTarget(`tcp://h:1?expect=^\+PONG&send=a%26b`); got.Query.Get("expect") != `^\+PONG` || got.Query.Get("send") != "a&b" {
		t.Errorf("got options %v, want + kept literally and %%26 decoded", got.Query)
	}
	if p, ok := (Target{}).Password(); ok || p != "" {
		t.Errorf("got password %q, %v from a target without user, want none", p, ok)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:22", "[::1]:22", "tcp://[fe80::1%25eth0]:22", "http://example.com/a/b?x=1",
		"redis://user:pass@cache", "https://u%3Ab:p@h/p%3Fq", "dns://127.0.0.1?name=x.test",
		"::1:22", "host:", "gopher://x:1", "mysql://a@b@c:1", "tcp://h:1/%2F#x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseTarget(in)
		if err != nil {
			var te *TargetError
			if !errors.As(err, &te) {
				t.Fatalf("ParseTarget(%q): got error type %T, want *TargetError", in, err)
			}
			return
		}
		if _, ok := Schemes[got.Scheme]; !ok {
			t.Fatalf("ParseTarget(%q): got unknown scheme %q", in, got.Scheme)
		}
		if got.Host == "" || got.Port < 1 || got.Port > 65535 {
			t.Fatalf("ParseTarget(%q): got host %q port %d, want a host and a port in 1-65535", in, got.Host, got.Port)
		}
		// The password must not be in the ID's authority; the same characters may still
		// be in its path, as in http://:p@h/:p@.
		if pass, ok := got.Password(); ok && pass != "" && strings.Contains(authority(got.ID), ":"+pass+"@") {
			t.Fatalf("ParseTarget(%q): got ID %q, which shows the password", in, got.ID)
		}
		// The ID is canonical: it parses back to itself, without a password.
		again, err := ParseTarget(got.ID)
		if err != nil {
			t.Fatalf("ParseTarget(%q) = %q, which does not parse: %v", in, got.ID, err)
		}
		if again.ID != got.ID {
			t.Fatalf("ParseTarget(%q) = %q, which parses to %q", in, got.ID, again.ID)
		}
		if _, ok := again.Password(); ok {
			t.Fatalf("ParseTarget(%q) = %q, which carries a password", in, got.ID)
		}
	})
}

// TestParseTargetErrorsHidePassword: no error names the password, however the URL
// is broken, and the reason still says what is wrong.
func TestParseTargetErrorsHidePassword(t *testing.T) {
	tests := []struct {
		in     string
		secret string
		reason string // fragment of the expected error
	}{
		{"redis://user:se#cret@cache:6379", ":se", "percent-encode"},
		{"redis://user:se#cret@cache:6379", "cret", "percent-encode"},
		{"redis://user:se/cret@cache:6379", ":se", "percent-encode"},
		{"redis://user:s3cret@cache:99999", "s3cret", "out of range"},
		{"redis://user:s3cret@cache:6x", "s3cret", `invalid port ":6x"`},
		{"gopher://user:s3cret@cache:70", "s3cret", "unknown scheme"},
		{"user:s3cret@cache", "s3cret", "missing port"},
		{"redis://:s3cret@cache#x", "s3cret", "fragments"},
		{"redis://user:s3 cret@cache", "s3 ", "percent-encode"},
		{"redis://user:s3cret@[::1", "s3cret", "missing ']'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseTarget(tt.in)
			if err == nil {
				t.Fatal("got no error")
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("got error %q, which shows the password %q", err, tt.secret)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("got error %q, want it to say %q", err, tt.reason)
			}
		})
	}
}

func TestRedactPasswords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"dial redis://u:pw@h:1 failed", "dial redis://u:xxxxx@h:1 failed"},
		{`target "u:pw@h:1": not found`, `target "u:xxxxx@h:1": not found`},
		{"redis://:pw@h", "redis://:xxxxx@h"},
		{"redis://u:se#c/r?et@h", "redis://u:xxxxx@h"},
		{"redis://u@h:1", "redis://u@h:1"},
		{"tcp://h:1 and mail bob@example.com", "tcp://h:1 and mail bob@example.com"},
		{"no at sign: here", "no at sign: here"},
	}
	for _, tt := range tests {
		if got := RedactPasswords(tt.in); got != tt.want {
			t.Errorf("RedactPasswords(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseTargetPassword: however a password breaks a URL, the error shows no piece
// of it. The password is wrapped in 'Q's, which no message and no other part of the
// input contains, so a leaked prefix or suffix (":Qse" from "Qse#cretQ") shows one.
func FuzzParseTargetPassword(f *testing.F) {
	for _, s := range [][2]string{
		{"se#cret", "cache:6379"}, {"se/cret", "cache:6379"}, {"se?cret", "cache"}, {"se@cret", "cache"},
		{"s%zz", "cache"}, {"secret", "cache:99999"}, {"se cret", "cache"}, {"x", "[::1"}, {"a:b", "h:1/p?x=1#f"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pass, rest string) {
		if strings.Contains(pass+rest, "Q") {
			return
		}
		in := "redis://admin:Q" + pass + "Q@" + rest
		_, err := ParseTarget(in)
		if err != nil && strings.Contains(err.Error(), "Q") {
			t.Fatalf("ParseTarget(%q): got error %q, which shows a piece of the password", in, err)
		}
	})
}

// authority returns the part of a target ID between "scheme://" and its path, query or
// fragment: where a password would show.
func authority(id string) string {
	_, rest, ok := strings.Cut(id, "://")
	if !ok {
		return id
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}
