package mattermost_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/mattermost"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*mattermost.Mattermost)(nil)

func TestPayloadGolden(t *testing.T) {
	for _, kind := range []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyResolved} {
		t.Run(string(kind), func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: "ok"} })
			m, err := mattermost.New(mattermost.Config{URL: srv.URL + "/hooks/SECRETKEY"})
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Notify(context.Background(), notifytest.Notification(kind)); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			notifytest.Golden(t, string(kind)+".golden", reqs[0].Dump("Content-Type"))
		})
	}
}

func TestRequest(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: "ok"} })
	m, err := mattermost.ReceiverConfig{URL: srv.URL + "/hooks/SECRETKEY", Channel: "ops", Username: "pp"}.Build(receiver.Env{})
	if err != nil {
		t.Fatal(err)
	}
	n := notifytest.Notification(patrol.NotifyFiring)
	n.Alerts[0].Summary = "port_unreachable on *redis* [primary]"
	if err := m.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.URI != "/hooks/SECRETKEY" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %s %s (%s), want POST /hooks/SECRETKEY (application/json)", r.Method, r.URI, r.Header.Get("Content-Type"))
	}
	var p struct {
		Channel, Username string
		Attachments       []struct{ Color, Text string }
	}
	json.Unmarshal(r.Body, &p)
	if p.Channel != "ops" || p.Username != "pp" || len(p.Attachments) != 1 || p.Attachments[0].Color != "#D00000" {
		t.Errorf("got %s, want channel ops, username pp, one red attachment", r.Body)
	}
	if !strings.Contains(p.Attachments[0].Text, `port\_unreachable on \*redis\* \[primary\]`) {
		t.Errorf("got text %q, want the summary's markup escaped", p.Attachments[0].Text)
	}
}

func TestErrorHidesKey(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 400, Body: `{"id":"web.incoming_webhook.invalid.app_error"}`}
	})
	m, _ := mattermost.New(mattermost.Config{URL: srv.URL + "/hooks/SECRETKEY"})
	err := m.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) || strings.Contains(err.Error(), "SECRETKEY") {
		t.Errorf("got %v, want a permanent error without the key", err)
	}
}

func TestValidate(t *testing.T) {
	err := mattermost.ReceiverConfig{IconURL: "x"}.Validate()
	if err == nil || err.Error() != "url: required for type mattermost\nicon_url: want an http:// or https:// URL, got scheme \"\"" {
		t.Errorf("got %v", err)
	}
}
