package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// extra holds the parts of a Result that are not columns of their own. Phases are
// kept as name → nanoseconds because patrol.Phase does not serialise its duration.
type extra struct {
	Phases   []phase           `json:"phases,omitempty"`
	TLS      *patrol.TLSInfo   `json:"tls,omitempty"`
	HTTP     *patrol.HTTPInfo  `json:"http,omitempty"`
	Capacity *patrol.Capacity  `json:"capacity,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

type phase struct {
	Name string `json:"n"`
	NS   int64  `json:"ns"`
}

// EncodeExtra returns the JSON of the parts of r without a column of their own
// (phases, TLS, HTTP, capacity, details), or nil when r has none.
func EncodeExtra(r *patrol.Result) ([]byte, error) {
	if len(r.Phases) == 0 && r.TLS == nil && r.HTTP == nil && r.Capacity == nil && len(r.Details) == 0 {
		return nil, nil
	}
	e := extra{TLS: r.TLS, HTTP: r.HTTP, Capacity: r.Capacity, Details: r.Details}
	for _, p := range r.Phases {
		e.Phases = append(e.Phases, phase{p.Name, int64(p.Duration)})
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode result of %s: %w", r.Target, err)
	}
	return b, nil
}

// DecodeExtra fills r from the JSON written by EncodeExtra; empty input is a no-op.
func DecodeExtra(b []byte, r *patrol.Result) error {
	if len(b) == 0 {
		return nil
	}
	var e extra
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Errorf("decode result of %s: %w", r.Target, err)
	}
	r.TLS, r.HTTP, r.Capacity, r.Details = e.TLS, e.HTTP, e.Capacity, e.Details
	for _, p := range e.Phases {
		r.Phases = append(r.Phases, patrol.Phase{Name: p.Name, Duration: time.Duration(p.NS)})
	}
	return nil
}

// EncodeLabels returns the JSON of labels; nil and empty maps both encode as "{}".
func EncodeLabels(labels map[string]string) (string, error) {
	if len(labels) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(labels)
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	return string(b), nil
}

// DecodeLabels parses labels written by EncodeLabels; "{}" gives a nil map.
func DecodeLabels(s string) (map[string]string, error) {
	if s == "" || s == "{}" {
		return nil, nil
	}
	if m, ok := decodePlainLabels(s); ok {
		return m, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	return m, nil
}

// ValidateState reports a state that cannot be stored.
func ValidateState(s *patrol.TargetState) error {
	if s.Target == "" {
		return fmt.Errorf("state: empty target")
	}
	if !s.Status.Valid() {
		return fmt.Errorf("state of %s: invalid status %q", s.Target, s.Status)
	}
	return nil
}

// ValidateLearned reports a learned value that cannot be stored.
func ValidateLearned(l *Learned) error {
	if l.Namespace == "" || l.Key == "" {
		return fmt.Errorf("learned: namespace and key are required, got %q/%q", l.Namespace, l.Key)
	}
	if !json.Valid(l.Value) {
		return fmt.Errorf("learned %s/%s: value is not valid JSON", l.Namespace, l.Key)
	}
	return nil
}

// ValidateToken reports a token that cannot be stored.
func ValidateToken(t *Token) error {
	if t.ID == "" || t.Name == "" {
		return fmt.Errorf("token: id and name are required")
	}
	if !t.Role.Valid() {
		return fmt.Errorf("token %s: invalid role %q: want viewer, operator or admin", t.ID, t.Role)
	}
	if t.Hash == (TokenHash{}) {
		return fmt.Errorf("token %s: empty hash", t.ID)
	}
	return nil
}

// TimeNS returns t as Unix nanoseconds, the form timestamps are stored in; the zero
// time is stored as 0.
func TimeNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// NSTime is the inverse of TimeNS.
func NSTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// decodePlainLabels parses what json.Marshal makes of a map[string]string when no
// string needed escaping: {"k":"v",...}. It reports false for anything else, which
// encoding/json then parses. Reading 10,000 states is mostly this.
func decodePlainLabels(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.IndexByte(s, '\\') >= 0 || !utf8.ValidString(s) {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 {
			return nil, false
		}
	}
	m := make(map[string]string, strings.Count(s, ",")+1)
	rest := s[1 : len(s)-1]
	for rest != "" {
		k, r, ok := cutQuoted(rest)
		if !ok || r == "" || r[0] != ':' {
			return nil, false
		}
		v, r, ok := cutQuoted(r[1:])
		if !ok {
			return nil, false
		}
		m[k] = v
		if r == "" {
			break
		}
		if r[0] != ',' || len(r) == 1 {
			return nil, false
		}
		rest = r[1:]
	}
	return m, true
}

// cutQuoted splits `"x"rest` into x and rest.
func cutQuoted(s string) (string, string, bool) {
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[1:], '"')
	if end < 0 {
		return "", "", false
	}
	return s[1 : 1+end], s[2+end:], true
}
