package receiver_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portpatrol/portpatrol/internal/notify/receiver"
)

func TestChecks(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // the FieldError's text, "" for nil
	}{
		{"required given", receiver.Required("slack", "url", true), ""},
		{"required missing", receiver.Required("slack", "url", false), "url: required for type slack"},
		{"secret inline", receiver.Secret("token", "t", ""), ""},
		{"secret file", receiver.Secret("token", "", "f"), ""},
		{"secret both", receiver.Secret("token", "t", "f"), "token_file: give token or token_file, not both"},
		{"url empty", receiver.URL("url", ""), ""},
		{"url ok", receiver.URL("url", "https://h/x"), ""},
		{"url scheme", receiver.URL("url", "ftp://h/x"), `url: want an http:// or https:// URL, got scheme "ftp"`},
		{"url no host", receiver.URL("url", "http:///x"), "url: URL has no host"},
		{"url unparsable", receiver.URL("url", "http://[::1"), "url: does not parse as a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				if tt.err != nil {
					t.Fatalf("got %v, want nil", tt.err)
				}
				return
			}
			var fe *receiver.FieldError
			if !errors.As(tt.err, &fe) {
				t.Fatalf("got %v (%T), want a *FieldError", tt.err, tt.err)
			}
			if got := fe.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvSecret(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"key": "s3cret\r\n", "empty": "\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := receiver.Env{Dir: dir}
	tests := []struct {
		name, inline, file string
		want               string
		wantErr            string // the FieldError's field and the start of its message
	}{
		{"inline", "abc", "", "abc", ""},
		{"relative file", "", "key", "s3cret", ""},
		{"absolute file", "", filepath.Join(dir, "key"), "s3cret", ""},
		{"empty file", "", "empty", "", "token_file: " + filepath.Join(dir, "empty") + " is empty"},
		{"missing file", "", "nope", "", "token_file: open " + filepath.Join(dir, "nope")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := env.Secret("token", tt.inline, tt.file)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var fe *receiver.FieldError
			if !errors.As(err, &fe) || !strings.HasPrefix(fe.Error(), tt.wantErr) {
				t.Errorf("got %v, want a *FieldError starting %q", err, tt.wantErr)
			}
		})
	}
}
