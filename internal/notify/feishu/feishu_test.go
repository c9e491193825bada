package feishu_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/feishu"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*feishu.Feishu)(nil)

var now = time.Date(2026, 3, 1, 10, 2, 0, 0, time.UTC)

func TestPayloadGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := []struct {
		name string
		n    patrol.Notification
		tp   *render.Templates
	}{
		{"firing_zh", notifytest.Notification(patrol.NotifyFiring), zh},
		{"resolved_zh", notifytest.Notification(patrol.NotifyResolved), zh},
		{"impact_en", notifytest.Notification(patrol.NotifyImpact), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Body: `{"code":0,"data":{},"msg":"success"}`}
			})
			f, err := feishu.New(feishu.Config{URL: srv.URL + "/open-apis/bot/v2/hook/abc", Secret: "fs-secret", Templates: c.tp, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Notify(context.Background(), c.n); err != nil {
				t.Fatal(err)
			}
			r := srv.Requests()[0]
			notifytest.Golden(t, c.name+".golden", r.Dump("Content-Type"))
			checkSign(t, r.Body, "fs-secret")
		})
	}
}

// checkSign verifies the signature as Feishu documents it, independently of
// feishu.Sign: string_to_sign = timestamp + "\n" + secret is the HMAC-SHA256 KEY,
// the message is empty, and the digest is Base64-encoded.
func checkSign(t *testing.T, body []byte, secret string) {
	t.Helper()
	var m struct{ Timestamp, Sign string }
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	if want := strconv.FormatInt(now.Unix(), 10); m.Timestamp != want {
		t.Errorf("got timestamp %q, want %q", m.Timestamp, want)
	}
	mac := hmac.New(sha256.New, []byte(m.Timestamp+"\n"+secret))
	mac.Write(nil)
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); m.Sign != want {
		t.Errorf("got sign %q, want %q", m.Sign, want)
	}
}

func TestReplyCodes(t *testing.T) {
	cases := []struct {
		body      string
		permanent bool
		ok        bool
	}{
		{`{"StatusCode":0,"StatusMessage":"success"}`, false, true},
		{`{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}`, true, false},
		{`{"code":9499,"msg":"too many request"}`, false, false},
	}
	for _, c := range cases {
		srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: c.body} })
		f, _ := feishu.New(feishu.Config{URL: srv.URL})
		err := f.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		if c.ok {
			if err != nil {
				t.Errorf("%s: got %v", c.body, err)
			}
			continue
		}
		if err == nil || send.IsPermanent(err) != c.permanent {
			t.Errorf("%s: got %v, want permanent=%v", c.body, err, c.permanent)
		}
	}
}
