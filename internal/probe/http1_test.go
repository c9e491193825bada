package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// viaTransport builds target's probe with HTTP/1.1 going through net/http's
// Transport, the path the lean transport replaced, for comparison.
func viaTransport(t *testing.T, target string, m Module, env *Env) *Probe {
	t.Helper()
	pr := build(t, target, m, env)
	tg, err := patrol.ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	q := newOptions(tg)
	q.duration("timeout") // read by New, not sent
	q.duration("warn")
	hp, err := buildHTTP(tg, &m, env, q)
	if err != nil {
		t.Fatal(err)
	}
	hp.viaTransport = true
	std := *pr
	std.run = func(ctx context.Context, res *patrol.Result) { hp.run(ctx, env, res) }
	return &std
}

// comparable is what two runs of the same probe against the same server must agree
// on: everything but times and the final URL's port-independent parts.
type comparable struct {
	Class      patrol.Class
	Error      string
	Phases     []string
	HTTP       *patrol.HTTPInfo
	TLS        bool
	Verified   bool
	RemoteAddr string
	Details    map[string]string
}

func comparableOf(r patrol.Result) comparable {
	c := comparable{Class: r.Class, Error: r.Error, HTTP: r.HTTP, RemoteAddr: r.RemoteAddr, Details: r.Details}
	for _, p := range r.Phases {
		c.Phases = append(c.Phases, p.Name)
	}
	if r.TLS != nil {
		c.TLS, c.Verified = true, r.TLS.Verified
	}
	return c
}

// rawHTTP serves every connection by reading the request header and writing answer,
// then closing (after hold, when set).
func rawHTTP(t *testing.T, answer string, hold time.Duration) string {
	t.Helper()
	return serveTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		_, _ = io.WriteString(c, answer)
		if hold > 0 {
			_ = c.SetReadDeadline(time.Now().Add(hold))
			_, _ = io.Copy(io.Discard, c)
		}
	})
}

// TestHTTPLeanMatchesTransport runs every case through the lean transport and through
// net/http's Transport and wants the same result from both, and the expected class.
func TestHTTPLeanMatchesTransport(t *testing.T) {
	leakCheck(t)
	var hits atomic.Int64
	srv := httptest.NewServer(testMux(&hits))
	t.Cleanup(srv.Close)
	base := srv.URL
	ca := newCA(t, "Patrol Test CA")
	tlsSrv := httptest.NewUnstartedServer(testMux(&hits))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.validCert(t)}}
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	trusted := func() *Env { return &Env{RootCAs: ca.pool} }

	var seen atomic.Value
	echoRaw := serveTCP(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := br.ReadString('\n')
			req.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		seen.Store(req.String())
		_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
	})
	bigHeader := "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("h", 70<<10) + "\r\n\r\n"

	tests := []struct {
		name   string
		target string
		module Module
		env    func() *Env
		class  patrol.Class
	}{
		{"ok", base + "/", Module{}, nil, patrol.ClassOK},
		{"503", base + "/down", Module{}, nil, patrol.ClassProtocol},
		{"redirect followed", base + "/moved", Module{}, nil, patrol.ClassOK},
		{"redirect not followed", base + "/moved", Module{HTTP: HTTPModule{NoFollowRedirects: boolp(true)}}, nil, patrol.ClassProtocol},
		{"redirect loop", base + "/loop", Module{}, nil, patrol.ClassProtocol},
		{"put with body and headers", base + "/echo?method=PUT&header=X-Test:yes&header=Host:svc.test&body=method=PUT%20x-test=yes%20host=svc.test%20ua=portpatrol%20body=payload",
			Module{HTTP: HTTPModule{Body: "payload"}}, nil, patrol.ClassOK},
		{"basic auth", "http://ops:s3cret@" + strings.TrimPrefix(base, "http://") + "/auth?body=basic", Module{}, nil, patrol.ClassOK},
		{"bearer", base + "/auth?body=bearer", Module{HTTP: HTTPModule{BearerToken: "tok3n"}}, nil, patrol.ClassOK},
		{"body limit exceeded", base + "/big", Module{HTTP: HTTPModule{BodySizeLimit: 1000}}, nil, patrol.ClassProtocol},
		{"body read whole", base + "/big?body=^a%2B$", Module{}, nil, patrol.ClassOK},
		{"gzip", base + "/gzip?body=^compressed%20hello$", Module{HTTP: HTTPModule{Compression: "gzip"}}, nil, patrol.ClassOK},
		{"header rule", base + "/", Module{HTTP: HTTPModule{FailIfHeaderMatchesRegexp: []HeaderMatch{{Header: "X-Version", Regexp: `^1\.4`}}}}, nil, patrol.ClassProtocol},
		{"head", base + "/?method=HEAD", Module{}, nil, patrol.ClassOK},
		{"hang", base + "/hang?timeout=200ms", Module{}, nil, patrol.ClassTimeout},
		{"closed port", "http://" + closedTCPAddr(t) + "/", Module{}, nil, patrol.ClassRefused},
		{"not HTTP", "http://" + rawHTTP(t, "SSH-2.0-OpenSSH_9.6\r\n", 0) + "/", Module{}, nil, patrol.ClassProtocol},
		{"closed without answer", "http://" + rawHTTP(t, "", 0) + "/", Module{}, nil, patrol.ClassReset},
		{"truncated header", "http://" + rawHTTP(t, "HTTP/1.1 200 OK\r\nContent-Ty", 0) + "/", Module{}, nil, patrol.ClassProtocol},
		{"truncated body", "http://" + rawHTTP(t, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", 0) + "/", Module{}, nil, patrol.ClassReset},
		{"header over 64 KiB", "http://" + rawHTTP(t, bigHeader, time.Second) + "/", Module{}, nil, patrol.ClassProtocol},
		{"silent", "http://" + rawHTTP(t, "", time.Second) + "/?timeout=200ms", Module{}, nil, patrol.ClassTimeout},
		{"1xx skipped", "http://" + rawHTTP(t, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0) + "/?body=^ok$", Module{}, nil, patrol.ClassOK},
		{"chunked", "http://" + rawHTTP(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 0) + "/?body=^ok$", Module{}, nil, patrol.ClassOK},
		{"HTTP/1.0 to the close", "http://" + rawHTTP(t, "HTTP/1.0 200 OK\r\n\r\nuntil close", 0) + "/?body=close$", Module{}, nil, patrol.ClassOK},
		{"redirect to another scheme", "http://" + rawHTTP(t, "HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n", 0) + "/", Module{}, nil, patrol.ClassProtocol},
		{"redirect without host", "http://" + rawHTTP(t, "HTTP/1.1 302 Found\r\nLocation: http:///x\r\nContent-Length: 0\r\n\r\n", 0) + "/", Module{}, nil, patrol.ClassProtocol},
		{"https trusted", tlsSrv.URL + "/", Module{}, trusted, patrol.ClassOK},
		{"https untrusted", tlsSrv.URL + "/", Module{}, nil, patrol.ClassTLS},
		{"fail_if_ssl", tlsSrv.URL + "/", Module{HTTP: HTTPModule{FailIfSSL: true}}, trusted, patrol.ClassProtocol},
		{"fail_if_not_ssl", base + "/", Module{HTTP: HTTPModule{FailIfNotSSL: true}}, nil, patrol.ClassProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newEnv := tt.env
			if newEnv == nil {
				newEnv = func() *Env { return &Env{} }
			}
			lean := build(t, tt.target, tt.module, newEnv()).Run(context.Background())
			std := viaTransport(t, tt.target, tt.module, newEnv()).Run(context.Background())
			if lean.Class != tt.class {
				t.Errorf("lean: got %s (%s), want %s", lean.Class, lean.Error, tt.class)
			}
			if diff := cmp.Diff(comparableOf(std), comparableOf(lean)); diff != "" {
				t.Errorf("lean transport differs from net/http's Transport (-Transport +lean):\n%s", diff)
			}
		})
	}

	// The request on the wire: the same header lines from both paths.
	var wire [2]string
	for i, mk := range []func(*testing.T, string, Module, *Env) *Probe{build, viaTransport} {
		res := mk(t, "http://"+echoRaw+"/p?q=1&header=X-A:b", Module{HTTP: HTTPModule{BasicAuth: &BasicAuth{Username: "u", Password: "p"}}}, &Env{}).Run(context.Background())
		wantResult(t, res, patrol.ClassOK)
		wire[i], _ = seen.Load().(string)
	}
	lines := func(s string) []string { l := strings.Split(s, "\r\n"); slices.Sort(l); return l }
	if diff := cmp.Diff(lines(wire[1]), lines(wire[0])); diff != "" {
		t.Errorf("request lines differ (-Transport +lean):\n%s", diff)
	}
	if !strings.HasPrefix(wire[0], "GET /p?q=1 HTTP/1.1\r\n") || !strings.Contains(wire[0], "Connection: close\r\n") {
		t.Errorf("got request %q, want GET /p?q=1 HTTP/1.1 with Connection: close", wire[0])
	}
}

