package store

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLabelsRoundTrip(t *testing.T) {
	for _, labels := range []map[string]string{
		nil,
		{"a": ""},
		{"service": "web", "env": "prod", "team": "sre"},
		{"q": `say "hi"`, "html": "<b>&</b>", "uni": "naïve ✓", "back": `a\\b`, "comma": "a,b:c", "brace": "}{"},
	} {
		s, err := EncodeLabels(labels)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeLabels(s)
		if err != nil {
			t.Fatalf("decode %s: %v", s, err)
		}
		if diff := cmp.Diff(labels, got, cmpEmpty); diff != "" {
			t.Errorf("labels %s (-want +got):\n%s", s, diff)
		}
	}
}

var cmpEmpty = cmp.Comparer(equalLabels)

func equalLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// FuzzDecodeLabels checks that the fast path agrees with encoding/json on any input
// it accepts.
func FuzzDecodeLabels(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"a":"b","c":"d"}`, `{"a":"b",}`, `{"a":}`, `{"a""b"}`, `{"a":"b"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodePlainLabels(s)
		if !ok {
			return
		}
		var want map[string]string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", s, err)
		}
		if !equalLabels(want, got) {
			t.Fatalf("%q: fast path %v, encoding/json %v", s, got, want)
		}
	})
}
