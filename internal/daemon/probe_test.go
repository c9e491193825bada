package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// countingListener accepts on loopback and counts the connections it has accepted.
func countingListener(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := make(chan struct{}, 64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n <- struct{}{}
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), func() int { time.Sleep(50 * time.Millisecond); return len(n) }
}

// probe.allow replaces the default list, and a reload applies a new one at once.
func TestServeProbeAllowlist(t *testing.T) {
	addr, accepted := countingListener(t)
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, "host_watch: {disabled: true}\nprobe:\n  allow: [127.0.0.2/32]\n")
	d, base := startDaemon(t, path)
	for _, module := range []string{"tcp_connect", "http_2xx"} {
		target := addr
		if module == "http_2xx" {
			target = "http://" + addr + "/"
		}
		code, body := testsvc.Get(t, base+"/probe?module="+module+"&target="+target)
		if code != http.StatusForbidden || !strings.Contains(body, "127.0.0.1 is not in probe.allow") {
			t.Errorf("%s: got %d %q, want 403 naming the address", module, code, body)
		}
	}
	if n := accepted(); n != 0 {
		t.Fatalf("the listener outside probe.allow accepted %d connections, want 0", n)
	}
	testsvc.WriteFile(t, path, "host_watch: {disabled: true}\nprobe:\n  allow: [127.0.0.1/32]\n")
	if err := d.ReloadFile(); err != nil {
		t.Fatal(err)
	}
	if code, body := testsvc.Get(t, base+"/probe?module=tcp_connect&target="+addr); code != 200 || !strings.Contains(body, "probe_success 1") {
		t.Errorf("after the reload: got %d %q, want 200 and a successful probe", code, body)
	}
}

// Without probe.allow, /probe reaches loopback and the configured targets' addresses
// only. Nothing is probed here: the daemon does not run.
func TestProbeAllowDefaultsToLoopbackAndTargets(t *testing.T) {
	cfg, err := config.Parse([]byte("host_watch: {disabled: true}\ntargets:\n  - url: tcp://192.0.2.10:80\n  - url: tcp://[2001:db8::5]:443\n"), "pp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Config: cfg, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for _, tt := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9", true}, {"127.9.9.9:9", true}, {"[::1]:9", true}, {"[::ffff:127.0.0.1]:9", true},
		{"192.0.2.10:80", true}, {"192.0.2.10:22", true}, {"[2001:db8::5]:443", true},
		{"192.0.2.11:80", false}, {"10.0.0.1:6379", false}, {"169.254.169.254:80", false}, {"[2001:db8::6]:443", false},
	} {
		err := d.probeAllowed(netip.MustParseAddrPort(tt.addr))
		if (err == nil) != tt.ok {
			t.Errorf("%s: got %v, want allowed=%v", tt.addr, err, tt.ok)
		}
	}
}

// probe.listen moves /probe to a listener of its own, which serves nothing else.
func TestServeProbeOnItsOwnListener(t *testing.T) {
	open := testsvc.Listen(t)
	probeAddr := fmt.Sprintf("127.0.0.1:%d", testsvc.FreePort(t))
	path := filepath.Join(t.TempDir(), "pp.yaml")
	testsvc.WriteFile(t, path, fmt.Sprintf("host_watch: {disabled: true}\nprobe: {listen: %q}\n", probeAddr))
	_, base := startDaemon(t, path)
	pbase := "http://" + probeAddr
	waitFor(t, base+"/-/ready", "ready")
	for _, tt := range []struct {
		url  string
		code int
		want string
	}{
		{pbase + "/probe?module=tcp_connect&target=" + open, 200, "probe_success 1"},
		{pbase + "/metrics", 404, ""},
		{pbase + "/api/v1/targets", 404, ""},
		{base + "/probe?module=tcp_connect&target=" + open, 404, ""},
		{base + "/metrics", 200, "portpatrol_"},
	} {
		code, body := testsvc.Get(t, tt.url)
		if code != tt.code || !strings.Contains(body, tt.want) {
			t.Errorf("%s: got %d %q, want %d and %q", tt.url, code, body, tt.code, tt.want)
		}
	}
}
