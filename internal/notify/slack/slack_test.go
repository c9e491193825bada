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
		name string
		n    patrol.Notification
		tp   *render.Templates
	}{
		{"firing", notifytest.Notification(patrol.NotifyFiring), nil},
		{"firing_zh", notifytest.Notification(patrol.NotifyFiring), zh},
		{"resolved", notifytest.Notification(patrol.NotifyResolved), nil},
		{"ack", notifytest.Notification(patrol.NotifyAck), nil},
		{"group", notifytest.Group(), nil},
		{"impact", notifytest.Notification(patrol.NotifyImpact), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: "ok"} })
			s, err := slack.New(slack.Config{URL: srv.URL + "/services/T0/B0/XXX", Templates: c.tp})
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
