package exporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/probe"
)

// peer is a loopback TCP server that counts its connections, answers a line with
// reply (when set) or stays silent, and reports on gone when a peer closes.
type peer struct {
	addr     string
	accepted chan struct{}
	gone     chan struct{}
}

func newPeer(t *testing.T, reply string) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{addr: ln.Addr().String(), accepted: make(chan struct{}, 64), gone: make(chan struct{}, 64)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted <- struct{}{}
			go func() {
				defer c.Close()
				if reply != "" {
					_, _ = io.WriteString(c, reply+"\n")
				}
				_, _ = io.Copy(io.Discard, c)
				p.gone <- struct{}{}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return p
}

// accepts returns how many connections the peer has accepted so far.
func (p *peer) accepts() int {
	time.Sleep(50 * time.Millisecond) // a connection in flight lands first
	return len(p.accepted)
}

// statusError is an authorisation failure with its HTTP status, as api.Server's.
type statusError int

func (e statusError) Error() string   { return http.StatusText(int(e)) }
func (e statusError) StatusCode() int { return int(e) }

// serveProbe starts a ProbeHandler with modules and allow (nil allows every
// address) and returns its /probe URL.
func serveProbe(t *testing.T, h *ProbeHandler, modules map[string]probe.Module, allow []netip.Prefix) string {
	t.Helper()
	env := &probe.Env{}
	if allow != nil {
		env.Allow = func(ap netip.AddrPort) error {
			for _, p := range allow {
				if p.Contains(ap.Addr().Unmap()) {
					return nil
				}
			}
			return fmt.Errorf("%s is not in probe.allow", ap.Addr())
		}
	}
	t.Cleanup(func() { _ = env.Close() })
	h.Modules = func() map[string]probe.Module { return modules }
	h.Env = env
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/probe"
}

func get(t *testing.T, u string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func probeQuery(target, module string, extra ...string) string {
	v := url.Values{"target": {target}, "module": {module}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return "?" + v.Encode()
}

// A scrape gets what the operator configured: options that change what is sent or
// the credentials are refused, naming them, and nothing is sent; a module that allows
// target options takes them.
func TestProbeRefusesTargetOptionsUnlessTheModuleAllowsThem(t *testing.T) {
	srv := newPeer(t, "PONG")
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.Header.Get("Authorization") != "" {
			w.WriteHeader(http.StatusTeapot) // what an option would have changed
		}
	}))
	t.Cleanup(web.Close)
	webHost := strings.TrimPrefix(web.URL, "http://")
	mods := map[string]probe.Module{
		"tcp":       {Prober: "tcp", Timeout: 2 * time.Second},
		"tcp_open":  {Prober: "tcp", Timeout: 2 * time.Second, AllowTargetOptions: true},
		"http":      {Prober: "http", Timeout: 2 * time.Second},
		"http_open": {Prober: "http", Timeout: 2 * time.Second, AllowTargetOptions: true},
	}
	base := serveProbe(t, &ProbeHandler{}, mods, nil)
	tests := []struct {
		name, target, module string
		code                 int
		want                 string
	}{
		{"send and expect", "tcp://" + srv.addr + "?send=CONFIG%20GET%20*&expect=PONG", "tcp", 400, "target option expect, send would change what module \"tcp\" sends"},
		{"send and expect allowed", "tcp://" + srv.addr + "?send=PING&expect=PONG", "tcp_open", 200, "probe_success 1"},
		{"method and header", "http://" + webHost + "/?method=DELETE&header=Authorization:%20Bearer%20x", "http", 400, "target option header, method would change"},
		{"method and header allowed", "http://" + webHost + "/?method=DELETE&header=Authorization:%20Bearer%20x", "http_open", 200, "probe_http_status_code 418"},
		{"credentials in the URL", "http://u:p@" + webHost + "/", "http", 400, "target option userinfo"},
		{"narrowing options pass", "http://" + webHost + "/?status=200&timeout=1s", "http", 200, "probe_http_status_code 200"},
		{"the URL's own query passes", "http://" + webHost + "/search?q=x", "http", 200, "probe_success 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.accepts()
			code, body := get(t, base+probeQuery(tt.target, tt.module), nil)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %q, want %d and %q", code, body, tt.code, tt.want)
			}
			if code == 400 && srv.accepts() != before {
				t.Error("a refused request still connected to the target")
			}
		})
	}
}

