package notify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/alertmanager"
	"github.com/portpatrol/portpatrol/internal/notify/dingtalk"
	"github.com/portpatrol/portpatrol/internal/notify/email"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/pagerduty"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
	"github.com/portpatrol/portpatrol/internal/notify/telegram"
	"github.com/portpatrol/portpatrol/internal/notify/webhook"
	"github.com/portpatrol/portpatrol/internal/notify/wecom"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// A delivery that is not delivered within MaxAge expires, is counted, and no longer
// holds back its receiver's queue.
func TestExpiry(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{fail: func(_ int, n patrol.Notification) error {
		if n.Key == "old" {
			return &send.Error{Status: 503, Err: errors.New("503")}
		}
		return nil
	}}
	d := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "email", Notifier: f})
	ctx := context.Background()
	d.Enqueue(ctx, []patrol.Notification{note("ops", "old")})
	clk.Advance(30 * time.Minute)
	d.Enqueue(ctx, []patrol.Notification{note("ops", "new")})
	for clk.Now().Before(notifytest.T0.Add(2 * time.Hour)) {
		dispatch(t, d)
		clk.Advance(10 * time.Second)
	}
	st := states(t, store)
	old, nw := st["ops/old"], st["ops/new"]
	if old.State != notify.StateExpired || old.LastError == "" {
		t.Errorf("old: got %s (last error %q), want expired with its last error", old.State, old.LastError)
	}
	if want := notifytest.T0.Add(time.Hour); old.DoneAt.Before(want) || old.DoneAt.After(want.Add(10*time.Second)) {
		t.Errorf("old expired at %s, want at its max age %s", old.DoneAt, want)
	}
	if nw.State != notify.StateDelivered {
		t.Errorf("new: got %s, want delivered once old expired", nw.State)
	}
	if got := stat(d, "email", notify.OutcomeExpired); got != 1 {
		t.Errorf("got %d expired counted, want 1", got)
	}
}

// A permanent failure is not retried, keeps the provider's answer, and unblocks the
// queue.
func TestPermanentFailure(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{fail: func(_ int, n patrol.Notification) error {
		if n.Key == "bad" {
			return &send.Error{Permanent: true, Status: 400, Body: "invalid_payload", Err: errors.New("hooks.slack.com answered 400 Bad Request")}
		}
		return nil
	}}
	d := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "slack", Notifier: f})
	d.Enqueue(context.Background(), []patrol.Notification{note("ops", "bad"), note("ops", "good")})
	if n := dispatch(t, d); n != 2 {
		t.Fatalf("finished %d, want 2", n)
	}
	st := states(t, store)
	if bad := st["ops/bad"]; bad.State != notify.StateFailed || !strings.Contains(bad.LastError, "invalid_payload") || bad.Attempts != 1 {
		t.Errorf("bad: got %s after %d attempts, last error %q; want failed after 1 with the body", bad.State, bad.Attempts, bad.LastError)
	}
	if st["ops/good"].State != notify.StateDelivered {
		t.Errorf("good: got %s, want delivered", st["ops/good"].State)
	}
	if got, want := f.keys(), []string{"bad", "good"}; !slices.Equal(got, want) {
		t.Errorf("got sends %v, want %v", got, want)
	}
}

