package send_test

import (
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