func TestProbeDebugNeedsAuthorisation(t *testing.T) {
	srv := newPeer(t, "")
	mods := map[string]probe.Module{"tcp_connect": {Prober: "tcp", TCP: probe.TCPModule{Handshake: "full"}}}
	tests := []struct {
		name      string
		authorize func(*http.Request) error
		code      int
		want      string
	}{
		{"no authoriser", nil, 403, "debug output: not available"},
		{"no token", func(*http.Request) error { return statusError(401) }, 401, "Unauthorized"},
		{"role too low", func(*http.Request) error { return statusError(403) }, 403, "Forbidden"},
		{"lookup failed", func(*http.Request) error { return errors.New("store down") }, 500, "store down"},
		{"viewer", func(*http.Request) error { return nil }, 200, "Result of probe tcp://" + srv.addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := serveProbe(t, &ProbeHandler{Authorize: tt.authorize}, mods, nil)
			code, body := get(t, base+probeQuery(srv.addr, "tcp_connect", "debug", "true"), nil)
			if code != tt.code || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %q, want %d and %q", code, body, tt.code, tt.want)
			}
			if code, body := get(t, base+probeQuery(srv.addr, "tcp_connect"), nil); code != 200 || !strings.Contains(body, "probe_success 1") {
				t.Errorf("without debug: got %d %q, want 200 and a successful probe", code, body)
			}
		})
	}
}

// A destination outside the allowlist is refused with 403 before a packet is sent:
// the listener, on loopback but not in the list, never sees a connection.
func TestProbeRefusesAddressesOutsideTheAllowlist(t *testing.T) {
	srv := newPeer(t, "")
	_, port, _ := net.SplitHostPort(srv.addr)
	mods := map[string]probe.Module{
		"tcp_connect": {Prober: "tcp"},
		"tcp_full":    {Prober: "tcp", TCP: probe.TCPModule{Handshake: "full"}},
		"http_2xx":    {Prober: "http"},
	}
	base := serveProbe(t, &ProbeHandler{}, mods, []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")})
	for _, tt := range []struct{ target, module string }{
		{srv.addr, "tcp_connect"},
		{srv.addr, "tcp_full"},
		{"localhost:" + port, "tcp_full"},
		{"http://" + srv.addr + "/", "http_2xx"},
	} {
		t.Run(tt.target+" "+tt.module, func(t *testing.T) {
			code, body := get(t, base+probeQuery(tt.target, tt.module), nil)
			if code != 403 || !strings.Contains(body, "is not in probe.allow") {
				t.Errorf("got %d %q, want 403 naming the allowlist", code, body)
			}
			if n := srv.accepts(); n != 0 {
				t.Errorf("the listener accepted %d connections, want 0", n)
			}
		})
	}
	allowed := serveProbe(t, &ProbeHandler{}, mods, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	if code, body := get(t, allowed+probeQuery(srv.addr, "tcp_full"), nil); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Errorf("allowed address: got %d %q, want 200 and a successful probe", code, body)
	}
}

func TestProbeTimeoutIsCapped(t *testing.T) {
	srv := newPeer(t, "") // silent: an expect waits until the deadline
	mods := map[string]probe.Module{
		"wait": {Prober: "tcp", Timeout: 10 * time.Second, TCP: probe.TCPModule{QueryResponse: []probe.QueryResponse{{Expect: "never"}}}},
	}
	base := serveProbe(t, &ProbeHandler{}, mods, nil)
	hdr := func(v string) http.Header { return http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {v}} }
	t.Run("by the scrape timeout header", func(t *testing.T) {
		start := time.Now()
		code, body := get(t, base+probeQuery(srv.addr, "wait"), hdr("1.5"))
		if took := time.Since(start); code != 200 || took > 1500*time.Millisecond || took < 900*time.Millisecond {
			t.Errorf("got %d after %s, want 200 after about 1s (1.5s less the offset): %s", code, took, body)
		}
	})
	t.Run("by the module, whatever the target asks", func(t *testing.T) {
		short := serveProbe(t, &ProbeHandler{}, map[string]probe.Module{"wait": {Prober: "tcp", Timeout: 300 * time.Millisecond,
			TCP: probe.TCPModule{QueryResponse: []probe.QueryResponse{{Expect: "never"}}}}}, nil)
		start := time.Now()
		code, body := get(t, short+probeQuery("tcp://"+srv.addr+"?timeout=30m", "wait"), nil)
		if took := time.Since(start); code != 200 || took > time.Second {
			t.Errorf("got %d after %s, want 200 within about 300ms: %s", code, took, body)
		}
	})
	for _, tt := range []struct {
		name, target, header, want string
	}{
		{"NaN header", srv.addr, "NaN", "X-Prometheus-Scrape-Timeout-Seconds \"NaN\""},
		{"negative header", srv.addr, "-1", "X-Prometheus-Scrape-Timeout-Seconds \"-1\""},
		{"header over an hour", srv.addr, "7200", "X-Prometheus-Scrape-Timeout-Seconds \"7200\""},
		{"infinite header", srv.addr, "+Inf", "X-Prometheus-Scrape-Timeout-Seconds \"+Inf\""},
		{"option over an hour", "tcp://" + srv.addr + "?timeout=100000h", "", "option timeout 100000h0m0s: want at most 1h0m0s"},
		{"negative option", "tcp://" + srv.addr + "?timeout=-1s", "", "option timeout: \"-1s\" is not a positive duration"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Header
			if tt.header != "" {
				h = hdr(tt.header)
			}
			if code, body := get(t, base+probeQuery(tt.target, "wait"), h); code != 400 || !strings.Contains(body, tt.want) {
				t.Errorf("got %d %q, want 400 and %q", code, body, tt.want)
			}
		})
	}
}

