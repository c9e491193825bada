package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/store"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// newToken stores a token of role in d's store and returns its secret.
func newToken(t *testing.T, d *Daemon, role store.Role) string {
	t.Helper()
	tok, secret, err := store.NewToken(string(role)+"-test", role, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.db.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	return secret
}

// send makes a request with an optional bearer token and headers ("Host" sets the
// Host header) and returns the status and body.
func send(t *testing.T, method, url, token string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// writeConfig writes body to pp.yaml in a new directory and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, body)
	return path
}

// holdListener accepts connections and keeps them open, silent, until cleanup; each
// accepted connection is announced on the returned channel.
func holdListener(t *testing.T) (string, <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}()
	return ln.Addr().String(), accepted
}

func TestReloadNeedsAnAdminToken(t *testing.T) {
	good := "host_watch: {disabled: true}\napi: {anonymous_read: true}\n"
	path := writeConfig(t, good)
	d, base := startDaemon(t, path)
	viewer, operator, admin := newToken(t, d, store.RoleViewer), newToken(t, d, store.RoleOperator), newToken(t, d, store.RoleAdmin)

	tests := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"unknown token", "ppt_nobody", http.StatusUnauthorized},
		{"viewer", viewer, http.StatusForbidden},
		{"operator", operator, http.StatusForbidden},
		{"admin", admin, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := send(t, "POST", base+"/-/reload", tt.token, nil); code != tt.want {
				t.Errorf("got %d, want %d: %s", code, tt.want, body)
			}
		})
	}
	// Only the admin's request reloaded: one success at start, one since.
	waitFor(t, base+"/metrics", `portpatrol_config_reloads_total{outcome="success"} 2`)

	// Why a reload failed quotes the file: only an admin reads it.
	testsvc.WriteFile(t, path, "targets:\n  - url: 127.0.0.1:99999\n")
	for _, token := range []string{"", viewer} {
		code, body := send(t, "POST", base+"/-/reload", token, nil)
		if code != http.StatusUnauthorized && code != http.StatusForbidden {
			t.Errorf("reload of a bad file without the admin role: got %d, want 401 or 403", code)
		}
		if strings.Contains(body, "99999") || strings.Contains(body, "pp.yaml") {
			t.Errorf("a caller without the admin role read the config error: %s", body)
		}
	}
	if code, body := send(t, "POST", base+"/-/reload", admin, nil); code != http.StatusBadRequest || !strings.Contains(body, `port "99999" out of range`) {
		t.Errorf("admin reload of a bad file: got %d %q, want 400 naming the error", code, body)
	}
}

func TestCrossSiteWritesAreRefused(t *testing.T) {
	d, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\n"))
	operator, admin := newToken(t, d, store.RoleOperator), newToken(t, d, store.RoleAdmin)
	host := strings.TrimPrefix(base, "http://")

	routes := []struct {
		method, path, token string
		pass                int // the status when the request is let through
	}{
		{"POST", "/api/v1/alerts/nope/ack", operator, http.StatusNotFound},
		{"DELETE", "/api/v1/silences/nope", operator, http.StatusNotFound},
		{"DELETE", "/api/v1/tokens/nope", admin, http.StatusNotFound},
		{"POST", "/-/reload", admin, http.StatusOK},
	}
	headers := []struct {
		name    string
		hdr     map[string]string
		refused bool
	}{
		{"curl: neither header", nil, false},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}, false},
		{"typed into the address bar", map[string]string{"Sec-Fetch-Site": "none"}, false},
		{"matching Origin, old browser", map[string]string{"Origin": "http://" + host}, false},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}, true},
		{"same-site", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost"}, true},
		{"foreign Origin, old browser", map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, true},
	}
	for _, rt := range routes {
		for _, h := range headers {
			t.Run(rt.method+" "+rt.path+"/"+h.name, func(t *testing.T) {
				want := rt.pass
				if h.refused {
					want = http.StatusForbidden
				}
				code, body := send(t, rt.method, base+rt.path, rt.token, h.hdr)
				if code != want {
					t.Errorf("got %d, want %d: %s", code, want, body)
				}
				if h.refused && !strings.Contains(body, "cross-site request refused") {
					t.Errorf("refusal does not say why: %s", body)
				}
			})
		}
	}
}

