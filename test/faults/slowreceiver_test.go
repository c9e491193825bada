package faults_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/sqlite"
	"github.com/portpatrol/portpatrol/internal/testsvc"
)

// TestSlowReceiverDelaysNoOther: a receiver that takes 30 s to answer holds back only
// its own queue. A notification for another receiver, enqueued while the slow one's
// request is in flight, is delivered before that request returns.
func TestSlowReceiverDelaysNoOther(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 16)
	var answered atomic.Bool
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
		case <-time.After(30 * time.Second):
		}
		answered.Store(true)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	fast := testsvc.NewWebhook(t)

	db, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "pp.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg, err := config.Parse([]byte(`notify:
  outbox: {send_timeout: 40s, poll_interval: 100ms}
  receivers: [{name: default, type: webhook, url: `+fast.URL+`}, {name: slow, type: webhook, url: `+slow.URL+`}]
`), filepath.Join(t.TempDir(), "pp.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	disp, err := notify.New(cfg.Notify, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- disp.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	note := func(receiver, key string) patrol.Notification {
		n := notifytest.Notification(patrol.NotifyFiring)
		n.Receiver, n.Key, n.CreatedAt = receiver, key, time.Now()
		return n
	}
	if err := disp.Enqueue(ctx, []patrol.Notification{note("slow", "s1")}); err != nil {
		t.Fatal(err)
	}
	<-started
	sent := time.Now()
	if err := disp.Enqueue(ctx, []patrol.Notification{note("default", "f1")}); err != nil {
		t.Fatal(err)
	}
	msgs := fast.Wait(t, 1, 60*time.Second)
	if answered.Load() {
		t.Fatal("the fast receiver's message waited for the slow receiver's answer")
	}
	t.Logf("slow receiver: the other receiver got its message %s after enqueue while the slow request (30 s) was still in flight", msgs[0].At.Sub(sent).Round(time.Millisecond))
}
