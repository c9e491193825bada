package pagerduty_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/pagerduty"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*pagerduty.PagerDuty)(nil)

func TestEventsGolden(t *testing.T) {
	cases := map[string]patrol.Notification{
		"trigger":     notifytest.Notification(patrol.NotifyFiring),
		"acknowledge": notifytest.Notification(patrol.NotifyAck),
		"resolve":     notifytest.Notification(patrol.NotifyResolved),
		"group":       notifytest.Group(),
		"test":        notifytest.Notification(patrol.NotifyTest),
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Status: 202, Body: `{"status":"success","message":"Event processed","dedup_key":"x"}`}
			})
			p, err := pagerduty.New(pagerduty.Config{RoutingKey: "R0UT1NGKEY", URL: srv.URL, ExternalURL: "https://portpatrol.example.com"})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			for _, r := range srv.Requests() {
				b.Write(r.Dump("Content-Type"))
				b.WriteString("\n")
			}
			notifytest.Golden(t, name+".golden", b.Bytes())
		})
	}
}

func TestSeverityMapping(t *testing.T) {
	for s, want := range map[patrol.Severity]string{patrol.P0: "critical", patrol.P1: "error", patrol.P2: "warning", patrol.P3: "info"} {
		if got := pagerduty.Severity(s); got != want {
			t.Errorf("%s: got %q, want %q", s, got, want)
		}
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		status    int
		permanent bool
	}{{400, true}, {429, false}, {500, false}}
	for _, c := range cases {
		srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
			return notifytest.Reply{Status: c.status, Body: `{"status":"invalid event","message":"Event object is invalid"}`}
		})
		p, _ := pagerduty.New(pagerduty.Config{RoutingKey: "k", URL: srv.URL})
		err := p.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		if err == nil || send.IsPermanent(err) != c.permanent {
			t.Errorf("%d: got %v, want permanent=%v", c.status, err, c.permanent)
		}
	}
	p, _ := pagerduty.New(pagerduty.Config{RoutingKey: "k", URL: "http://127.0.0.1:1"})
	if err := p.Notify(context.Background(), notifytest.Notification(patrol.NotifyImpact)); !send.IsPermanent(err) {
		t.Errorf("impact notice: got %v, want a permanent error", err)
	}
}
