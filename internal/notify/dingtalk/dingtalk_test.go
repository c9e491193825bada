package dingtalk_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/dingtalk"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*dingtalk.DingTalk)(nil)

var now = time.Date(2026, 3, 1, 10, 2, 0, 123e6, time.UTC)

func TestPayloadGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := map[string]patrol.Notification{
		"firing":   notifytest.Notification(patrol.NotifyFiring),
		"resolved": notifytest.Notification(patrol.NotifyResolved),
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
				return notifytest.Reply{Body: `{"errcode":0,"errmsg":"ok"}`}
			})
			d, err := dingtalk.New(dingtalk.Config{URL: srv.URL + "/robot/send?access_token=T0KEN", Secret: "SEC000", Templates: zh, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			r := srv.Requests()[0]
			notifytest.Golden(t, name+"_zh.golden", r.Dump("Content-Type"))
			checkSign(t, r.URI, "SEC000")
		})
	}
}

// checkSign verifies the signature as DingTalk documents it, independently of
// dingtalk.Sign: stringToSign = timestamp + "\n" + secret; HMAC-SHA256 keyed with the
// secret; Base64; URL-encoded into the sign parameter.
func checkSign(t *testing.T, uri, secret string) {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	ts := q.Get("timestamp")
	if want := strconv.FormatInt(now.UnixMilli(), 10); ts != want {
		t.Errorf("got timestamp %q, want %q", ts, want)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "\n" + secret))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := q.Get("sign"); got != want {
		t.Errorf("got sign %q, want %q", got, want)
	}
	if q.Get("access_token") != "T0KEN" {
		t.Errorf("access_token lost: %s", uri)
	}
	// The raw query must carry the URL-encoded form of the Base64 text.
	if raw := u.RawQuery; !containsParam(raw, "sign="+url.QueryEscape(want)) {
		t.Errorf("sign is not URL-encoded in %q", raw)
	}
}

func containsParam(raw, kv string) bool {
	return slices.Contains(strings.Split(raw, "&"), kv)
}

func TestErrcodes(t *testing.T) {
	cases := []struct {
		body      string
		permanent bool
	}{
		{`{"errcode":310000,"errmsg":"sign not match"}`, true},
		{`{"errcode":130101,"errmsg":"send too fast"}`, false},
	}
	for _, c := range cases {
		srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: c.body} })
		d, _ := dingtalk.New(dingtalk.Config{URL: srv.URL})
		err := d.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		if err == nil || send.IsPermanent(err) != c.permanent {
			t.Errorf("%s: got %v, want permanent=%v", c.body, err, c.permanent)
		}
	}
}
