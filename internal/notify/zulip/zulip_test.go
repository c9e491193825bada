package zulip_test

import (
	"context"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/zulip"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*zulip.Zulip)(nil)

const ok = `{"id":42,"msg":"","result":"success"}`

func TestPayloadGolden(t *testing.T) {
	for _, kind := range []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyResolved} {
		t.Run(string(kind), func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: ok} })
			z, err := zulip.New(zulip.Config{URL: srv.URL, Email: "alerts-bot@example.zulipchat.com", APIKey: "SECRETKEY", Stream: "ops"})
			if err != nil {
				t.Fatal(err)
			}
			if err := z.Notify(context.Background(), notifytest.Notification(kind)); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			r.Body = []byte(strings.ReplaceAll(string(r.Body), "&", "\n&") + "\n")
			notifytest.Golden(t, string(kind)+".golden", r.Dump("Content-Type"))
		})
	}
}

// A built receiver authenticates with the bot's email and key and posts to the
// stream and topic.
func TestRequest(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: ok} })
	z, err := zulip.ReceiverConfig{URL: srv.URL + "/", Email: "bot@z.example", APIKey: "SECRETKEY", Stream: "ops", Topic: "redis"}.Build(receiver.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := z.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.URI != "/api/v1/messages" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("got %s %s (%s), want a form POST to /api/v1/messages", r.Method, r.URI, r.Header.Get("Content-Type"))
	}
	if got, want := r.Header.Get("Authorization"), "Basic "+base64.StdEncoding.EncodeToString([]byte("bot@z.example:SECRETKEY")); got != want {
		t.Errorf("got Authorization %q, want %q", got, want)
	}
	f, _ := url.ParseQuery(string(r.Body))
	if f.Get("type") != "stream" || f.Get("to") != "ops" || f.Get("topic") != "redis" || !strings.HasPrefix(f.Get("content"), "**[P0 FIRING]") {
		t.Errorf("got form %v, want type stream, to ops, topic redis and the content", f)
	}
}

func TestErrors(t *testing.T) {
	srv := notifytest.NewServer(t, func(i int, _ notifytest.Request) notifytest.Reply {
		if i == 0 {
			return notifytest.Reply{Status: 401, Body: `{"code":"UNAUTHORIZED","msg":"Invalid API key","result":"error"}`}
		}
		return notifytest.Reply{Status: 400, Body: `{"code":"STREAM_DOES_NOT_EXIST","msg":"Stream 'ops' does not exist","result":"error","stream":"ops"}`}
	})
	z, _ := zulip.New(zulip.Config{URL: srv.URL, Email: "bot@z.example", APIKey: "SECRETKEY", Stream: "ops"})
	for _, want := range []string{"zulip: 401 UNAUTHORIZED: Invalid API key", "zulip: 400 STREAM_DOES_NOT_EXIST: Stream 'ops' does not exist"} {
		err := z.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		if !send.IsPermanent(err) || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "SECRETKEY") {
			t.Errorf("got %v, want a permanent %q without the key", err, want)
		}
	}
}

func TestValidate(t *testing.T) {
	err := zulip.ReceiverConfig{URL: "https://z.example", Email: "bot", Topic: strings.Repeat("x", 61)}.Validate()
	want := `email: "bot" is not an email address (the bot's, e.g. alerts-bot@example.zulipchat.com)` + "\napi_key: required for type zulip\nstream: required for type zulip\ntopic: 61 characters; Zulip allows 60"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