// A scraper that goes away takes the probe with it: the target sees its connection
// closed at once, not when the probe's timeout ends.
func TestProbeCancelledRequestClosesTheConnection(t *testing.T) {
	srv := newPeer(t, "")
	mods := map[string]probe.Module{
		"wait": {Prober: "tcp", Timeout: time.Minute, TCP: probe.TCPModule{QueryResponse: []probe.QueryResponse{{Send: "HELLO"}, {Expect: "never"}}}},
	}
	base := serveProbe(t, &ProbeHandler{}, mods, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+probeQuery(srv.addr, "wait"), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-srv.accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the probe never connected")
	}
	cancel()
	select {
	case <-srv.gone:
	case <-time.After(2 * time.Second):
		t.Fatal("the target's connection was still open 2s after the request was cancelled")
	}
	<-done
}

// A redirect is a connection like any other: one that leads outside the allowlist is
// refused before a packet, and the probe fails saying why.
func TestProbeRedirectOutsideTheAllowlistIsNotFollowed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	outside := &peer{addr: ln.Addr().String(), accepted: make(chan struct{}, 8)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			outside.accepted <- struct{}{}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	web := httptest.NewServer(http.RedirectHandler("http://"+outside.addr+"/secret", http.StatusFound))
	t.Cleanup(web.Close)
	mods := map[string]probe.Module{"http_2xx": {Prober: "http", Timeout: 2 * time.Second}}
	base := serveProbe(t, &ProbeHandler{Authorize: func(*http.Request) error { return nil }}, mods,
		[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	code, body := get(t, base+probeQuery(web.URL+"/", "http_2xx", "debug", "true"), nil)
	if code != 200 || !strings.Contains(body, "probe_success") || !strings.Contains(body, "127.0.0.3 is not in probe.allow") {
		t.Errorf("got %d %q, want 200 and a failed probe naming the refused address", code, body)
	}
	if n := outside.accepts(); n != 0 {
		t.Errorf("the address outside the allowlist accepted %d connections, want 0", n)
	}
}