func TestHostHeaderAllowlist(t *testing.T) {
	d, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\napi:\n  anonymous_read: true\n  hosts: [portpatrol.example.com]\n"))
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	viewer := newToken(t, d, store.RoleViewer)

	// What a DNS-rebinding page would ask for, with and without a token.
	for _, path := range []string{"/api/v1/targets", "/metrics", "/api/v1/events", "/probe?target=127.0.0.1:1&module=tcp_connect&debug=true",
		"/-/healthy", "/status.json", "/"} {
		for _, token := range []string{"", viewer} {
			t.Run("evil.example"+path, func(t *testing.T) {
				code, body := send(t, "GET", base+path, token, map[string]string{"Host": "evil.example:" + port})
				if code != http.StatusMisdirectedRequest || !strings.Contains(body, "api.hosts") {
					t.Errorf("got %d %q, want 421 naming api.hosts", code, body)
				}
			})
		}
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost.:" + port, "[::1]:" + port, "portpatrol.example.com:" + port, "portpatrol.example.com"} {
		t.Run(host, func(t *testing.T) {
			if code, body := send(t, "GET", base+"/api/v1/targets", "", map[string]string{"Host": host}); code != http.StatusOK {
				t.Errorf("got %d, want 200: %s", code, body)
			}
		})
	}
}

func TestHostAllowlistRules(t *testing.T) {
	loop := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9115}
	tests := []struct {
		name   string
		listen net.Addr
		hosts  []string
		host   string
		want   bool
	}{
		{"loopback name", loop, nil, "localhost:9115", true},
		{"loopback v6", loop, nil, "[::1]:9115", true},
		{"no Host at all (HTTP/1.0)", loop, nil, "", true},
		{"rebinding name", loop, nil, "evil.example:9115", false},
		{"another IP on a specific listener", loop, nil, "10.1.2.3:9115", false},
		{"the listen address", &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 9115}, nil, "10.1.2.3:9115", true},
		{"configured name, any case", loop, []string{"PP.example.com"}, "pp.EXAMPLE.com.:443", true},
		{"configured v6 in brackets", loop, []string{"[fd00::5]"}, "[fd00::5]:9115", true},
		{"star", loop, []string{"*"}, "evil.example", true},
		{"wildcard listener: an IP", &net.TCPAddr{IP: net.IPv4zero, Port: 9115}, nil, "192.0.2.7:9115", true},
		{"wildcard listener: a v6 IP", &net.TCPAddr{IP: net.IPv6unspecified, Port: 9115}, nil, "[2001:db8::7]:9115", true},
		{"wildcard listener: the host name", &net.TCPAddr{IP: net.IPv6unspecified, Port: 9115}, nil, "Web1:9115", true},
		{"wildcard listener: a rebinding name", &net.TCPAddr{IP: net.IPv4zero, Port: 9115}, nil, "evil.example:9115", false},
		{"wildcard listener: a name that looks like an IP", &net.TCPAddr{IP: net.IPv4zero, Port: 9115}, nil, "192.0.2.7.evil.example", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newHostAllowlist(tt.listen, tt.hosts, "web1").allows(tt.host); got != tt.want {
				t.Errorf("allows(%q): got %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

func TestIdleConnectionsAreClosed(t *testing.T) {
	_, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\n"), func(d *Daemon) { d.httpLimits.idle = 200 * time.Millisecond })
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("got %d (close %v), want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: got %v after %s, want EOF (closed by the server)", err, time.Since(start).Round(time.Millisecond))
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the idle connection was closed after %s, want about 200ms", took)
	}
}

// A client that sends headers promising a body and never sends it is cut off.
func TestStalledRequestBodyIsCut(t *testing.T) {
	d, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\n"), func(d *Daemon) { d.httpLimits.read = 300 * time.Millisecond })
	operator := newToken(t, d, store.RoleOperator)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /api/v1/silences HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", operator)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection with a stalled body was still open after 5s")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the stalled request was cut after %s, want about 300ms", took)
	}
}

// The write timeout does not cut the event stream, nor a /probe whose module allows
// it longer than the timeout.
func TestWriteTimeoutSparesStreamsAndLongProbes(t *testing.T) {
	hold, _ := holdListener(t)
	d, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\napi: {anonymous_read: true}\nmodules:\n  slow:\n    prober: tcp\n    timeout: 1s\n    tcp:\n      query_response: [{expect: '^hello'}]\n"),
		func(d *Daemon) { d.httpLimits.write = 300 * time.Millisecond })

	t.Run("events", func(t *testing.T) {
		resp, err := http.Get(base + "/api/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		time.Sleep(600 * time.Millisecond)
		if err := d.broker.PublishTarget(patrol.TargetState{Target: "tcp://127.0.0.1:1", Status: patrol.StatusUp}); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(resp.Body)
			for sc.Scan() {
				if sc.Text() == "event: target" {
					got <- sc.Text()
					return
				}
			}
			got <- fmt.Sprintf("stream ended: %v", sc.Err())
		}()
		select {
		case line := <-got:
			if line != "event: target" {
				t.Errorf("after the write timeout: %s, want the published event", line)
			}
		case <-time.After(5 * time.Second):
			t.Error("no event within 5s")
		}
	})
	t.Run("probe", func(t *testing.T) {
		code, body := testsvc.Get(t, base+"/probe?module=slow&target="+hold)
		if code != http.StatusOK || !strings.Contains(body, "probe_success 0") {
			t.Errorf("a 1s probe under a 300ms write timeout: got %d %q, want 200 with probe_success 0", code, body)
		}
	})
}

