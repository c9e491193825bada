package patrol

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestMatcher(t *testing.T) {
	tests := []struct {
		in    string
		value string
		want  bool
		err   string // fragment of the expected error; empty means none
	}{
		{in: "team=db", value: "db", want: true},
		{in: "team=db", value: "web", want: false},
		{in: `team = "db"`, value: "db", want: true},
		{in: "team!=db", value: "", want: true},
		{in: "target=~tcp://db-.*", value: "tcp://db-1:5432", want: true},
		{in: "target=~db", value: "tcp://db:5432", want: false}, // anchored at both ends
		{in: "severity!~P[01]", value: "P2", want: true},
		{in: "severity!~P[01]", value: "P0", want: false},
		{in: "=db", err: "want a label name"},
		{in: "team<db", err: "want =, !=, =~ or !~"},
		{in: "team=~(", err: "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMatcher(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got error %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Matches(tt.value); got != tt.want {
				t.Errorf("%s matches %q: got %v, want %v", m, tt.value, got, tt.want)
			}
		})
	}
}

// TestSilenceJSON pins the silence's JSON, which the API serves and the stores keep: a
// silence read back matches again, its regular expressions compiled.
func TestSilenceJSON(t *testing.T) {
	ms, err := ParseMatchers([]string{"env=~prod|staging", "team!=web"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2031, 1, 10, 12, 0, 0, 0, time.UTC)
	in := Silence{ID: "s1", Matchers: ms, Author: "alice", Comment: "migration", StartsAt: t0, EndsAt: t0.Add(time.Hour)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"s1","matchers":[{"name":"env","op":"=~","value":"prod|staging"},{"name":"team","op":"!=","value":"web"}],` +
		`"author":"alice","comment":"migration","starts_at":"2031-01-10T12:00:00Z","ends_at":"2031-01-10T13:00:00Z"}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
	var out Silence
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"env": "staging", "team": "db"}
	if !out.Matchers.Matches(func(n string) string { return labels[n] }) {
		t.Errorf("read back, %s does not match %v", out.Matchers, labels)
	}
	if err := json.Unmarshal([]byte(`{"matchers":[{"name":"a","op":"=~","value":"("}]}`), &out); err == nil {
		t.Error("a silence with a bad regular expression was read without an error")
	}
}

func TestResultSummary(t *testing.T) {
	t0 := time.Date(2031, 1, 10, 12, 0, 0, 0, time.UTC)
	r := Result{Target: "tcp://db:5432", Start: t0, Duration: 3 * time.Millisecond, Class: ClassRefused, Error: "connection refused"}
	want := ResultSummary{Time: t0, Class: ClassRefused, Duration: 3 * time.Millisecond, Error: "connection refused"}
	if got := r.Summary(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestMatcherRoundTrip: a matcher's String parses back to an equal matcher, values
// that would read differently unquoted included.
func TestMatcherRoundTrip(t *testing.T) {
	tests := []struct {
		in   string
		want string // String of the parsed matcher
	}{
		{in: "a= ~x", want: `a="~x"`},
		{in: `a="~x"`, want: `a="~x"`},
		{in: "a=~~x", want: "a=~~x"},
		{in: "a!=~x", want: "a!=~x"},
		{in: `a=" x "`, want: `a=" x "`},
		{in: `a=""x""`, want: `a=""x""`},
		{in: `a="`, want: `a="""`},
		{in: "env=prod", want: "env=prod"},
		{in: "env=~prod|stag.*", want: "env=~prod|stag.*"},
		{in: "team=", want: "team="},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			m, err := ParseMatcher(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			again, err := ParseMatcher(m.String())
			if err != nil {
				t.Fatalf("%s does not parse: %v", m, err)
			}
			if !again.Equal(m) {
				t.Errorf("got %q %q %q, want %q %q %q", again.Name, again.Op, again.Value, m.Name, m.Op, m.Value)
			}
		})
	}
}

func TestNewMatcherRefuses(t *testing.T) {
	tests := []struct {
		name, op, value, err string
	}{
		{"a", "=~", "x)|(y", "unexpected )"},
		{"", "=", "x", "not a label name"},
		{"9a", "=", "x", "not a label name"},
		{"a-b", "=", "x", "not a label name"},
		{"a", "==", "x", "unknown operator"},
	}
	for _, tt := range tests {
		_, err := NewMatcher(tt.name, MatchOp(tt.op), tt.value)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("NewMatcher(%q, %q, %q): got error %v, want one saying %q", tt.name, tt.op, tt.value, err, tt.err)
		}
	}
}

func TestMatchEverything(t *testing.T) {
	tests := []struct {
		in   []string
		want bool
	}{
		{nil, true},
		{[]string{"target=~.*"}, true},
		{[]string{"team!=db"}, true},
		{[]string{"team="}, true},
		{[]string{"target=~.*", "team!~web"}, true},
		{[]string{"alertname=~.+"}, false},
		{[]string{"target=~.*", "team=db"}, false},
		{[]string{"severity=P0"}, false},
	}
	for _, tt := range tests {
		ms, err := ParseMatchers(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := ms.MatchEverything(); got != tt.want {
			t.Errorf("%s: got %v, want %v", ms, got, tt.want)
		}
	}
}

// FuzzParseMatcher: whatever parses prints to a form that parses to an equal matcher.
func FuzzParseMatcher(f *testing.F) {
	for _, s := range []string{"env=prod", "a!~b.*", `x="y"`, "=", "a=~(", "é=1", "a= ~x", `a=" x"`, `a=""`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMatcher(s)
		if err != nil {
			return
		}
		again, err := ParseMatcher(m.String())
		if err != nil {
			t.Fatalf("%q parsed to %s, which does not parse: %v", s, m, err)
		}
		if !again.Equal(m) {
			t.Fatalf("%q parsed to %q %q %q, whose String %s parses to %q %q %q", s, m.Name, m.Op, m.Value, m, again.Name, again.Op, again.Value)
		}
		for _, v := range []string{"", m.Value, "x"} {
			if again.Matches(v) != m.Matches(v) {
				t.Fatalf("%q: %s and its reparse disagree on %q", s, m, v)
			}
		}
	})
}
