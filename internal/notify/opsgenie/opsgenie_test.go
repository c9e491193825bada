package opsgenie_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/opsgenie"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*opsgenie.Opsgenie)(nil)

func TestRequestsGolden(t *testing.T) {
	cases := map[string]patrol.Notification{
		"create":      notifytest.Notification(patrol.NotifyFiring),
		"acknowledge": notifytest.Notification(patrol.NotifyAck),
		"close":       notifytest.Notification(patrol.NotifyResolved),
		"test":        notifytest.Notification(patrol.NotifyTest),
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Status: 202, Body: `{"result":"Request will be processed","took":0.1,"requestId":"x"}`}
			})
			o, err := opsgenie.New(opsgenie.Config{APIKey: "genie-key", URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			for _, r := range srv.Requests() {
				b.Write(r.Dump("Authorization", "Content-Type"))
				b.WriteString("\n")
			}
			notifytest.Golden(t, name+".golden", b.Bytes())
		})
	}
}

func TestPriority(t *testing.T) {
	for s, want := range map[patrol.Severity]string{patrol.P0: "P1", patrol.P1: "P2", patrol.P2: "P3", patrol.P3: "P4"} {
		if got := opsgenie.Priority(s); got != want {
			t.Errorf("%s: got %s, want %s", s, got, want)
		}
	}
}

func TestUnauthorizedIsPermanent(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 401, Body: `{"message":"Could not authenticate"}`}
	})
	o, _ := opsgenie.New(opsgenie.Config{APIKey: "bad", URL: srv.URL})
	if err := o.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); !send.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
}
