package wecom_test

import (
	"context"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/wecom"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*wecom.WeCom)(nil)

func TestPayloadGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := map[string]patrol.Notification{
		"firing_zh":   notifytest.Notification(patrol.NotifyFiring),
		"resolved_zh": notifytest.Notification(patrol.NotifyResolved),
		"impact_zh":   notifytest.Notification(patrol.NotifyImpact),
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Body: `{"errcode":0,"errmsg":"ok"}`}
			})
			w, err := wecom.New(wecom.Config{URL: srv.URL + "/cgi-bin/webhook/send?key=K3Y", Templates: zh})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			notifytest.Golden(t, name+".golden", srv.Requests()[0].Dump("Content-Type"))
		})
	}
}

func TestErrcodes(t *testing.T) {
	cases := []struct {
		body      string
		permanent bool
	}{
		{`{"errcode":93000,"errmsg":"invalid webhook url"}`, true},
		{`{"errcode":45009,"errmsg":"api freq out of limit"}`, false},
	}
	for _, c := range cases {
		srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: c.body} })
		w, _ := wecom.New(wecom.Config{URL: srv.URL})
		err := w.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		if err == nil || send.IsPermanent(err) != c.permanent {
			t.Errorf("%s: got %v, want permanent=%v", c.body, err, c.permanent)
		}
	}
}
