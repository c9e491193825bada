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
// The value may be double-quoted.
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

// NewMatcher builds a matcher, compiling its regular expression.
func NewMatcher(name string, op MatchOp, value string) (Matcher, error) {
	m := Matcher{Name: name, Op: op, Value: value}
	switch op {
	case MatchEqual, MatchNotEqual:
	case MatchRegexp, MatchNotRegex:
		re, err := regexp.Compile("^(?:" + value + ")$")
		if err != nil {
			return Matcher{}, fmt.Errorf("matcher %s: %w", m, err)
		}
		m.re = re
	default:
		return Matcher{}, fmt.Errorf("matcher %s%s%q: unknown operator", name, op, value)
	}
	if name == "" {
		return Matcher{}, fmt.Errorf("matcher %s: empty label name", m)
	}
	return m, nil
}

// String renders the matcher in the form ParseMatcher reads.
func (m Matcher) String() string { return m.Name + string(m.Op) + m.Value }

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
