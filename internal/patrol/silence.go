package patrol

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Silence mutes the alerts its matchers match between StartsAt and EndsAt. The alert
// engine keeps silences, the store saves them as JSON and the API shows them as they are.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  Matchers  `json:"matchers"`
	Author    string    `json:"author"`
	Comment   string    `json:"comment"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// ExpiredBy names who ended the silence early, if anyone did.
	ExpiredBy string `json:"expired_by,omitempty"`
}

// Active reports whether the silence mutes alerts at t.
func (s *Silence) Active(t time.Time) bool { return !t.Before(s.StartsAt) && t.Before(s.EndsAt) }

// MatchOp is how a Matcher compares a label's value.
type MatchOp string

// The match operators, as in Alertmanager: equal, not equal, regular expression match
// and regular expression non-match. Regular expressions are anchored at both ends.
const (
	MatchEqual    MatchOp = "="
	MatchNotEqual MatchOp = "!="
	MatchRegexp   MatchOp = "=~"
	MatchNotRegex MatchOp = "!~"
)

// Matcher selects alerts by one label. A label an alert does not have reads as the empty
// string, so "team!=db" matches alerts without a team label. Besides an alert's own
// labels a matcher can name the engine's labels: alertname (the rule), class, severity
// ("P0".."P3") and target; host is a label the engine adds from the signal. The zero
// value is not valid; build matchers with ParseMatcher. A Matcher is immutable and safe
// for concurrent use.
type Matcher struct {
	Name  string  `json:"name"`
	Op    MatchOp `json:"op"`
	Value string  `json:"value"`
	re    *regexp.Regexp
}

// ParseMatcher parses "name=value", "name!=value", "name=~regexp" or "name!~regexp".
// The value may be double-quoted, which keeps white space at its ends and a leading
// "~" after "=" as part of it: `a="~x"` compares with "~x", where `a=~x` is a regular
// expression. Only the outer pair of quotes is removed; nothing inside is unescaped.
func ParseMatcher(s string) (Matcher, error) {
	s = strings.TrimSpace(s)
	i := 0
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || i > 0 && s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i == 0 {
		return Matcher{}, fmt.Errorf("matcher %q: want a label name first", s)
	}
	name, rest := s[:i], strings.TrimLeft(s[i:], " ")
	var op MatchOp
	for _, o := range []MatchOp{MatchRegexp, MatchNotRegex, MatchNotEqual, MatchEqual} {
		if strings.HasPrefix(rest, string(o)) {
			op = o
			break
		}
	}
	if op == "" {
		return Matcher{}, fmt.Errorf("matcher %q: want =, !=, =~ or !~ after %q", s, name)
	}
	value := strings.TrimSpace(rest[len(op):])
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return NewMatcher(name, op, value)
}

// NewMatcher builds a matcher, checking the label name and compiling its regular
// expression, which must be one on its own: "a)|(b" is refused rather than let out
// of its anchors.
func NewMatcher(name string, op MatchOp, value string) (Matcher, error) {
	m := Matcher{Name: name, Op: op, Value: value}
	switch op {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegex:
		if _, err := regexp.Compile(value); err != nil {
			return Matcher{}, fmt.Errorf("matcher %s: %w", m, err)
		}
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("matcher %s: %w", m, err)
		}
		m.re = re
	default:
		return Matcher{}, fmt.Errorf("matcher %s%s%q: unknown operator", name, op, value)
	}
	if !validLabelName(name) {
		return Matcher{}, fmt.Errorf("matcher %s: %q is not a label name", m, name)
	}
	return m, nil
}

// validLabelName reports whether s is a label name as ParseMatcher reads one:
// [a-zA-Z_][a-zA-Z0-9_]*.
func validLabelName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// String renders the matcher in the form ParseMatcher reads back to an equal matcher:
// the value is double-quoted when it would otherwise read differently (white space
// at an end, a leading quote, or a leading "~" after "=").
func (m Matcher) String() string {
	v := m.Value
	if v != strings.TrimSpace(v) || strings.HasPrefix(v, `"`) || m.Op == MatchEqual && strings.HasPrefix(v, "~") {
		v = `"` + v + `"`
	}
	return m.Name + string(m.Op) + v
}

// Equal reports whether two matchers have the same name, operator and value.
func (m Matcher) Equal(o Matcher) bool { return m.Name == o.Name && m.Op == o.Op && m.Value == o.Value }

// MatchesEmpty reports whether the matcher matches a label that is absent (read as
// the empty string), as "team!=db" and "target=~.*" do.
func (m Matcher) MatchesEmpty() bool { return m.Matches("") }

// Matches reports whether a label value satisfies the matcher.
func (m Matcher) Matches(value string) bool {
	switch m.Op {
	case MatchEqual:
		return value == m.Value
	case MatchNotEqual:
		return value != m.Value
	case MatchRegexp:
		return m.re != nil && m.re.MatchString(value)
	case MatchNotRegex:
		return m.re == nil || !m.re.MatchString(value)
	}
	return false
}

// UnmarshalJSON reads a matcher and compiles it, so stored silences match again after
// a restart.
func (m *Matcher) UnmarshalJSON(b []byte) error {
	var raw struct {
		Name  string  `json:"name"`
		Op    MatchOp `json:"op"`
		Value string  `json:"value"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	mm, err := NewMatcher(raw.Name, raw.Op, raw.Value)
	if err != nil {
		return err
	}
	*m = mm
	return nil
}

// Matchers is a conjunction: all must match. An empty list matches everything.
type Matchers []Matcher

// ParseMatchers parses each string with ParseMatcher.
func ParseMatchers(ss []string) (Matchers, error) {
	ms := make(Matchers, 0, len(ss))
	for _, s := range ss {
		m, err := ParseMatcher(s)
		if err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// MatchEverything reports whether every matcher matches the empty string, so that the
// list says nothing about which alerts it selects: "target=~.*" or "team!=db" alone
// mute almost every alert. An empty list matches everything too.
func (ms Matchers) MatchEverything() bool {
	for _, m := range ms {
		if !m.MatchesEmpty() {
			return false
		}
	}
	return true
}

// Matches reports whether every matcher matches the labels that get returns.
func (ms Matchers) Matches(get func(name string) string) bool {
	for _, m := range ms {
		if !m.Matches(get(m.Name)) {
			return false
		}
	}
	return true
}

// String renders the matchers as "{a=b, c=~d}".
func (ms Matchers) String() string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// SilenceError reports a silence that is refused. Field names the part at fault in
// the silence's JSON spelling ("matchers", "ends_at"), so that the API can point at it;
// the alert engine returns it from CreateSilence.
type SilenceError struct {
	Field  string
	Reason string
}

// Error returns "silence: field: reason".
func (e *SilenceError) Error() string { return "silence: " + e.Field + ": " + e.Reason }
