package telegram_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/telegram"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*telegram.Telegram)(nil)

func TestPayloadGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := []struct {
		name string
		n    patrol.Notification
		tp   *render.Templates
	}{
		{"firing", notifytest.Notification(patrol.NotifyFiring), nil},
		{"resolved_zh", notifytest.Notification(patrol.NotifyResolved), zh},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Body: `{"ok":true,"result":{"message_id":1}}`}
			})
			c.n.Alerts[0].Summary = "Redis <primary> & replica refuse connections"
			tg, err := telegram.New(telegram.Config{Token: "123:ABC", ChatID: "-100200300", URL: srv.URL, Templates: c.tp})
			if err != nil {
				t.Fatal(err)
			}
			if err := tg.Notify(context.Background(), c.n); err != nil {
				t.Fatal(err)
			}
			notifytest.Golden(t, c.name+".golden", srv.Requests()[0].Dump("Content-Type"))
		})
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		status     int
		body       string
		permanent  bool
		retryAfter time.Duration
	}{
		{429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 17","parameters":{"retry_after":17}}`, false, 17 * time.Second},
		{400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`, true, 0},
		{403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`, true, 0},
		{502, `bad gateway`, false, 0},
	}
	for _, c := range cases {
		srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
			return notifytest.Reply{Status: c.status, Body: c.body}
		})
		tg, _ := telegram.New(telegram.Config{Token: "123:SECRETTOKEN", ChatID: "1", URL: srv.URL})
		err := tg.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		var se *send.Error
		if !errors.As(err, &se) {
			t.Fatalf("%d: got %v, want a *send.Error", c.status, err)
		}
		if se.Permanent != c.permanent || se.RetryAfter != c.retryAfter {
			t.Errorf("%d: got permanent=%v retryAfter=%v, want %v %v", c.status, se.Permanent, se.RetryAfter, c.permanent, c.retryAfter)
		}
		if strings.Contains(err.Error(), "SECRETTOKEN") {
			t.Errorf("%d: error shows the token: %v", c.status, err)
		}
	}
}