// TestHTTPLeanCancel checks that cancelling a run ends a lean exchange at once, as
// Transport ends its own, with the same result.
func TestHTTPLeanCancel(t *testing.T) {
	leakCheck(t)
	addr := rawHTTP(t, "", 5*time.Second)
	var got [2]comparable
	for i, mk := range []func(*testing.T, string, Module, *Env) *Probe{build, viaTransport} {
		p := mk(t, "http://"+addr+"/?timeout=10s", Module{}, &Env{})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		t0 := time.Now()
		res := p.Run(ctx)
		cancel()
		if d := time.Since(t0); d > 2*time.Second {
			t.Errorf("path %d: took %s after cancel, want it to stop at once", i, d)
		}
		// Connected, then cancelled: the request was under way (see httpProbe.fail).
		if res.Class != patrol.ClassProtocol || !strings.HasSuffix(res.Error, ": context canceled") {
			t.Errorf("path %d: got %s (%s), want protocol context canceled", i, res.Class, res.Error)
		}
		got[i] = comparableOf(res)
	}
	if diff := cmp.Diff(got[1], got[0]); diff != "" {
		t.Errorf("lean transport differs from net/http's Transport (-Transport +lean):\n%s", diff)
	}
}

// BenchmarkHTTPProbe is CPU and allocations of one plain-HTTP probe against a
// loopback server in this process (the server's share included), on each path.
func BenchmarkHTTPProbe(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "status: healthy\n")
	}))
	b.Cleanup(srv.Close)
	for _, path := range []string{"lean", "transport"} {
		b.Run(path, func(b *testing.B) {
			tg, err := patrol.ParseTarget(srv.URL + "/")
			if err != nil {
				b.Fatal(err)
			}
			env := &Env{}
			b.Cleanup(func() { env.Close() })
			pr, err := New(tg, Module{}, env)
			if err != nil {
				b.Fatal(err)
			}
			if path == "transport" {
				hp, err := buildHTTP(tg, &Module{}, env, newOptions(tg))
				if err != nil {
					b.Fatal(err)
				}
				hp.viaTransport = true
				pr.run = func(ctx context.Context, res *patrol.Result) { hp.run(ctx, env, res) }
			}
			b.ReportAllocs()
			for b.Loop() {
				if r := pr.Run(context.Background()); !r.Up() {
					b.Fatal(r.String())
				}
			}
		})
	}
}
