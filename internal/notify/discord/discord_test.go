package discord_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/discord"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*discord.Discord)(nil)

func TestPayloadGolden(t *testing.T) {
	for _, kind := range []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyResolved, patrol.NotifyAck} {
		t.Run(string(kind), func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Status: 204} })
			d, err := discord.New(discord.Config{URL: srv.URL + "/api/webhooks/123/SECRETTOKEN"})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Notify(context.Background(), notifytest.Notification(kind)); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			notifytest.Golden(t, string(kind)+".golden", reqs[0].Dump("Content-Type"))
		})
	}
}

// The request a built receiver sends: method, path, content type, the embed's colour
// and no mentions.
func TestRequest(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Status: 204} })
	d, err := discord.ReceiverConfig{URL: srv.URL + "/api/webhooks/123/SECRETTOKEN", Username: "noc"}.Build(receiver.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if r.Method != "POST" || r.URI != "/api/webhooks/123/SECRETTOKEN" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %s %s (%s), want POST /api/webhooks/123/SECRETTOKEN (application/json)", r.Method, r.URI, r.Header.Get("Content-Type"))
	}
	var p struct {
		Username string
		Embeds   []struct{ Color int }
		Mention  struct{ Parse []string } `json:"allowed_mentions"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatal(err)
	}
	if p.Username != "noc" || len(p.Embeds) != 1 || p.Embeds[0].Color != 0xD00000 || p.Mention.Parse == nil || len(p.Mention.Parse) != 0 {
		t.Errorf("got %s, want username noc, one red embed, allowed_mentions.parse []", r.Body)
	}
}

func TestErrors(t *testing.T) {
	srv := notifytest.NewServer(t, func(i int, _ notifytest.Request) notifytest.Reply {
		if i == 0 {
			return notifytest.Reply{Status: 429, Body: `{"message": "You are being rate limited.", "retry_after": 1.5, "global": false}`}
		}
		return notifytest.Reply{Status: 404, Body: `{"message": "Unknown Webhook", "code": 10015}`}
	})
	d, _ := discord.New(discord.Config{URL: srv.URL + "/api/webhooks/1/SECRETTOKEN"})
	err := d.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	var se *send.Error
	if !errors.As(err, &se) || se.Permanent || se.RetryAfter != 1500*time.Millisecond {
		t.Errorf("429: got %#v, want a temporary error retrying after 1.5s", err)
	}
	err = d.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) {
		t.Errorf("404: got %v, want a permanent error", err)
	}
	if strings.Contains(err.Error(), "SECRETTOKEN") {
		t.Errorf("the error shows the webhook token: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		c    discord.ReceiverConfig
		want string
	}{
		{discord.ReceiverConfig{}, "url: required for type discord"},
		{discord.ReceiverConfig{URL: "ftp://x"}, `url: want an http:// or https:// URL, got scheme "ftp"`},
		{discord.ReceiverConfig{URL: "https://x/", URLFile: "f"}, "url_file: give url or url_file, not both"},
	}
	for _, tt := range tests {
		if err := tt.c.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("%+v: got %v, want %q", tt.c, err, tt.want)
		}
	}
}
