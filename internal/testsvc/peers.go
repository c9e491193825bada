package testsvc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// Listen opens a loopback listener that accepts connections and closes them at once,
// until cleanup, and returns its address.
func Listen(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go acceptAndClose(ln)
	return ln.Addr().String()
}

func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// ClosedPort returns a loopback address nothing listens on.
func ClosedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// Flip is a loopback port that can be closed and opened again on the same address,
// to make a target go down and come back. It starts open.
type Flip struct {
	Addr string
	ln   net.Listener
}

// NewFlip opens a Flip on a free loopback port; cleanup closes it.
func NewFlip(t testing.TB) *Flip {
	f := &Flip{Addr: ClosedPort(t)}
	f.Open(t)
	t.Cleanup(func() { f.ln.Close() })
	return f
}

// Open listens on the address again.
func (f *Flip) Open(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("tcp", f.Addr)
	if err != nil {
		t.Fatalf("reopen %s: %v", f.Addr, err)
	}
	f.ln = ln
	go acceptAndClose(ln)
}

// Close stops listening, so connects are refused.
func (f *Flip) Close() { f.ln.Close() }

// WebhookMsg is what a Webhook keeps of one Alertmanager-style webhook call.
type WebhookMsg struct {
	At     time.Time
	Key    string // the Idempotency-Key header: the notification's outbox key
	Status string
	// Kind is portpatrol's kind of notification: firing, acknowledged, reminder…
	Kind   string `json:"kind"`
	Alerts []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// Webhook is an Alertmanager-webhook receiver on loopback that can be "down" (503).
type Webhook struct {
	URL  string
	mu   sync.Mutex
	down bool
	msgs []WebhookMsg
}

// NewWebhook starts a receiver; cleanup stops it.
func NewWebhook(t testing.TB) *Webhook {
	r := &Webhook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		var m WebhookMsg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Errorf("receiver: bad payload %q: %v", b, err)
		}
		m.At = time.Now()
		m.Key = req.Header.Get("Idempotency-Key")
		r.msgs = append(r.msgs, m)
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// SetDown makes the receiver answer 503 (true) or take messages again (false).
func (r *Webhook) SetDown(v bool) {
	r.mu.Lock()
	r.down = v
	r.mu.Unlock()
}

// Messages returns the messages taken so far.
func (r *Webhook) Messages() []WebhookMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]WebhookMsg(nil), r.msgs...)
}

// Wait waits until the receiver holds at least n messages, or fails the test.
func (r *Webhook) Wait(t testing.TB, n int, within time.Duration) []WebhookMsg {
	t.Helper()
	return r.wait(t, n, within, "", func(ms []WebhookMsg) []WebhookMsg { return ms })
}

// WaitAbout waits until n messages concern target, or fails the test.
func (r *Webhook) WaitAbout(t testing.TB, target string, n int, within time.Duration) []WebhookMsg {
	t.Helper()
	return r.wait(t, n, within, " about "+target, func(ms []WebhookMsg) []WebhookMsg { return About(ms, target) })
}

func (r *Webhook) wait(t testing.TB, n int, within time.Duration, what string, keep func([]WebhookMsg) []WebhookMsg) []WebhookMsg {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := keep(r.Messages()); len(m) >= n {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("receiver got %d messages%s within %s, want %d: %+v", len(keep(r.Messages())), what, within, n, keep(r.Messages()))
	return nil
}

// About keeps the messages that concern target: other processes on a shared machine
// open and close listeners of their own, which a host watch may page on too.
func About(ms []WebhookMsg, target string) []WebhookMsg {
	var out []WebhookMsg
	for _, m := range ms {
		for _, a := range m.Alerts {
			if a.Labels["target"] == target {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Statuses joins the messages' statuses with commas ("firing,resolved").
func Statuses(ms []WebhookMsg) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Status)
	}
	return strings.Join(s, ",")
}

// MapDial returns a dial function that maps the addresses in m (as "host:port") onto
// the loopback addresses they name; a dial to any other address fails the test without
// leaving the machine.
func MapDial(t testing.TB, m map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		to, ok := m[addr]
		if !ok {
			t.Errorf("dial to unmapped address %s", addr)
			return nil, fmt.Errorf("unmapped %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, to)
	}
}

// WriteFile writes body to path (0600), failing the test on error.
func WriteFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Get fetches url and returns the status code and body, failing the test when the
// request cannot be made.
func Get(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
