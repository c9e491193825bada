package teams_test

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/teams"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*teams.Teams)(nil)

const path = "/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRETSIG"

func TestPayloadGolden(t *testing.T) {
	for _, kind := range []patrol.NotificationKind{patrol.NotifyFiring, patrol.NotifyResolved} {
		t.Run(string(kind), func(t *testing.T) {
			srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply { return notifytest.Reply{Status: 202} })
			tm, err := teams.New(teams.Config{URL: srv.URL + path})
			if err != nil {
				t.Fatal(err)
			}
			if err := tm.Notify(context.Background(), notifytest.Notification(kind)); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			if reqs[0].Method != "POST" || reqs[0].URI != path {
				t.Errorf("got %s %s, want POST %s", reqs[0].Method, reqs[0].URI, path)
			}
			checkCard(t, reqs[0].Body)
			notifytest.Golden(t, string(kind)+".golden", reqs[0].Dump("Content-Type"))
		})
	}
	t.Run("group", func(t *testing.T) {
		srv := notifytest.NewServer(t, nil)
		tm, _ := teams.ReceiverConfig{URL: srv.URL + path}.Build(receiver.Env{})
		if err := tm.Notify(context.Background(), notifytest.Group()); err != nil {
			t.Fatal(err)
		}
		checkCard(t, srv.Requests()[0].Body)
	})
}

// The Adaptive Cards schema (adaptivecards.io/schemas/adaptive-card.json) is not
// available offline, so the card is checked here against what that schema says of
// the elements used, with the enumerations it gives: the message envelope Teams' Workflows trigger documents, the
// card's type and version, TextBlock's required text and its enumerated properties,
// Action.OpenUrl's required url; unknown properties are refused.
func checkCard(t *testing.T, body []byte) {
	t.Helper()
	type textBlock struct {
		Type     string `json:"type"`
		Text     *string
		Wrap     bool
		Weight   string
		Size     string
		Color    string
		Spacing  string
		IsSubtle bool
	}
	type action struct {
		Type, Title string
		URL         *string `json:"url"`
	}
	var msg struct {
		Type        string
		Attachments []struct {
			ContentType string
			ContentURL  *string `json:"contentUrl"`
			Content     struct {
				Schema  string `json:"$schema"`
				Type    string
				Version string
				Body    []textBlock
				Actions []action
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("card: %v", err)
	}
	if msg.Type != "message" || len(msg.Attachments) != 1 {
		t.Fatalf("got type %q with %d attachments, want a message with one", msg.Type, len(msg.Attachments))
	}
	a := msg.Attachments[0]
	if a.ContentType != "application/vnd.microsoft.card.adaptive" {
		t.Errorf("got contentType %q", a.ContentType)
	}
	c := a.Content
	if c.Type != "AdaptiveCard" || !regexp.MustCompile(`^1\.[0-5]$`).MatchString(c.Version) || c.Schema != "http://adaptivecards.io/schemas/adaptive-card.json" {
		t.Errorf("got card type %q version %q $schema %q, want AdaptiveCard, 1.0–1.5 and the schema URL", c.Type, c.Version, c.Schema)
	}
	if len(c.Body) < 2 {
		t.Errorf("got %d body elements, want the title and the facts", len(c.Body))
	}
	enum := func(field, v string, allowed ...string) {
		if v != "" && !slices.Contains(allowed, v) {
			t.Errorf("%s %q is not one of %v", field, v, allowed)
		}
	}
	for i, b := range c.Body {
		if b.Type != "TextBlock" || b.Text == nil || *b.Text == "" {
			t.Errorf("body[%d]: got type %q text %v, want a TextBlock with text", i, b.Type, b.Text)
		}
		enum("weight", b.Weight, "default", "lighter", "bolder")
		enum("size", b.Size, "default", "small", "medium", "large", "extraLarge")
		enum("color", b.Color, "default", "dark", "light", "accent", "good", "warning", "attention")
		enum("spacing", b.Spacing, "default", "none", "small", "medium", "large", "extraLarge", "padding")
	}
	for i, ac := range c.Actions {
		if ac.Type != "Action.OpenUrl" || ac.URL == nil || !strings.HasPrefix(*ac.URL, "http") {
			t.Errorf("actions[%d]: got %+v, want an Action.OpenUrl with a url", i, ac)
		}
	}
}

func TestErrorHidesSignature(t *testing.T) {
	srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
		return notifytest.Reply{Status: 400, Body: `{"error":{"code":"InvalidRequestContent"}}`}
	})
	tm, _ := teams.New(teams.Config{URL: srv.URL + path})
	err := tm.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if !send.IsPermanent(err) || strings.Contains(err.Error(), "SECRETSIG") {
		t.Errorf("got %v, want a permanent error without the signature", err)
	}
}

func TestValidate(t *testing.T) {
	if err := (teams.ReceiverConfig{}).Validate(); err == nil || err.Error() != "url: required for type teams" {
		t.Errorf("got %v, want url: required for type teams", err)
	}
}
