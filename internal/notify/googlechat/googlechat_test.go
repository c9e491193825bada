package googlechat_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/googlechat"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*googlechat.GoogleChat)(nil)

const path = "/v1/spaces/AAAA/messages?key=SECRETKEY&token=SECRETTOKEN"

func TestPayloadGolden(t *testing.T) {
	cases := []struct {
		name string
		n    patrol.Notification
	}{
		{"firing", notifytest.Notification(patrol.NotifyFiring)},
		{"resolved", notifytest.Notification(patrol.NotifyResolved)},
		{"group", notifytest.Group()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Body: `{"name":"spaces/AAAA/messages/1"}`}
			})
			g, err := googlechat.New(googlechat.Config{URL: srv.URL + path})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Notify(context.Background(), c.n); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			notifytest.Golden(t, c.name+".golden", reqs[0].Dump("Content-Type"))
		})
	}
}

// Firing and resolved of one alert go to the same thread; the credential stays in the
// query as given.
func TestThread(t *testing.T) {
	srv := notifytest.NewServer(t, nil)
	g, err := googlechat.ReceiverConfig{URL: srv.URL + path}.Build(receiver.Env{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyResolved} {
		if err := g.Notify(context.Background(), notifytest.Notification(k)); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, r := range srv.Requests() {
		if r.Method != "POST" || !strings.HasPrefix(r.URI, "/v1/spaces/AAAA/messages?") || !strings.Contains(r.URI, "key=SECRETKEY") ||
			!strings.Contains(r.URI, "token=SECRETTOKEN") || !strings.Contains(r.URI, "messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD") {
			t.Errorf("got %s %s, want POST to the webhook with key, token and messageReplyOption", r.Method, r.URI)
		}
		var m struct{ Thread struct{ ThreadKey string } }
		json.Unmarshal(r.Body, &m)
		keys = append(keys, m.Thread.ThreadKey)
	}
	if len(keys) != 2 || keys[0] != keys[1] || keys[0] != "portpatrol-9f2c1e7a5b3d4c6e" {
		t.Errorf("got thread keys %v, want the alert's fingerprint twice", keys)
	}
}

func TestErrorHidesCredential(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 400, Body: `{"error":{"code":400,"message":"Invalid JSON payload"}}`}
	})
	g, _ := googlechat.New(googlechat.Config{URL: srv.URL + path})
	err := g.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("got %v, want a permanent error without key or token", err)
	}
}

func TestValidate(t *testing.T) {
	if err := (googlechat.ReceiverConfig{}).Validate(); err == nil || err.Error() != "url: required for type googlechat" {
		t.Errorf("got %v, want url: required for type googlechat", err)
	}
}
