package slack_test

import (
	"context"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/slack"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*slack.Slack)(nil)

func TestPayloadGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := []struct {
		name    string
		n       patrol.Notification
		tp      *render.Templates
		buttons bool
	}{
		{"firing_buttons", notifytest.Notification(patrol.NotifyFiring), nil, true},
		{"resolved_buttons", notifytest.Notification(patrol.NotifyResolved), nil, true},
		{"firing", notifytest.Notification(patrol.NotifyFiring), nil, false},
		{"firing_zh", notifytest.Notification(patrol.NotifyFiring), zh, false},
		{"resolved", notifytest.Notification(patrol.NotifyResolved), nil, false},
		{"ack", notifytest.Notification(patrol.NotifyAck), nil, false},
		{"group", notifytest.Group(), nil, false},
		{"impact", notifytest.Notification(patrol.NotifyImpact), nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: "ok"} })
			s, err := slack.New(slack.Config{URL: srv.URL + "/services/T0/B0/XXX", Templates: c.tp, Buttons: c.buttons})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Notify(context.Background(), c.n); err != nil {
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

func TestRejectedPayloadIsPermanent(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 400, Body: "invalid_blocks"}
	})
	s, _ := slack.New(slack.Config{URL: srv.URL})
	err := s.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
}
