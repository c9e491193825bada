package pushover_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/pushover"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*pushover.Pushover)(nil)

const ok = `{"status":1,"request":"647d2300-702c-4b38-8b2f-d56326ae460b"}`

func TestPayloadGolden(t *testing.T) {
	for _, kind := range []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyResolved} {
		t.Run(string(kind), func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: ok} })
			p, err := pushover.New(pushover.Config{Token: "azGDORePK8gMaC0QOYAMyEEuzJnyUi", User: "uQiRzpo4DXghDmr9QzzfQu27cmVRsG", URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Notify(context.Background(), notifytest.Notification(kind)); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			// One form field a line, for reading.
			r := reqs[0]
			r.Body = []byte(strings.ReplaceAll(string(r.Body), "&", "\n&") + "\n")
			notifytest.Golden(t, string(kind)+".golden", r.Dump("Content-Type"))
		})
	}
}

// The form a built receiver sends: credentials, the emergency priority of a P0 with
// the configured retry and expire.
func TestRequest(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: ok} })
	p, err := pushover.ReceiverConfig{Token: "APPTOKEN", UserKey: "USERKEY", Retry: 45 * time.Second, Expire: 2 * time.Hour, URL: srv.URL, Sound: "siren"}.Build(receiver.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.URI != "/1/messages.json" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("got %s %s (%s), want a form POST to /1/messages.json", r.Method, r.URI, r.Header.Get("Content-Type"))
	}
	f, err := url.ParseQuery(string(r.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"token": "APPTOKEN", "user": "USERKEY", "priority": "2", "retry": "45", "expire": "7200", "sound": "siren"}
	for k, v := range want {
		if f.Get(k) != v {
			t.Errorf("%s: got %q, want %q", k, f.Get(k), v)
		}
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		sev  patrol.Severity
		tone render.Tone
		want int
	}{
		{patrol.P0, render.ToneCritical, 2}, {patrol.P1, render.ToneHigh, 1}, {patrol.P2, render.ToneWarning, 0},
		{patrol.P3, render.ToneInfo, -1}, {patrol.P0, render.ToneOK, 0}, {patrol.P0, render.ToneMuted, -1},
	}
	for _, tt := range tests {
		if got := pushover.Priority(render.Message{Severity: tt.sev, Tone: tt.tone}); got != tt.want {
			t.Errorf("%s %s: got %d, want %d", tt.sev, tt.tone, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	srv := notifytest.NewServer(t, func(i int, _ notifytest.Request) notifytest.Reply {
		if i == 0 {
			return notifytest.Reply{Status: 400, Body: `{"user":"invalid","errors":["user identifier is not a valid user, group, or subscribed user key"],"status":0,"request":"x"}`}
		}
		return notifytest.Reply{Status: 500, Body: "oops"}
	})
	p, _ := pushover.New(pushover.Config{Token: "APPTOKEN", User: "USERKEY", URL: srv.URL})
	err := p.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) || !strings.Contains(err.Error(), "user identifier is not a valid") {
		t.Errorf("400: got %v, want a permanent error with Pushover's reason", err)
	}
	if strings.Contains(err.Error(), "APPTOKEN") || strings.Contains(err.Error(), "USERKEY") {
		t.Errorf("the error shows a credential: %v", err)
	}
	if err := p.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); err == nil || send.IsPermanent(err) {
		t.Errorf("500: got %v, want a temporary error", err)
	}
}

func TestValidate(t *testing.T) {
	err := pushover.ReceiverConfig{Token: "t", Retry: 10 * time.Second, Expire: 5 * time.Hour}.Validate()
	want := "user_key: required for type pushover\nretry: 10s is under Pushover's minimum of 30s\nexpire: 5h0m0s is outside Pushover's 0–3h"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
