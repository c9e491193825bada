package web_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/web"
)

// TestBrowserSelfCheckBadge: the header shows portpatrol's own failing self-checks
// from /-/self as a red badge with the details in its tooltip, and "self-checks ok"
// when all pass.
func TestBrowserSelfCheckBadge(t *testing.T) {
	ctx := newBrowser(t)
	var failing atomic.Bool
	failing.Store(true)
	w := smallWorld()
	b := api.NewBroker(api.BrokerConfig{})
	mux := http.NewServeMux()
	mux.Handle(api.Prefix, api.New(api.Config{
		Targets: w, History: w, Alerts: w, AlertActions: w, Silences: w, Windows: w, Deliveries: w, Audits: w,
		StatusNotes: w, Learned: w, Tokens: tokens, Broker: b, AnonymousRead: true, Heartbeat: 5 * time.Second,
	}))
	mux.HandleFunc("GET /-/self", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		if failing.Load() {
			rw.WriteHeader(http.StatusServiceUnavailable)
			rw.Write([]byte(`{"healthy":false,"checks":[{"name":"scheduler_lag","ok":true},{"name":"store_write","ok":false,"severity":"P1","detail":"3 writes to storage failed in the last 15s; 420 results held in memory"},{"name":"outbox_backlog","ok":true}]}`))
			return
		}
		rw.Write([]byte(`{"healthy":true,"checks":[{"name":"scheduler_lag","ok":true},{"name":"store_write","ok":true}]}`))
	})
	mux.Handle("/", web.New(web.Config{}))
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { b.Close(); srv.Close() })

	run(t, ctx, 20*time.Second,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(css(`#groups[data-rendered]`)),
		chromedp.WaitVisible(css(`#self.bad`)),
	)
	if got := get(t, ctx, chromedp.Text(css(`#self`))); got != "portpatrol: store_write" {
		t.Errorf("badge %q, want portpatrol: store_write", got)
	}
	if tip := get(t, ctx, chromedp.Evaluate[string](`document.getElementById('self').title`)); !strings.Contains(tip, "store_write (P1): 3 writes to storage failed") {
		t.Errorf("tooltip %q, want the check's detail", tip)
	}
	if takeShots() {
		screenshot(t, ctx, "self-check")
	}
	failing.Store(false)
	run(t, ctx, 20*time.Second, chromedp.Reload(), chromedp.WaitVisible(css(`#self:not(.bad)`)))
	if got := get(t, ctx, chromedp.Text(css(`#self`))); got != "self-checks ok" {
		t.Errorf("badge %q, want self-checks ok", got)
	}
}
