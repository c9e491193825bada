package ntfy_test

import (
	"context"
	"mime"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/ntfy"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*ntfy.Ntfy)(nil)

func TestPayloadGolden(t *testing.T) {
	zh, _ := render.New(render.Config{Lang: "zh"})
	cases := []struct {
		name string
		n    patrol.Notification
		tp   *render.Templates
	}{
		{"firing", notifytest.Notification(patrol.NotifyFiring), nil},
		{"resolved", notifytest.Notification(patrol.NotifyResolved), nil},
		{"firing_zh", notifytest.Notification(patrol.NotifyFiring), zh},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Body: `{"id":"x"}`} })
			n, err := ntfy.New(ntfy.Config{URL: srv.URL, Topic: "ops-alerts", Templates: c.tp})
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Notify(context.Background(), c.n); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			notifytest.Golden(t, c.name+".golden", reqs[0].Dump("Content-Type", "Title", "Priority", "Tags", "Click", "Authorization"))
		})
	}
}

// A built receiver with a token publishes to its topic with the token as bearer, and
// a Chinese title survives the header's encoding.
func TestRequest(t *testing.T) {
	srv := notifytest.NewServer(t, nil)
	n, err := ntfy.ReceiverConfig{URL: srv.URL + "/", Topic: "ops", Token: "tk_SECRET"}.Build(receiver.Env{Templates: mustZH(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.URI != "/ops" || r.Header.Get("Authorization") != "Bearer tk_SECRET" || r.Header.Get("Priority") != "5" {
		t.Errorf("got %s %s auth %q priority %q, want POST /ops, Bearer tk_SECRET, 5", r.Method, r.URI, r.Header.Get("Authorization"), r.Header.Get("Priority"))
	}
	title, err := new(mime.WordDecoder).DecodeHeader(r.Header.Get("Title"))
	if err != nil || !strings.HasPrefix(title, "[P0 告警]") {
		t.Errorf("got title %q (%v), want it to decode to the Chinese title", title, err)
	}
	if !strings.Contains(string(r.Body), "6379") {
		t.Errorf("got body %q, want the message", r.Body)
	}
}

func mustZH(t *testing.T) *render.Templates {
	zh, err := render.New(render.Config{Lang: "zh"})
	if err != nil {
		t.Fatal(err)
	}
	return zh
}

func TestPriority(t *testing.T) {
	tests := []struct {
		sev  patrol.Severity
		tone render.Tone
		want int
	}{
		{patrol.P0, render.ToneCritical, 5}, {patrol.P1, render.ToneHigh, 4}, {patrol.P2, render.ToneWarning, 3},
		{patrol.P3, render.ToneInfo, 2}, {patrol.P0, render.ToneOK, 2}, {patrol.P0, render.ToneMuted, 2},
	}
	for _, tt := range tests {
		if got := ntfy.Priority(render.Message{Severity: tt.sev, Tone: tt.tone}); got != tt.want {
			t.Errorf("%s %s: got %d, want %d", tt.sev, tt.tone, got, tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 403, Body: `{"code":40301,"http":403,"error":"forbidden"}`}
	})
	n, _ := ntfy.New(ntfy.Config{URL: srv.URL, Topic: "ops", Token: "tk_SECRET"})
	err := n.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) || strings.Contains(err.Error(), "tk_SECRET") {
		t.Errorf("got %v, want a permanent error without the token", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		c    ntfy.ReceiverConfig
		want string
	}{
		{ntfy.ReceiverConfig{}, "topic: required for type ntfy"},
		{ntfy.ReceiverConfig{Topic: "a/b"}, `topic: "a/b": a topic is one path segment, without / ? # % or spaces`},
		{ntfy.ReceiverConfig{Topic: "a", Token: "x", TokenFile: "y"}, "token_file: give token or token_file, not both"},
	}
	for _, tt := range tests {
		if err := tt.c.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("%+v: got %v, want %q", tt.c, err, tt.want)
		}
	}
}
