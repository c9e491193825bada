package alertmanager_test

import (
	"context"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/alertmanager"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*alertmanager.Alertmanager)(nil)

func TestPayloadGolden(t *testing.T) {
	cases := map[string]patrol.Notification{
		"firing":   notifytest.Notification(patrol.NotifyFiring),
		"resolved": notifytest.Notification(patrol.NotifyResolved),
		"group":    notifytest.Group(),
		"test":     notifytest.Notification(patrol.NotifyTest),
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			srv := notifytest.NewServer(t, nil)
			am, err := alertmanager.New(alertmanager.Config{URL: srv.URL + "/", ExternalURL: "https://portpatrol.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if err := am.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			notifytest.Golden(t, name+".golden", srv.Requests()[0].Dump("Content-Type"))
		})
	}
}

func TestBadRequestIsPermanent(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 400, Body: `{"code":400,"message":"start time must be before end time"}`}
	})
	am, _ := alertmanager.New(alertmanager.Config{URL: srv.URL})
	if err := am.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); !send.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
}
