package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify"
	"github.com/portpatrol/portpatrol/internal/notify/notifytest"
	"github.com/portpatrol/portpatrol/internal/notify/receiver"
	"github.com/portpatrol/portpatrol/internal/notify/render"
	"github.com/portpatrol/portpatrol/internal/notify/send"
	"github.com/portpatrol/portpatrol/internal/notify/webhook"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

var _ notify.Notifier = (*webhook.Webhook)(nil)

func TestPayloadGolden(t *testing.T) {
	cases := map[string]patrol.Notification{
		"firing":    notifytest.Notification(patrol.NotifyFiring),
		"resolved":  notifytest.Notification(patrol.NotifyResolved),
		"ack":       notifytest.Notification(patrol.NotifyAck),
		"group":     notifytest.Group(),
		"test":      notifytest.Notification(patrol.NotifyTest),
		"diagnosed": diagnosed(patrol.NotifyFiring),
	}
	for name, n := range cases {
		t.Run(name, func(t *testing.T) {
			srv := notifytest.NewServer(t, nil)
			w, err := webhook.New(webhook.Config{URL: srv.URL + "/hook", Token: "tok", Secret: "s3cret", ExternalURL: "https://portpatrol.example.com/"})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Notify(context.Background(), n); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			notifytest.Golden(t, name+".golden", r.Dump("Authorization", "Content-Type"))
			// The signature, computed independently of webhook.Sign.
			m := hmac.New(sha256.New, []byte("s3cret"))
			m.Write(r.Body)
			if got, want := r.Header.Get(webhook.SignatureHeader), "sha256="+hex.EncodeToString(m.Sum(nil)); got != want {
				t.Errorf("got signature %q, want %q", got, want)
			}
		})
	}
}

func TestErrorClasses(t *testing.T) {
	cases := []struct {
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
	}{
		{400, nil, true, 0},
		{404, nil, true, 0},
		{429, http.Header{"Retry-After": {"7"}}, false, 7 * time.Second},
		{500, nil, false, 0},
		{503, http.Header{"Retry-After": {"120"}}, false, 2 * time.Minute},
	}
	for _, c := range cases {
		srv := notifytest.NewServer(t, func(int, notifytest.Request) notifytest.Reply {
			return notifytest.Reply{Status: c.status, Header: c.header, Body: "{\"error\":\n \"no such hook\"}"}
		})
		w, _ := webhook.New(webhook.Config{URL: srv.URL})
		err := w.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
		var se *send.Error
		if !errors.As(err, &se) {
			t.Fatalf("%d: got %v, want a *send.Error", c.status, err)
		}
		if se.Permanent != c.permanent || se.RetryAfter != c.retryAfter || se.Status != c.status {
			t.Errorf("%d: got permanent=%v retryAfter=%v status=%d, want %v %v", c.status, se.Permanent, se.RetryAfter, se.Status, c.permanent, c.retryAfter)
		}
		if want := `{"error": "no such hook"}`; se.Body != want {
			t.Errorf("%d: got body %q, want %q", c.status, se.Body, want)
		}
	}
}

func TestNetworkErrorIsTemporaryAndHidesToken(t *testing.T) {
	srv := notifytest.NewServer(t, nil)
	url := srv.URL + "/hook?token=SECRET"
	srv.Close()
	w, _ := webhook.New(webhook.Config{URL: url})
	err := w.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring))
	if err == nil || send.IsPermanent(err) {
		t.Fatalf("got %v, want a temporary error", err)
	}
	if msg := err.Error(); strings.Contains(msg, "SECRET") {
		t.Errorf("error shows the token: %s", msg)
	}
}

// A receiver configured in the file reads its token from token_file and signs with
// its secret.
func TestReceiverConfigBuild(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := notifytest.NewServer(t, nil)
	rc := webhook.ReceiverConfig{URL: srv.URL + "/hook", TokenFile: "token", Secret: "s3cret"}
	if err := rc.Validate(); err != nil {
		t.Fatal(err)
	}
	w, err := rc.Build(receiver.Env{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Notify(context.Background(), notifytest.Notification(patrol.NotifyFiring)); err != nil {
		t.Fatal(err)
	}
	r := srv.Requests()[0]
	if got, want := r.Header.Get("Authorization"), "Bearer file-token"; got != want {
		t.Errorf("got Authorization %q, want %q", got, want)
	}
	if got := r.Header.Get(webhook.SignatureHeader); got != "sha256="+webhook.Sign("s3cret", r.Body) {
		t.Errorf("got signature %q, want one made with the secret", got)
	}
	if got, want := r.Header.Get(webhook.IdempotencyHeader), notifytest.Notification(patrol.NotifyFiring).Key; got != want || got == "" {
		t.Errorf("got Idempotency-Key %q, want the notification's key %q", got, want)
	}
}

func TestReceiverConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		rc   webhook.ReceiverConfig
		want []string // the fields named, in order
	}{
		{"ok", webhook.ReceiverConfig{URL: "https://h/x", Token: "t"}, nil},
		{"no url", webhook.ReceiverConfig{}, []string{"url"}},
		{"bad url and both token forms", webhook.ReceiverConfig{URL: "ftp://h", Token: "t", TokenFile: "f", Secret: "s", SecretFile: "g"},
			[]string{"url", "token_file", "secret_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := tt.rc.Validate(); err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *receiver.FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("got %v (%T), want *receiver.FieldError", e, e)
					}
					got = append(got, fe.Field)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got fields %v, want %v", got, tt.want)
			}
		})
	}
}

// diagnosed is a notification whose alert carries doctor's verdict and its impact.
func diagnosed(k patrol.NotificationKind) patrol.Notification {
	n := notifytest.Notification(k)
	n.Alerts[0].Diagnosis = "the service listens on 127.0.0.1 only, and you dialled 10.0.0.5. Next step: dial 127.0.0.1:6379 instead"
	n.Alerts[0].Impact = "40 clients connected at 08:59:55, just before it failed; 2 other targets are on 10.0.0.5 (1 down)"
	return n
}

// A customer impact notice leaves the diagnosis and impact out: they are internals.
func TestImpactNoticeHidesDiagnosis(t *testing.T) {
	for k, want := range map[patrol.NotificationKind]bool{patrol.NotifyFiring: true, patrol.NotifyImpact: false} {
		m := webhook.Payload(diagnosed(k), render.Message{}, "")
		an := m.Alerts[0].Annotations
		if _, got := an["diagnosis"]; got != want {
			t.Errorf("%s: diagnosis annotation present %v, want %v", k, got, want)
		}
		if _, got := an["impact"]; got != want {
			t.Errorf("%s: impact annotation present %v, want %v", k, got, want)
		}
	}
}
