package probe

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// testMux serves the paths the http tests probe.
func testMux(hits *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("X-Version", "1.4.2")
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "status: healthy\n")
	})
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "maintenance")
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "method=%s x-test=%s host=%s ua=%s body=%s", r.Method, r.Header.Get("X-Test"), r.Host, r.UserAgent(), b)
	})
	mux.HandleFunc("/auth", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); ok && u == "ops" && p == "s3cret" {
			fmt.Fprint(w, "basic ok")
			return
		}
		if r.Header.Get("Authorization") == "Bearer tok3n" {
			fmt.Fprint(w, "bearer ok")
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("a"), 10000))
	})
	mux.HandleFunc("/gzip", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			fmt.Fprint(w, "plain")
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		fmt.Fprint(zw, "compressed hello")
		zw.Close()
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	return mux
}

func boolp(b bool) *bool { return &b }

func TestHTTP(t *testing.T) {
	leakCheck(t)
	var hits atomic.Int64
	srv := httptest.NewServer(testMux(&hits))
	t.Cleanup(srv.Close)
	base := srv.URL // http://127.0.0.1:port
	closed := closedTCPAddr(t)
	garbage := serveTCP(t, func(c net.Conn) {
		c.Read(make([]byte, 4096))
		c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n\r\n"))
	})
	passFile := writeFile(t, "pass", "s3cret\n")
	tokenFile := writeFile(t, "token", "tok3n\n")

	tests := []struct {
		name      string
		target    string
		module    Module
		class     patrol.Class
		fragments []string
		status    int
		redirects int
		check     func(t *testing.T, res patrol.Result)
	}{
		{name: "ok", target: base + "/", class: patrol.ClassOK, status: 200},
		{name: "503 not allowed", target: base + "/down", class: patrol.ClassProtocol, status: 503, fragments: []string{"status 503, want 200-299"}},
		{name: "503 allowed by option", target: base + "/down?status=200,500-503", class: patrol.ClassOK, status: 503},
		{name: "valid_status_codes", target: base + "/down", module: Module{HTTP: HTTPModule{ValidStatusCodes: []int{200, 204}}},
			class: patrol.ClassProtocol, status: 503, fragments: []string{"status 503, want 200, 204"}},
		{name: "body must match option", target: base + "/?body=healthy", class: patrol.ClassOK},
		{name: "body option mismatch", target: base + "/?body=^ready", class: patrol.ClassProtocol, fragments: []string{"option body", `"^ready"`}},
		{name: "fail_if_body_matches_regexp", target: base + "/", module: Module{HTTP: HTTPModule{FailIfBodyMatchesRegexp: []string{"healthy"}}},
			class: patrol.ClassProtocol, fragments: []string{"fail_if_body_matches_regexp", "body matches"}},
		{name: "fail_if_body_not_matches_regexp", target: base + "/", module: Module{HTTP: HTTPModule{FailIfBodyNotMatchesRegexp: []string{"^status: healthy"}}},
			class: patrol.ClassOK},
		{name: "fail_if_header_matches", target: base + "/", module: Module{HTTP: HTTPModule{FailIfHeaderMatchesRegexp: []HeaderMatch{{Header: "X-Version", Regexp: `^1\.4`}}}},
			class: patrol.ClassProtocol, fragments: []string{"fail_if_header_matches", `X-Version "1.4.2"`}},
		{name: "fail_if_header_not_matches", target: base + "/", module: Module{HTTP: HTTPModule{FailIfHeaderNotMatchesRegexp: []HeaderMatch{{Header: "Content-Type", Regexp: "json"}}}},
			class: patrol.ClassProtocol, fragments: []string{"fail_if_header_not_matches", "does not match"}},
		{name: "required header missing", target: base + "/", module: Module{HTTP: HTTPModule{FailIfHeaderNotMatchesRegexp: []HeaderMatch{{Header: "X-Missing", Regexp: "."}}}},
			class: patrol.ClassProtocol, fragments: []string{"X-Missing is missing"}},
		{name: "missing header allowed", target: base + "/", module: Module{HTTP: HTTPModule{FailIfHeaderMatchesRegexp: []HeaderMatch{{Header: "X-Missing", Regexp: ".", AllowMissing: true}}}},
			class: patrol.ClassOK},
		{name: "redirect followed", target: base + "/moved", class: patrol.ClassOK, status: 200, redirects: 1,
			check: func(t *testing.T, res patrol.Result) {
				if res.HTTP.FinalURL != base+"/" {
					t.Errorf("got final URL %q, want %q", res.HTTP.FinalURL, base+"/")
				}
			}},
		{name: "no_follow_redirects", target: base + "/moved", module: Module{HTTP: HTTPModule{NoFollowRedirects: boolp(true)}},
			class: patrol.ClassProtocol, status: 302, fragments: []string{"status 302, want 200-299"},
			check: func(t *testing.T, res patrol.Result) {
				if res.Details["location"] != "/" {
					t.Errorf("got location detail %q, want /", res.Details["location"])
				}
			}},
		{name: "follow_redirects false", target: base + "/moved?status=302", module: Module{HTTP: HTTPModule{FollowRedirects: boolp(false)}}, class: patrol.ClassOK, status: 302},
		{name: "follow option overrides module", target: base + "/moved?follow=true", module: Module{HTTP: HTTPModule{NoFollowRedirects: boolp(true)}},
			class: patrol.ClassOK, status: 200, redirects: 1},
		{name: "redirect loop", target: base + "/loop", class: patrol.ClassProtocol, fragments: []string{"stopped after 10 redirects"}},
		{name: "module headers sent", target: base + "/echo?body=x-test=from-module.*ua=probe/1",
			module: Module{HTTP: HTTPModule{Headers: map[string]string{"X-Test": "from-module", "User-Agent": "probe/1"}}}, class: patrol.ClassOK},
		{name: "echo checks request", target: base + "/echo?method=PUT&header=X-Test:yes&body=method=PUT%20x-test=yes%20host=svc.test%20ua=portpatrol%20body=payload&header=Host:svc.test",
			module: Module{HTTP: HTTPModule{Body: "payload"}}, class: patrol.ClassOK},
		{name: "basic auth from password_file", target: base + "/auth?body=basic", module: Module{HTTP: HTTPModule{BasicAuth: &BasicAuth{Username: "ops", PasswordFile: passFile}}}, class: patrol.ClassOK},
		{name: "basic auth from the URL", target: "http://ops:s3cret@" + strings.TrimPrefix(base, "http://") + "/auth?body=basic", class: patrol.ClassOK},
		{name: "bearer_token_file", target: base + "/auth?body=bearer", module: Module{HTTP: HTTPModule{BearerTokenFile: tokenFile}}, class: patrol.ClassOK},
		{name: "wrong credentials", target: base + "/auth", module: Module{HTTP: HTTPModule{BearerToken: "nope"}}, class: patrol.ClassProtocol, status: 401,
			fragments: []string{"status 401"}},
		{name: "body_size_limit exceeded", target: base + "/big", module: Module{HTTP: HTTPModule{BodySizeLimit: 1000}}, class: patrol.ClassProtocol,
			fragments: []string{"body_size_limit 1000"}},
		{name: "body_size_limit respected", target: base + "/big", module: Module{HTTP: HTTPModule{BodySizeLimit: 10000}}, class: patrol.ClassOK,
			check: func(t *testing.T, res patrol.Result) {
				if res.HTTP.BodyLength != 10000 {
					t.Errorf("got body length %d, want 10000", res.HTTP.BodyLength)
				}
			}},
		{name: "gzip compression", target: base + "/gzip?body=^compressed%20hello$", module: Module{HTTP: HTTPModule{Compression: "gzip"}}, class: patrol.ClassOK},
		{name: "no compression asked", target: base + "/gzip?body=^plain$", class: patrol.ClassOK},
		{name: "fail_if_not_ssl", target: base + "/", module: Module{HTTP: HTTPModule{FailIfNotSSL: true}}, class: patrol.ClassProtocol, fragments: []string{"fail_if_not_ssl"}},
		{name: "valid_http_versions", target: base + "/", module: Module{HTTP: HTTPModule{ValidHTTPVersions: []string{"HTTP/2.0"}}}, class: patrol.ClassProtocol,
			fragments: []string{"protocol HTTP/1.1, want HTTP/2.0"}},
		{name: "closed port", target: "http://" + closed + "/", class: patrol.ClassRefused, fragments: []string{"refused"}},
		{name: "server never answers", target: base + "/hang?timeout=300ms", class: patrol.ClassTimeout},
		{name: "not HTTP", target: "http://" + garbage + "/?timeout=2s", class: patrol.ClassProtocol, fragments: []string{"malformed HTTP"}},
		{name: "slow", target: base + "/?warn=1ns", class: patrol.ClassSlow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runProbe(t, tt.target, tt.module, &Env{})
			wantResult(t, res, tt.class, tt.fragments...)
			if tt.status != 0 {
				if res.HTTP == nil {
					t.Fatalf("got no HTTP info, want status %d", tt.status)
				}
				if res.HTTP.Status != tt.status {
					t.Errorf("got status %d, want %d", res.HTTP.Status, tt.status)
				}
				if res.HTTP.Redirects != tt.redirects {
					t.Errorf("got %d redirects, want %d", res.HTTP.Redirects, tt.redirects)
				}
			}
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
}

func TestHTTPPhases(t *testing.T) {
	leakCheck(t)
	var hits atomic.Int64
	srv := httptest.NewServer(testMux(&hits))
	t.Cleanup(srv.Close)
	res := runProbe(t, srv.URL+"/moved", Module{}, &Env{})
	wantResult(t, res, patrol.ClassOK)
	var names []string
	for _, p := range res.Phases {
		names = append(names, p.Name)
	}
	if got, want := strings.Join(names, ","), "connect,processing,transfer"; got != want {
		t.Errorf("got phases %s, want %s (no dns for an IP literal, no tls for http)", got, want)
	}
	if d, _ := res.Phase("processing"); d <= 0 {
		t.Errorf("got processing %s, want > 0", d)
	}
	if res.HTTP.Proto != "HTTP/1.1" || res.HTTP.BodyLength != int64(len("status: healthy\n")) {
		t.Errorf("got proto %q body length %d, want HTTP/1.1 and %d", res.HTTP.Proto, res.HTTP.BodyLength, len("status: healthy\n"))
	}
	if !strings.HasPrefix(res.RemoteAddr, "127.0.0.1:") {
		t.Errorf("got remote address %q, want 127.0.0.1:port", res.RemoteAddr)
	}

	// A host name is resolved, and the dns phase recorded, through Env.Resolver.
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	res = runProbe(t, fmt.Sprintf("http://localhost:%d/", port), Module{HTTP: HTTPModule{IPProtocol: "ip4"}}, &Env{})
	wantResult(t, res, patrol.ClassOK)
	if _, ok := res.Phase("dns"); !ok {
		t.Errorf("got phases %v, want a dns phase for a host name", res.Phases)
	}
}

func TestHTTPEnvDial(t *testing.T) {
	leakCheck(t)
	var hits atomic.Int64
	srv := httptest.NewServer(testMux(&hits))
	t.Cleanup(srv.Close)
	var dialled atomic.Value
	env := &Env{Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialled.Store(addr)
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}}
	res := runProbe(t, "http://127.0.0.1:1/", Module{}, env)
	wantResult(t, res, patrol.ClassOK)
	if got := dialled.Load(); got != "127.0.0.1:1" {
		t.Errorf("got Env.Dial address %v, want 127.0.0.1:1", got)
	}
}

func TestHTTPS(t *testing.T) {
	leakCheck(t)
	ca := newCA(t, "Patrol Test CA")
	now := time.Now()
	var hits atomic.Int64
	start := func(cert tls.Certificate) string {
		srv := httptest.NewUnstartedServer(testMux(&hits))
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL
	}
	good := start(ca.validCert(t))
	expired := start(ca.issue(t, "old", []string{"127.0.0.1"}, now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
	wrongHost := start(ca.issue(t, "other", []string{"other.test"}, now.Add(-time.Hour), now.Add(24*time.Hour)))
	untrusted := start(newCA(t, "self").validCert(t))
	trusted := &Env{RootCAs: ca.pool}

	tests := []struct {
		name      string
		target    string
		module    Module
		env       *Env
		class     patrol.Class
		fragments []string
		reached   bool // whether the request may reach the server
	}{
		{name: "trusted", target: good + "/", env: trusted, class: patrol.ClassOK, reached: true},
		{name: "ca_file", target: good + "/", module: Module{HTTP: HTTPModule{TLSConfig: TLSConfig{CAFile: ca.pemFile}}}, class: patrol.ClassOK, reached: true},
		{name: "untrusted", target: untrusted + "/", env: trusted, class: patrol.ClassTLS, fragments: []string{"unknown authority"}},
		{name: "expired", target: expired + "/", env: trusted, class: patrol.ClassTLS, fragments: []string{`certificate "old" expired`}},
		{name: "wrong host", target: wrongHost + "/", env: trusted, class: patrol.ClassTLS, fragments: []string{`not valid for "127.0.0.1"`}},
		{name: "servername option", target: wrongHost + "/?servername=other.test", env: trusted, class: patrol.ClassOK, reached: true},
		{name: "insecure", target: untrusted + "/?insecure=true", class: patrol.ClassOK, reached: true},
		{name: "fail_if_ssl", target: good + "/", env: trusted, module: Module{HTTP: HTTPModule{FailIfSSL: true}}, class: patrol.ClassProtocol,
			fragments: []string{"fail_if_ssl"}, reached: true},
		{name: "fail_if_not_ssl satisfied", target: good + "/", env: trusted, module: Module{HTTP: HTTPModule{FailIfNotSSL: true}}, class: patrol.ClassOK, reached: true},
		{name: "http2 when asked", target: good + "/", env: trusted, module: Module{HTTP: HTTPModule{ValidHTTPVersions: []string{"HTTP/2.0"}}}, class: patrol.ClassOK, reached: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			res := runProbe(t, tt.target, tt.module, tt.env)
			wantResult(t, res, tt.class, tt.fragments...)
			if res.TLS == nil {
				t.Fatal("got no TLS info, want it")
			}
			if _, ok := res.Phase("tls"); !ok {
				t.Errorf("got phases %v, want a tls phase", res.Phases)
			}
			if got := hits.Load() - before; (got > 0) != tt.reached {
				t.Errorf("got %d requests at the server, want reached=%v (no request over an unverified connection)", got, tt.reached)
			}
			if tt.class == patrol.ClassOK {
				if res.HTTP == nil || res.HTTP.Status != 200 {
					t.Errorf("got HTTP info %+v, want status 200", res.HTTP)
				}
				if !strings.HasPrefix(res.TLS.Version, "TLS 1.") || res.TLS.DaysLeft <= 0 {
					t.Errorf("got TLS info %+v, want a version and days left", res.TLS)
				}
			}
		})
	}
}

func TestHTTPOptionErrors(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		module   Module
		fragment string
	}{
		{"bad status", "http://127.0.0.1:1/?status=2xx", Module{}, "option status"},
		{"reversed status range", "http://127.0.0.1:1/?status=299-200", Module{}, "option status"},
		{"bad body regexp", "http://127.0.0.1:1/?body=(", Module{}, "option body"},
		{"bad header option", "http://127.0.0.1:1/?header=NoColon", Module{}, "option header"},
		{"bad follow", "http://127.0.0.1:1/?follow=sometimes", Module{}, "option follow"},
		{"bad method", "http://127.0.0.1:1/?method=GE%20T", Module{}, "http.method"},
		{"bad module regexp", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{FailIfBodyMatchesRegexp: []string{"["}}}, "fail_if_body_matches_regexp[0]"},
		{"header rule without header", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{FailIfHeaderMatchesRegexp: []HeaderMatch{{Regexp: "x"}}}}, "header is required"},
		{"bad status code", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{ValidStatusCodes: []int{42}}}, "valid_status_codes"},
		{"missing password file", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{BasicAuth: &BasicAuth{Username: "u", PasswordFile: "/nonexistent"}}}, "password_file"},
		{"missing token file", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{BearerTokenFile: "/nonexistent"}}, "bearer_token_file"},
		{"basic and bearer", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{BasicAuth: &BasicAuth{Username: "u"}, BearerToken: "t"}}, "mutually exclusive"},
		{"fail_if_ssl and not ssl", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{FailIfSSL: true, FailIfNotSSL: true}}, "fail_if_ssl"},
		{"unsupported compression", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{Compression: "br"}}, "compression"},
		{"negative body limit", "http://127.0.0.1:1/", Module{HTTP: HTTPModule{BodySizeLimit: -1}}, "body_size_limit"},
		{"bad ca file", "https://127.0.0.1:1/", Module{HTTP: HTTPModule{TLSConfig: TLSConfig{CAFile: "/nonexistent"}}}, "http.tls_config.ca_file"},
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
		})
	}
}

func TestParseStatusRanges(t *testing.T) {
	rs, err := parseStatusRanges("200, 301-302,404")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := formatStatusRanges(rs), "200, 301-302, 404"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	for code, want := range map[int]bool{200: true, 301: true, 302: true, 303: false, 404: true, 500: false} {
		if got := statusOK(rs, code); got != want {
			t.Errorf("statusOK(%d): got %v, want %v", code, got, want)
		}
	}
}

func TestHTTPPassesOwnQueryToServer(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RawQuery)
	}))
	t.Cleanup(srv.Close)
	res := runProbe(t, srv.URL+"/health?full=1&status=200&timeout=2s", Module{}, &Env{})
	wantResult(t, res, patrol.ClassOK)
	if q, _ := got.Load().(string); q != "full=1" {
		t.Errorf("server got query %q, want %q (prober options must not be sent)", q, "full=1")
	}
}
