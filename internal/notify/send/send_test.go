package send_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/notify/send"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"30":                            30 * time.Second,
		"-5":                            0,
		"soon":                          0,
		"Sun, 01 Mar 2026 10:02:00 GMT": 2 * time.Minute,
		"Sun, 01 Mar 2026 09:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := send.ParseRetryAfter(in, now); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
	}
}

func TestSnippet(t *testing.T) {
	if got, want := send.Snippet([]byte("  a\n\tb  ")), "a b"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	long := strings.Repeat("é", 600) // 1200 bytes
	got := send.Snippet([]byte(long))
	if len(got) > 512 || !strings.HasPrefix(long, got) {
		t.Errorf("got %d bytes, want at most 512 of valid UTF-8 from the start", len(got))
	}
}

func TestResponseDecode(t *testing.T) {
	r := &send.Response{Status: 200, Body: []byte(`{"errcode":0}`)}
	var v struct {
		ErrCode int `json:"errcode"`
	}
	if err := r.Decode("robot", &v); err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	r.Body = []byte("<html>busy</html>")
	err := r.Decode("robot", &v)
	var se *send.Error
	if !errors.As(err, &se) || se.Permanent || se.Status != 200 || se.Body != "<html>busy</html>" {
		t.Fatalf("got %#v, want a temporary *send.Error with status and body", err)
	}
	if !strings.HasPrefix(err.Error(), "robot: unreadable reply: ") {
		t.Errorf("got %q, want it to start with %q", err, "robot: unreadable reply: ")
	}
}

func TestResponseRefused(t *testing.T) {
	r := &send.Response{Status: 200, Body: []byte(`{"errcode":45009}`)}
	for _, retry := range []bool{true, false} {
		e := r.Refused(retry, errors.New("robot: errcode 45009"))
		if e.Permanent == retry || e.Status != 200 || e.Body != `{"errcode":45009}` {
			t.Errorf("retry %v: got %#v, want permanent %v with status and body", retry, e, !retry)
		}
	}
}

func TestBearer(t *testing.T) {
	if got := send.Bearer(""); len(got) != 0 {
		t.Errorf("empty token: got %v, want no header", got)
	}
	if got, want := send.Bearer("s3cret").Get("Authorization"), "Bearer s3cret"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