func TestPerClientLimitOnExpensiveRoutes(t *testing.T) {
	hold, accepted := holdListener(t)
	_, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\napi: {anonymous_read: true}\nprobe: {max_inflight_per_client: 1}\nmodules:\n  slow:\n    prober: tcp\n    timeout: 2s\n    tcp:\n      query_response: [{expect: '^hello'}]\n"))
	first := make(chan int, 1)
	go func() {
		resp, err := http.Get(base + "/probe?module=slow&target=" + hold)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the first probe never connected")
	}

	resp, err := http.Get(base + "/probe?module=tcp_connect&target=" + testsvc.Listen(t))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "probe.max_inflight_per_client") {
		t.Errorf("a second probe in flight: got %d (Retry-After %q) %q, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// Each route has its own budget.
	if code, body := testsvc.Get(t, base+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics while a probe is in flight: got %d %q, want 200", code, body)
	}
	if code := <-first; code != http.StatusOK {
		t.Errorf("the first probe: got %d, want 200", code)
	}
	if code, body := testsvc.Get(t, base+"/probe?module=tcp_connect&target="+testsvc.Listen(t)); code != http.StatusOK {
		t.Errorf("a probe after the first ended: got %d %q, want 200", code, body)
	}
}

func TestClientLimiter(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := newClientLimiter(8).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/targets/history" {
			entered <- struct{}{}
			<-release
		}
	}))
	call := func(path, client string) int {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = client
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { call("/api/v1/targets/history", fmt.Sprintf("192.0.2.1:%d", 40000+i)) })
		<-entered
	}
	if got := call("/api/v1/targets/history", "192.0.2.1:50000"); got != http.StatusTooManyRequests {
		t.Errorf("9th history query of one client: got %d, want 429", got)
	}
	if got := call("/api/v1/audits", "192.0.2.1:50001"); got != http.StatusOK {
		t.Errorf("another route of the same client: got %d, want 200", got)
	}
	if got := call("/api/v1/alerts", "192.0.2.1:50002"); got != http.StatusOK {
		t.Errorf("a cheap route of the same client: got %d, want 200", got)
	}
	wg.Go(func() { call("/api/v1/targets/history", "192.0.2.2:40000") })
	<-entered // another client is not held back
	close(release)
	wg.Wait()
	if got := call("/api/v1/audits", "192.0.2.1:50003"); got != http.StatusOK {
		t.Errorf("after the others ended: got %d, want 200", got)
	}
}

func TestMetricsRequireToken(t *testing.T) {
	d, base := startDaemon(t, writeConfig(t, "host_watch: {disabled: true}\napi: {anonymous_read: true}\nmetrics: {require_token: true}\n"))
	viewer := newToken(t, d, store.RoleViewer)
	tests := []struct {
		name, token string
		want        int
	}{
		{"anonymous loopback reader", "", http.StatusUnauthorized},
		{"unknown token", "ppt_nobody", http.StatusUnauthorized},
		{"viewer", viewer, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := send(t, "GET", base+"/metrics", tt.token, nil)
			if code != tt.want {
				t.Errorf("got %d, want %d: %s", code, tt.want, body)
			}
			if got := strings.Contains(body, "portpatrol_"); got != (tt.want == http.StatusOK) {
				t.Errorf("body has metrics: %v, want %v", got, tt.want == http.StatusOK)
			}
		})
	}
}

// /probe has its own per-client budget: one Prometheus scrapes every blackbox-style
// target at once, so it may have more /probe requests in flight than the API allows.
func TestClientLimiterPerRoute(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	lim := newClientLimiter(2)
	lim.perRoute = map[string]int{"GET /probe": 5}
	h := lim.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	}))
	call := func(path string) (int, string) {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "192.0.2.7:40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { call("/probe?target=127.0.0.1:1&module=tcp_connect") })
		<-entered
	}
	code, body := call("/probe?target=127.0.0.1:2&module=tcp_connect")
	if code != http.StatusTooManyRequests || !strings.Contains(body, "probe.max_inflight_per_client") {
		t.Errorf("6th /probe of one client: got %d %q, want 429 naming probe.max_inflight_per_client", code, body)
	}
	for range 2 {
		wg.Go(func() { call("/metrics") })
		<-entered
	}
	if code, body := call("/metrics"); code != http.StatusTooManyRequests || !strings.Contains(body, "api.max_inflight_per_client") {
		t.Errorf("3rd /metrics of one client: got %d %q, want 429 naming api.max_inflight_per_client", code, body)
	}
	close(release)
	wg.Wait()
}