// Run wakes on Enqueue, retries on its ticker, and returns when its context ends,
// leaving no goroutine behind (TestMain checks).
func TestRun(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{sent: make(chan patrol.Notification, 10), fail: func(i int, _ patrol.Notification) error {
		if i == 0 {
			return &send.Error{Status: 500, Err: errors.New("500")}
		}
		return nil
	}}
	d := newDispatcher(t, store, clk, notify.Receiver{Name: "ops", Provider: "webhook", Notifier: f})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	if err := d.Enqueue(ctx, []patrol.Notification{note("ops", "k")}); err != nil {
		t.Fatal(err)
	}
	<-f.sent // the first attempt fails
	// Tick until the retry is due: the wait is at most BackoffMin.
	for i := 0; ; i++ {
		clk.Advance(time.Second)
		select {
		case n := <-f.sent:
			if n.Key != "k" {
				t.Fatalf("got %q, want k", n.Key)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run returned %v", err)
			}
			if s := states(t, store)["ops/k"]; s.State != notify.StateDelivered {
				t.Fatalf("got %s, want delivered", s.State)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if i > 100 {
			cancel()
			<-done
			t.Fatal("no retry after 100 ticks")
		}
	}
}

// Receivers with a resend interval get their active alerts again until they resolve,
// and a restarted dispatcher picks the active alerts up from the store.
func TestResend(t *testing.T) {
	store := &notify.MemStore{}
	clk := notifytest.NewClock(notifytest.T0)
	f := &fake{sent: make(chan patrol.Notification, 100)}
	am := notify.Receiver{Name: "am", Provider: "alertmanager", Notifier: f, Resend: time.Minute}
	d := newDispatcher(t, store, clk, am)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	d.Enqueue(ctx, []patrol.Notification{note("am", "fire")})
	expect := func(kind patrol.NotificationKind) patrol.Notification {
		t.Helper()
		select {
		case n := <-f.sent:
			if n.Kind != kind || len(n.Alerts) != 1 || n.Alerts[0].Fingerprint != notifytest.Alert().Fingerprint {
				t.Fatalf("got %s with %d alerts, want %s of the alert", n.Kind, len(n.Alerts), kind)
			}
			return n
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s sent", kind)
		}
		return patrol.Notification{}
	}
	expect(patrol.NotifyFiring)
	clk.Advance(time.Minute)
	expect(patrol.NotifyReminder)
	cancel()
	<-done

	// A new process resends what the old one left active.
	d2 := newDispatcher(t, store, clk, am)
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- d2.Run(ctx) }()
	clk.Advance(time.Minute)
	expect(patrol.NotifyReminder)
	resolved := notifytest.Notification(patrol.NotifyResolved)
	resolved.Receiver = "am"
	d2.Enqueue(ctx, []patrol.Notification{resolved})
	// A reminder the new process decided before the resolve may still be delivered
	// first; none may follow it.
	for n := expectOneOf(t, f.sent, patrol.NotifyReminder, patrol.NotifyResolved); n.Kind != patrol.NotifyResolved; {
		n = expectOneOf(t, f.sent, patrol.NotifyReminder, patrol.NotifyResolved)
	}
	clk.Advance(time.Minute)
	clk.Advance(time.Minute)
	select {
	case n := <-f.sent:
		t.Errorf("got %s after the alert resolved", n.Kind)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	<-done
}

// At most Concurrency receivers are sent to at once.
func TestConcurrencyBound(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	slow := notifierFunc(func(ctx context.Context, n patrol.Notification) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	})
	o := outbox
	o.Concurrency = 2
	var rs []notify.Receiver
	var batch []patrol.Notification
	for _, name := range []string{"a", "b", "c", "d", "e"} {
		rs = append(rs, notify.Receiver{Name: name, Provider: "webhook", Notifier: slow})
		batch = append(batch, note(name, "1"), note(name, "2"))
	}
	d, err := notify.NewDispatcher(o, &notify.MemStore{}, notifytest.NewClock(notifytest.T0), rs...)
	if err != nil {
		t.Fatal(err)
	}
	d.Enqueue(context.Background(), batch)
	if n := dispatch(t, d); n != 10 {
		t.Fatalf("delivered %d, want 10", n)
	}
	if most > 2 {
		t.Errorf("%d sends at once, want at most 2", most)
	}
}

func TestEnqueueUnknownReceiver(t *testing.T) {
	store := &notify.MemStore{}
	d := newDispatcher(t, store, notifytest.NewClock(notifytest.T0), notify.Receiver{Name: "ops", Provider: "webhook", Notifier: &fake{}})
	err := d.Enqueue(context.Background(), []patrol.Notification{note("nobody", "k"), note("ops", "k")})
	if err == nil || !strings.Contains(err.Error(), `"nobody"`) {
		t.Fatalf("got %v, want an error naming the receiver", err)
	}
	if _, ok := states(t, store)["ops/k"]; !ok {
		t.Error("the known receiver's notification was not written")
	}
}

func TestStats(t *testing.T) {
	d := newDispatcher(t, &notify.MemStore{}, notifytest.NewClock(notifytest.T0),
		notify.Receiver{Name: "x", Provider: "slack", Notifier: &fake{}},
		notify.Receiver{Name: "y", Provider: "email", Notifier: &fake{}})
	d.Enqueue(context.Background(), []patrol.Notification{note("x", "1")})
	st := d.Stats()
	if len(st) != 2*len(notify.Outcomes) {
		t.Fatalf("got %d counters, want %d", len(st), 2*len(notify.Outcomes))
	}
	if st[0].Provider != "email" || st[0].Outcome != notify.OutcomeEnqueued || st[len(notify.Outcomes)].Provider != "slack" {
		t.Errorf("not sorted by provider and outcome: %+v", st)
	}
	if got := stat(d, "slack", notify.OutcomeEnqueued); got != 1 {
		t.Errorf("got %d enqueued, want 1", got)
	}
}

func TestTestSendsAtOnce(t *testing.T) {
	srv := notifytest.NewServer(t, nil)
	d, err := notify.New(notify.Config{Receivers: []notify.ReceiverConfig{{Name: "hook", Type: "webhook", Settings: &webhook.ReceiverConfig{URL: srv.URL}}}},
		&notify.MemStore{}, notifytest.NewClock(notifytest.T0))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Test(context.Background(), "hook"); err != nil {
		t.Fatal(err)
	}
	if r := srv.Requests(); len(r) != 1 || !strings.Contains(string(r[0].Body), `"kind":"test"`) {
		t.Fatalf("got %d requests, want one test notification", len(r))
	}
	if err := d.Test(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "hook") {
		t.Errorf("unknown receiver: got %v, want an error listing the receivers", err)
	}
	srv.Close()
	if err := d.Test(context.Background(), "hook"); err == nil {
		t.Error("closed server: got no error")
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rk"), []byte("R0UT1NG\n"), 0o600)
	f := false
	cases := []struct {
		name string
		rc   notify.ReceiverConfig
		want string // "" means valid
	}{
		{"ok pagerduty from file", notify.ReceiverConfig{Name: "pd", Type: "pagerduty", Settings: &pagerduty.ReceiverConfig{RoutingKeyFile: "rk"}}, ""},
		{"ok email", notify.ReceiverConfig{Name: "m", Type: "email", Settings: &email.ReceiverConfig{SMTP: &email.SMTPConfig{Host: "mx", From: "a@b.c", To: []string{"d@e.f"}, StartTLS: &f}}}, ""},
		{"ok settings as a value", notify.ReceiverConfig{Name: "x", Type: "slack", Settings: slack.ReceiverConfig{URL: "https://x"}}, ""},
		{"no name", notify.ReceiverConfig{Type: "slack", Settings: &slack.ReceiverConfig{URL: "https://x"}}, "receivers[0].name: missing"},
		{"no type", notify.ReceiverConfig{Name: "x"}, "receivers[0].type: missing"},
		{"bad type", notify.ReceiverConfig{Name: "x", Type: "pager"}, `receivers[0].type: unknown type "pager"`},
		{"slack no settings", notify.ReceiverConfig{Name: "x", Type: "slack"}, "receivers[0].url: required for type slack"},
		{"settings of another type", notify.ReceiverConfig{Name: "x", Type: "slack", Settings: &pagerduty.ReceiverConfig{RoutingKey: "k"}}, "receivers[0].type: settings of type *pagerduty.ReceiverConfig do not belong to type slack"},
		{"bad url", notify.ReceiverConfig{Name: "x", Type: "slack", Settings: &slack.ReceiverConfig{URL: "ftp://x"}}, "receivers[0].url: want an http:// or https:// URL"},
		{"both secret forms", notify.ReceiverConfig{Name: "x", Type: "dingtalk", Settings: &dingtalk.ReceiverConfig{URL: "https://x", Secret: "a", SecretFile: "b"}}, "receivers[0].secret_file: give secret or secret_file, not both"},
		{"missing file", notify.ReceiverConfig{Name: "x", Type: "pagerduty", Settings: &pagerduty.ReceiverConfig{RoutingKeyFile: "nope"}}, "receivers[0].routing_key_file:"},
		{"telegram", notify.ReceiverConfig{Name: "x", Type: "telegram", Settings: &telegram.ReceiverConfig{Token: "t"}}, "receivers[0].chat_id: required for type telegram"},
		{"negative resend", notify.ReceiverConfig{Name: "x", Type: "alertmanager", Settings: &alertmanager.ReceiverConfig{URL: "http://am", ResendInterval: -time.Second}}, "receivers[0].resend_interval: must not be negative"},
		{"lang", notify.ReceiverConfig{Name: "x", Type: "wecom", Settings: &wecom.ReceiverConfig{URL: "https://x"}, Lang: "fr"}, `receivers[0].lang: unknown language "fr"`},
		{"template", notify.ReceiverConfig{Name: "x", Type: "wecom", Settings: &wecom.ReceiverConfig{URL: "https://x"}, Templates: &notify.TemplateConfig{Body: "{{.Nope"}}, "receivers[0].templates.body:"},
		{"title template", notify.ReceiverConfig{Name: "x", Type: "wecom", Settings: &wecom.ReceiverConfig{URL: "https://x"}, Templates: &notify.TemplateConfig{Title: "{{if}}"}}, "receivers[0].templates.title:"},
		{"timezone", notify.ReceiverConfig{Name: "x", Type: "wecom", Settings: &wecom.ReceiverConfig{URL: "https://x"}, Timezone: "Mars/Olympus"}, "receivers[0].timezone:"},
		{"email no to", notify.ReceiverConfig{Name: "m", Type: "email", Settings: &email.ReceiverConfig{SMTP: &email.SMTPConfig{Host: "mx", From: "a@b.c"}}}, "receivers[0].smtp.to: at least one recipient"},
		{"email bad to", notify.ReceiverConfig{Name: "m", Type: "email", Settings: &email.ReceiverConfig{SMTP: &email.SMTPConfig{Host: "mx", From: "a@b.c", To: []string{"x"}}}}, "receivers[0].smtp.to[0]:"},
		{"email password without user", notify.ReceiverConfig{Name: "m", Type: "email", Settings: &email.ReceiverConfig{SMTP: &email.SMTPConfig{Host: "mx", From: "a@b.c", To: []string{"d@e.f"}, PasswordFile: "rk"}}}, "receivers[0].smtp.username: required when a password is given"},
		{"email no smtp", notify.ReceiverConfig{Name: "m", Type: "email"}, "receivers[0].smtp: required for type email"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := notify.New(notify.Config{Receivers: []notify.ReceiverConfig{c.rc}, Dir: dir}, &notify.MemStore{}, nil)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("got %v, want no error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), "notify."+c.want)):
				t.Fatalf("got %v, want an error containing %q", err, "notify."+c.want)
			}
		})
	}
	_, err := notify.New(notify.Config{Receivers: []notify.ReceiverConfig{
		{Name: "x", Type: "wecom", Settings: &wecom.ReceiverConfig{URL: "https://x"}}, {Name: "x", Type: "wecom", Settings: &wecom.ReceiverConfig{URL: "https://y"}},
	}, Outbox: notify.OutboxConfig{BackoffMin: time.Hour, BackoffMax: time.Minute}}, &notify.MemStore{}, nil)
	for _, want := range []string{`notify.receivers[1].name: "x" is already used by receivers[0]`, "notify.outbox.backoff_max:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error containing %q", err, want)
		}
	}
	var fe *notify.FieldError
	if !errors.As(err, &fe) {
		t.Errorf("got %T, want errors.As to find a *notify.FieldError", err)
	}
}

// expectOneOf receives the next notification sent and checks that it is of one of the
// kinds.
func expectOneOf(t *testing.T, sent <-chan patrol.Notification, kinds ...patrol.NotificationKind) patrol.Notification {
	t.Helper()
	select {
	case n := <-sent:
		if !slices.Contains(kinds, n.Kind) {
			t.Fatalf("got %s, want one of %v", n.Kind, kinds)
		}
		return n
	case <-time.After(5 * time.Second):
		t.Fatalf("nothing sent; want one of %v", kinds)
	}
	return patrol.Notification{}
}
