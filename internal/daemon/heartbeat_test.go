package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// pingReceiver is a healthchecks.io-style receiver: it records each request's path and
// body.
type pingReceiver struct {
	URL  string
	mu   sync.Mutex
	hits []string // "path body"
}

func newPingReceiver(t *testing.T) *pingReceiver {
	p := &pingReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.hits = append(p.hits, r.URL.Path+" "+string(b))
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *pingReceiver) Hits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.hits...)
}

// waitHit waits until a hit's path is path (and its body holds body), or fails.
func (p *pingReceiver) waitHit(t *testing.T, path, body string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, h := range p.Hits() {
			pa, b, _ := strings.Cut(h, " ")
			if pa == path && strings.Contains(b, body) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no request to %s with %q; got %q", path, body, p.Hits())
}

// TestHeartbeatSendsWhileHealthyAndFailsWhenNot runs the dead man's switch against
// real receivers: /start at start; ping, PagerDuty heartbeat and Watchdog alert while
// healthy; when the outbox stops draining (its receiver is down), the ping goes to
// /fail naming outbox_backlog, PagerDuty hears nothing and the self alert fires; when
// the receiver is back, the beats resume.
func TestHeartbeatSendsWhileHealthyAndFailsWhenNot(t *testing.T) {
	ping, pd := newPingReceiver(t), newPingReceiver(t)
	watch := testsvc.NewWebhook(t)
	cfg := parse(t, `host_watch: {disabled: true}
self_check: {outbox_backlog: 1, interval: 1h}
heartbeat:
  interval: 1m
  watchdog: {receiver: deadman}
  ping: {url: `+ping.URL+`/ping/abc}
  pagerduty: {url: `+pd.URL+`/hb}
alerting: {grouping: {group_wait: -1s, group_interval: -1s}}
notify:
  outbox: {backoff_min: 1s, backoff_max: 2s, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: `+watch.URL+`}, {name: deadman, type: webhook, url: `+watch.URL+`}]
`)
	clock := notifytest.NewClock(time.Now())
	d, err := New(Config{Config: cfg, DataDir: t.TempDir(), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	base := runDaemon(t, d)
	ctx := t.Context()
	ping.waitHit(t, "/ping/abc/start", "started")
	ping.waitHit(t, "/ping/abc", "healthy")
	pd.waitHit(t, "/hb", "")
	msgs := watch.Wait(t, 1, 30*time.Second)
	if got := msgs[0].Alerts[0].Labels["alertname"]; got != "Watchdog" {
		t.Fatalf("watchdog alertname %q, want Watchdog; %+v", got, msgs[0])
	}

	// The Watchdog's receiver goes down: its deliveries wait in the outbox.
	watch.SetDown(true)
	for i := 0; i < 3; i++ {
		clock.Advance(time.Minute)
		time.Sleep(50 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for d.SelfStatus().Healthy {
		if time.Now().After(deadline) {
			t.Fatalf("still healthy with the outbox stuck: %+v", d.SelfStatus())
		}
		d.self.run(ctx)
		time.Sleep(20 * time.Millisecond)
	}
	pdBefore := len(pd.Hits())
	clock.Advance(time.Minute)
	ping.waitHit(t, "/ping/abc/fail", "outbox_backlog")
	if n := len(pd.Hits()); n != pdBefore {
		t.Fatalf("PagerDuty heard %d heartbeats while unhealthy, want none", n-pdBefore)
	}
	if code, body := testsvc.Get(t, base+"/-/self"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"healthy":false`) {
		t.Fatalf("/-/self answered %d %s, want 503 and healthy false", code, body)
	}
	_, metrics := testsvc.Get(t, base+"/metrics")
	if !strings.Contains(metrics, `portpatrol_self_check{check="outbox_backlog"} 0`) || !strings.Contains(metrics, "portpatrol_self_healthy 0") {
		t.Fatalf("/metrics lacks the failing self-check:\n%s", grepLines(metrics, "portpatrol_self"))
	}
	self := d.engine().List(alert.Filter{})
	var found bool
	for _, a := range self {
		if a.Class == patrol.AlertSelf && a.Rule == "self:outbox_backlog" && a.Active() && a.Severity == patrol.P1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no active P1 self alert for outbox_backlog; alerts %+v", self)
	}

	// Back: the outbox drains, the checks pass, the beats resume.
	watch.SetDown(false)
	deadline = time.Now().Add(30 * time.Second)
	for !d.SelfStatus().Healthy {
		if time.Now().After(deadline) {
			t.Fatalf("not healthy again: %+v", d.SelfStatus())
		}
		clock.Advance(2 * time.Second)
		d.self.run(ctx)
		time.Sleep(50 * time.Millisecond)
	}
	before := len(pd.Hits())
	clock.Advance(time.Minute)
	deadline = time.Now().Add(30 * time.Second)
	for len(pd.Hits()) == before {
		if time.Now().After(deadline) {
			t.Fatal("PagerDuty heartbeat did not resume")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestSelfCheckClockJumpAndCertificate: a wall clock stepped back an hour (against the
// monotonic one) raises clock_jump, and a listener certificate expiring in two days
// raises listener_cert as P1; both show in /-/self.
func TestSelfCheckClockJumpAndCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir, 48*time.Hour)
	cfg := parse(t, `host_watch: {disabled: true}
api: {tls_cert_file: `+certFile+`, tls_key_file: `+keyFile+`}
`)
	d, err := New(Config{Config: cfg, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := t.Context()
	var mu sync.Mutex
	offset := time.Duration(0)
	start := time.Now()
	d.self.wall = func() (time.Time, time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		return now.Round(0).Add(offset), now.Sub(start) + 1 // only the wall steps
	}
	d.self.run(ctx)
	if c := checkOf(d.SelfStatus(), checkClockJump); !c.OK {
		t.Fatalf("clock_jump failing before any step: %+v", c)
	}
	mu.Lock()
	offset = -time.Hour
	mu.Unlock()
	d.self.run(ctx)
	c := checkOf(d.SelfStatus(), checkClockJump)
	if c.OK || !strings.Contains(c.Detail, "stepped back by 1h0m0s") {
		t.Fatalf("clock_jump after a step back of 1h: %+v", c)
	}
	mu.Lock()
	offset = 23 * time.Hour // forward a day from there
	mu.Unlock()
	d.self.run(ctx)
	if c := checkOf(d.SelfStatus(), checkClockJump); !strings.Contains(c.Detail, "stepped forward by 24h0m0s") {
		t.Fatalf("clock_jump after a step forward of a day: %+v", c)
	}
	lc := checkOf(d.SelfStatus(), checkListenerCert)
	if lc.OK || lc.Severity != "P1" || !strings.Contains(lc.Detail, "expires") {
		t.Fatalf("listener_cert with two days left: %+v", lc)
	}
	var st SelfStatus
	rec := httptest.NewRecorder()
	d.serveSelf(rec, httptest.NewRequest("GET", "/-/self", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	// Neither check stops the heartbeat: portpatrol still probes and delivers.
	if rec.Code != http.StatusOK || !st.Healthy || len(st.Failing(nil)) != 2 {
		t.Fatalf("/-/self: %d %+v", rec.Code, st)
	}
}

func checkOf(s SelfStatus, name string) SelfCheck {
	for _, c := range s.Checks {
		if c.Name == name {
			return c
		}
	}
	return SelfCheck{}
}

// writeCert writes a self-signed certificate for 127.0.0.1 valid for left more.
func writeCert(t *testing.T, dir string, left time.Duration) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portpatrol"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(left), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cf, kf
}
