package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/webhook"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a Notifier whose answers a test scripts: fail returns the error for the
// i-th call (nil: success). It records the keys it was given.
type fake struct {
	mu    sync.Mutex
	calls []string
	fail  func(i int, n patrol.Notification) error
	sent  chan patrol.Notification // receives each notification, when not nil
}

func (f *fake) Notify(ctx context.Context, n patrol.Notification) error {
	f.mu.Lock()
	i := len(f.calls)
	f.calls = append(f.calls, n.Key)
	fail := f.fail
	f.mu.Unlock()
	var err error
	if fail != nil {
		err = fail(i, n)
	}
	if f.sent != nil {
		f.sent <- n
	}
	return err
}

func (f *fake) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func note(receiver, key string) patrol.Notification {
	n := notifytest.Notification(patrol.NotifyFiring)
	n.Receiver, n.Key = receiver, key
	n.Alerts[0].Summary = key
	return n
}

var outbox = notify.OutboxConfig{BackoffMin: 4 * time.Second, BackoffMax: time.Minute, MaxAge: time.Hour, Rand: func() float64 { return 0.5 }}

func newDispatcher(t *testing.T, store notify.Store, clk *notifytest.Clock, rs ...notify.Receiver) *notify.Dispatcher {
	t.Helper()
	d, err := notify.NewDispatcher(outbox, store, clk, rs...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func states(t *testing.T, s notify.Store) map[string]notify.Delivery {
	t.Helper()
	ds, err := s.List(context.Background(), notify.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]notify.Delivery{}
	for _, d := range ds {
		m[d.Receiver+"/"+d.Key] = d
	}
	return m
}

func dispatch(t *testing.T, d *notify.Dispatcher) int {
	t.Helper()
	n, err := d.DispatchDue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func stat(d *notify.Dispatcher, provider string, oc notify.Outcome) uint64 {
	for _, s := range d.Stats() {
		if s.Provider == provider && s.Outcome == oc {
			return s.Count
		}
	}
	return 0
}

// A crash after Enqueue, before or during the send, loses nothing: a new dispatcher
// on the same store delivers it, once.
func TestSurvivesRestart(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	ctx := context.Background()

	// The first process enqueues and dies before sending.
	d1 := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "webhook", Notifier: &fake{}})
	if err := d1.Enqueue(ctx, []patrol.Notification{note("ops", "k1")}); err != nil {
		t.Fatal(err)
	}
	if got := states(t, store)["ops/k1"]; got.State != notify.StatePending || got.Attempts != 0 {
		t.Fatalf("after enqueue: got %s after %d attempts, want pending after 0", got.State, got.Attempts)
	}

	// The second process enqueues one more and dies while sending it: the attempt is
	// cut short by shutdown and does not count.
	started := make(chan struct{})
	sctx, cancel := context.WithCancel(ctx)
	blocking := notifierFunc(func(ctx context.Context, n patrol.Notification) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	d2 := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "webhook", Notifier: blocking})
	done := make(chan struct{})
	go func() {
		defer close(done)
		d2.DispatchDue(sctx)
	}()
	<-started
	cancel()
	<-done
	if got := states(t, store)["ops/k1"]; got.State != notify.StatePending || got.Attempts != 0 {
		t.Fatalf("after a crash during send: got %s after %d attempts, want pending after 0", got.State, got.Attempts)
	}

	// The third process delivers it.
	f := &fake{}
	d3 := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "webhook", Notifier: f})
	if n := dispatch(t, d3); n != 1 {
		t.Fatalf("delivered %d, want 1", n)
	}
	if n := dispatch(t, d3); n != 0 {
		t.Fatalf("second round delivered %d, want 0", n)
	}
	if got, want := f.keys(), []string{"k1"}; !slices.Equal(got, want) {
		t.Errorf("got sends %v, want %v", got, want)
	}
	if got := states(t, store)["ops/k1"]; got.State != notify.StateDelivered || got.Attempts != 1 {
		t.Errorf("got %s after %d attempts, want delivered after 1", got.State, got.Attempts)
	}
}

type notifierFunc func(context.Context, patrol.Notification) error

func (f notifierFunc) Notify(ctx context.Context, n patrol.Notification) error { return f(ctx, n) }

// Temporary failures are retried on a doubling, jittered, capped schedule; Retry-After
// is honoured.
func TestRetryBackoff(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{fail: func(i int, _ patrol.Notification) error {
		switch {
		case i == 2:
			return &send.Error{Status: 429, RetryAfter: 50 * time.Second, Err: errors.New("429")}
		case i < 7:
			return &send.Error{Status: 503, Err: errors.New("503")}
		}
		return nil
	}}
	d := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "slack", Notifier: f})
	if err := d.Enqueue(context.Background(), []patrol.Notification{note("ops", "k")}); err != nil {
		t.Fatal(err)
	}
	// With Rand 0.5 the wait is 3/4 of min(4s·2^(n-1), 1m); attempt 3 asked for 50s.
	waits := []time.Duration{3 * time.Second, 6 * time.Second, 50 * time.Second, 24 * time.Second, 45 * time.Second, 45 * time.Second, 45 * time.Second}
	for i, w := range waits {
		dispatch(t, d)
		got := states(t, store)["ops/k"]
		if got.Attempts != i+1 || got.State != notify.StatePending {
			t.Fatalf("attempt %d: got %s after %d attempts", i+1, got.State, got.Attempts)
		}
		if want := clk.Now().Add(w); !got.NextAttempt.Equal(want) {
			t.Fatalf("after attempt %d: got next attempt %s, want %s", i+1, got.NextAttempt.Sub(clk.Now()), w)
		}
		clk.Advance(w - time.Millisecond)
		dispatch(t, d)
		if n := len(f.keys()); n != i+1 {
			t.Fatalf("sent before its time: %d sends after attempt %d", n, i+1)
		}
		clk.Advance(time.Millisecond)
	}
	dispatch(t, d)
	if got := states(t, store)["ops/k"]; got.State != notify.StateDelivered || got.Attempts != 8 || got.LastError != "" {
		t.Fatalf("got %s after %d attempts (last error %q), want delivered after 8", got.State, got.Attempts, got.LastError)
	}
	if got := stat(d, "slack", notify.OutcomeRetried); got != 7 {
		t.Errorf("got %d retries counted, want 7", got)
	}
}

func TestDedup(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{}
	d := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "webhook", Notifier: f}, notify.Receiver{Name: "sre", Provider: "webhook", Notifier: f})
	ctx := context.Background()
	batch := []patrol.Notification{note("ops", "k"), note("ops", "k"), note("sre", "k")}
	if err := d.Enqueue(ctx, batch); err != nil {
		t.Fatal(err)
	}
	dispatch(t, d)
	if err := d.Enqueue(ctx, batch); err != nil { // again, after delivery
		t.Fatal(err)
	}
	dispatch(t, d)
	if got := f.keys(); len(got) != 2 {
		t.Errorf("got %d sends, want 2 (one per receiver)", len(got))
	}
	if got := stat(d, "webhook", notify.OutcomeDuplicate); got != 4 {
		t.Errorf("got %d duplicates counted, want 4", got)
	}
}

// A receiver that is down receives everything once it is back, in order, once; the
// other receivers are not held up meanwhile. The receivers are real webhooks built
// from a Config, against a server that answers 503 for a while.
func TestOrderAfterOutage(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	var mu sync.Mutex
	var hits []string // "receiver key status"
	srv := notifytest.NewServer(t, func(_ int, r notifytest.Request) notifytest.Reply {
		var p struct {
			Alerts []struct{ Annotations map[string]string }
		}
		if err := json.Unmarshal(r.Body, &p); err != nil || len(p.Alerts) != 1 {
			return notifytest.Reply{Status: 400}
		}
		receiver, key := strings.TrimPrefix(r.URI, "/"), p.Alerts[0].Annotations["summary"]
		status := 200
		if receiver == "down" && down.Load() {
			status = 503
		}
		mu.Lock()
		hits = append(hits, fmt.Sprintf("%s %s %d", receiver, key, status))
		mu.Unlock()
		return notifytest.Reply{Status: status}
	})
	clk := notifytest.NewClock(notifytest.T0)
	store := &notify.MemStore{}
	cfg := notify.Config{
		Receivers: []notify.ReceiverConfig{
			{Name: "down", Type: "webhook", Settings: &webhook.ReceiverConfig{URL: srv.URL + "/down"}},
			{Name: "up", Type: "webhook", Settings: webhook.ReceiverConfig{URL: srv.URL + "/up"}},
		},
		Outbox: outbox,
	}
	d, err := notify.New(cfg, store, clk)
	if err != nil {
		t.Fatal(err)
	}
	var batch []patrol.Notification
	for i := range 5 {
		batch = append(batch, note("down", fmt.Sprintf("k%d", i)), note("up", fmt.Sprintf("k%d", i)))
	}
	if err := d.Enqueue(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		dispatch(t, d)
		clk.Advance(time.Minute)
	}
	st := states(t, store)
	for i := range 5 {
		if s := st[fmt.Sprintf("up/k%d", i)].State; s != notify.StateDelivered {
			t.Errorf("up/k%d: got %s while the other receiver is down, want delivered", i, s)
		}
		if s := st[fmt.Sprintf("down/k%d", i)].State; s != notify.StatePending {
			t.Errorf("down/k%d: got %s, want pending", i, s)
		}
	}
	if a := st["down/k1"].Attempts; a != 0 {
		t.Errorf("down/k1 was tried %d times behind a failing head, want 0", a)
	}
	down.Store(false)
	for range 2 {
		clk.Advance(time.Minute)
		dispatch(t, d)
	}
	for i := range 5 {
		if s := states(t, store)[fmt.Sprintf("down/k%d", i)].State; s != notify.StateDelivered {
			t.Errorf("down/k%d: got %s, want delivered", i, s)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var downHits, upHits []string
	for _, h := range hits {
		if strings.HasPrefix(h, "down ") {
			downHits = append(downHits, h)
		} else {
			upHits = append(upHits, h)
		}
	}
	// Only the head was tried during the outage; then all five, in order, once.
	var want []string
	for range 10 {
		want = append(want, "down k0 503")
	}
	for i := range 5 {
		want = append(want, fmt.Sprintf("down k%d 200", i))
	}
	if !slices.Equal(downHits, want) {
		t.Errorf("down got\n%s\nwant\n%s", strings.Join(downHits, "\n"), strings.Join(want, "\n"))
	}
	if want := []string{"up k0 200", "up k1 200", "up k2 200", "up k3 200", "up k4 200"}; !slices.Equal(upHits, want) {
		t.Errorf("up got %v, want %v", upHits, want)
	}
	if got := stat(d, "webhook", notify.OutcomeDelivered); got != 10 {
		t.Errorf("got %d delivered counted, want 10", got)
	}
}
