package alert_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// portSig is a port of a host going down.
func portSig(host string, port int, labels ...string) alert.Signal {
	s := signal(fmt.Sprintf("tcp://%s:%d", host, port), patrol.ClassRefused, patrol.StatusDown, labels...)
	s.Host = host
	return s
}

// TestGrouping: many ports of one host down → one message per receiver; another host
// gets its own; a port that joins later waits for the group interval.
func TestGrouping(t *testing.T) {
	cfg := alert.Config{
		Escalations: map[string][]alert.Step{"default": {{Receivers: []string{"noc", "chat"}}}},
		Inhibit:     []alert.InhibitRule{},
	}
	h := newHarness(t, cfg)
	for p := range 20 {
		h.observe(portSig("10.0.0.5", 8000+p))
	}
	h.observe(portSig("10.0.0.6", 22))
	h.run(29 * time.Second)
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("before group_wait got %v", sent(got))
	}
	h.run(time.Second)
	got := h.sink.take()
	var lines []string
	for _, n := range got {
		lines = append(lines, fmt.Sprintf("%s %s %s %d", n.Kind, n.Receiver, n.Group, len(n.Alerts)))
	}
	want := []string{
		"firing chat host=10.0.0.5 20", "firing chat host=10.0.0.6 1",
		"firing noc host=10.0.0.5 20", "firing noc host=10.0.0.6 1",
	}
	if diff := cmp.Diff(want, sortedCopy(lines)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A late port of the same host waits until group_interval after the last message.
	h.run(time.Minute)
	h.observe(portSig("10.0.0.5", 9999))
	h.run(3*time.Minute + 58*time.Second)
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("within group_interval got %v", sent(got))
	}
	h.run(2 * time.Second)
	if got := sent(h.sink.take()); len(got) != 2 || !strings.Contains(got[0], "tcp://10.0.0.5:9999") {
		t.Errorf("got %v, want the late port to both receivers", got)
	}
	// The keys are stable and distinct.
	seen := map[string]bool{}
	for _, n := range got {
		if seen[n.Key] || n.Key == "" {
			t.Errorf("duplicate or empty key %q", n.Key)
		}
		seen[n.Key] = true
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestInhibition: a host that is unreachable mutes its ports; a P0 mutes the P1–P3
// of its target; both unmute when the source resolves.
func TestInhibition(t *testing.T) {
	h := newHarness(t, chainConfig())
	hostDown := signal("host:10.0.0.5", patrol.ClassTimeout, patrol.StatusDown)
	h.observe(hostDown)
	for _, p := range []int{22, 80, 443} {
		h.observe(portSig("10.0.0.5", p))
	}
	h.observe(portSig("10.0.0.7", 22))
	h.run(time.Second)
	want := []string{"firing noc host:10.0.0.5/unreachable", "firing noc tcp://10.0.0.7:22/unreachable"}
	if diff := cmp.Diff(want, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	muted := h.e.List(alert.Filter{States: []patrol.AlertState{patrol.AlertSilenced}})
	if len(muted) != 3 {
		t.Fatalf("got %d muted alerts, want the 3 ports", len(muted))
	}
	for _, a := range muted {
		if !strings.HasPrefix(a.MutedBy, "inhibited by ") || !strings.Contains(a.MutedBy, "host:10.0.0.5") {
			t.Errorf("%s: got muted by %q, want the host alert", a.Target, a.MutedBy)
		}
	}
	// Muted alerts neither escalate nor remind.
	h.run(time.Hour)
	for _, l := range sent(h.sink.take()) {
		if strings.Contains(l, "10.0.0.5:") {
			t.Errorf("muted port notified: %s", l)
		}
	}
	// The host comes back but the ports stay down: now they page.
	up := signal("host:10.0.0.5", patrol.ClassOK, patrol.StatusUp)
	h.observe(up)
	h.run(time.Second)
	got := sent(h.sink.take())
	for _, w := range []string{"firing noc tcp://10.0.0.5:22/unreachable", "resolved noc host:10.0.0.5/unreachable"} {
		if !contains(got, w) {
			t.Errorf("got %v, want %q among them", got, w)
		}
	}

	// A P0 mutes the P1 of the same target, not of another.
	h2 := newHarness(t, chainConfig())
	err := h2.e.ObserveFinding(context.Background(), patrol.Finding{Class: patrol.AlertSecurity, Rule: "brute_force",
		Subject: db, Severity: "P0", Summary: "2,000 failed logins a minute from 203.0.113.9", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		h2.observe(slowSig(db, 3*time.Second))
		h2.observe(slowSig("tcp://other:1", 3*time.Second))
	}
	h2.run(time.Second)
	want = []string{"firing noc " + db + "/security", "firing noc tcp://other:1/slow"}
	if diff := cmp.Diff(want, sent(h2.sink.take())); diff != "" {
		t.Errorf("P0 mutes P1 (-want +got):\n%s", diff)
	}
	a := h2.one(alert.Filter{Target: db, Severities: []patrol.Severity{patrol.P1}})
	if a.State != patrol.AlertSilenced || !strings.HasPrefix(a.MutedBy, "inhibited by ") {
		t.Errorf("got %s muted by %q, want silenced by inhibition", a.State, a.MutedBy)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestSilences: matchers select what a silence mutes; when it expires the alert
// pages; ExpireSilence ends one early.
func TestSilences(t *testing.T) {
	tests := []struct {
		name     string
		matchers []string
		muted    bool
	}{
		{"equal", []string{"service=orders"}, true},
		{"equal other", []string{"service=billing"}, false},
		{"regexp", []string{"env=~prod|staging"}, true},
		{"regexp is anchored", []string{"env=~pro"}, false},
		// A silence needs one matcher that does not match the empty string.
		{"not equal", []string{"alertname=unreachable", "team!=web"}, true},
		{"not equal fails", []string{"alertname=unreachable", "team!=db"}, false},
		{"not regexp", []string{"alertname=unreachable", "env!~dev.*"}, true},
		{"all must match", []string{"service=orders", "team=web"}, false},
		{"engine labels", []string{"severity=P0", "alertname=unreachable", "target=~tcp://db1:.*"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, chainConfig())
			_, err := h.e.CreateSilence(context.Background(), patrol.Silence{
				Matchers: mustMatchers(t, tt.matchers...), Author: "alice", Comment: "db migration",
				EndsAt: t0.Add(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			h.down(db, patrol.ClassRefused, "service=orders", "env=prod", "team=db")
			h.run(30 * time.Minute)
			got := sent(h.sink.take())
			a := h.one(alert.Filter{})
			if tt.muted {
				if len(got) != 0 || a.State != patrol.AlertSilenced || !strings.Contains(a.MutedBy, "by alice: db migration") {
					t.Fatalf("got %v, state %s muted by %q; want nothing sent, silenced by alice", got, a.State, a.MutedBy)
				}
				// At its end the alert pages, with a fresh deadline.
				h.run(30 * time.Minute)
				if diff := cmp.Diff([]string{"firing noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
					t.Errorf("after expiry (-want +got):\n%s", diff)
				}
			} else if len(got) == 0 {
				t.Errorf("got nothing sent, want the alert not muted")
			}
		})
	}
}

func TestExpireSilence(t *testing.T) {
	h := newHarness(t, chainConfig())
	ctx := context.Background()
	s, err := h.e.CreateSilence(ctx, patrol.Silence{Matchers: mustMatchers(t, "target="+db), Author: "alice", EndsAt: t0.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	h.down(db, patrol.ClassRefused)
	h.run(time.Hour)
	if got := h.sink.take(); len(got) != 0 {
		t.Fatalf("got %v while silenced", sent(got))
	}
	if err := h.e.ExpireSilence(ctx, s.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	h.run(time.Second)
	if diff := cmp.Diff([]string{"firing noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	ss := h.e.Silences()
	if len(ss) != 1 || ss[0].ExpiredBy != "bob" || ss[0].Active(h.now()) {
		t.Errorf("got %+v, want one expired silence", ss)
	}
	if st := h.e.Stats(); st.Silences != 0 {
		t.Errorf("got %d active silences, want 0", st.Silences)
	}
	// Expired silences are forgotten after the retention.
	h.run(25 * time.Hour)
	if ss := h.e.Silences(); len(ss) != 0 {
		t.Errorf("got %d silences after retention, want 0", len(ss))
	}
}

func TestCreateSilenceErrors(t *testing.T) {
	h := newHarness(t, alert.Config{})
	tests := []struct {
		name  string
		s     patrol.Silence
		field string
		msg   string
	}{
		{"no matchers", patrol.Silence{Author: "a", EndsAt: t0.Add(time.Hour)}, "matchers", "none"},
		{"match everything", patrol.Silence{Matchers: mustMatchers(t, "target=~.*"), Author: "a", EndsAt: t0.Add(time.Hour)},
			"matchers", "all match the empty string"},
		{"match everything but a label", patrol.Silence{Matchers: mustMatchers(t, "target=~.*", "team!=web"), Author: "a", EndsAt: t0.Add(time.Hour)},
			"matchers", "all match the empty string"},
		{"no author", patrol.Silence{Matchers: mustMatchers(t, "a=b"), EndsAt: t0.Add(time.Hour)}, "author", "empty"},
		{"no end", patrol.Silence{Matchers: mustMatchers(t, "a=b"), Author: "a"}, "ends_at", "not after start"},
		{"ended", patrol.Silence{Matchers: mustMatchers(t, "a=b"), Author: "a", StartsAt: t0.Add(-2 * time.Hour), EndsAt: t0.Add(-time.Hour)},
			"ends_at", "in the past"},
		{"31 days", patrol.Silence{Matchers: mustMatchers(t, "a=b"), Author: "a", EndsAt: t0.Add(31 * 24 * time.Hour)},
			"ends_at", "longer than the maximum of 720h0m0s"},
		{"bad regexp", patrol.Silence{Matchers: patrol.Matchers{{Name: "a", Op: patrol.MatchRegexp, Value: "("}}, Author: "a", EndsAt: t0.Add(time.Hour)},
			"matchers[0]", "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.e.CreateSilence(context.Background(), tt.s)
			var se *patrol.SilenceError
			if !errors.As(err, &se) {
				t.Fatalf("got error %v, want a *patrol.SilenceError", err)
			}
			if se.Field != tt.field || !strings.Contains(se.Reason, tt.msg) {
				t.Errorf("got %s: %s, want %s: …%s…", se.Field, se.Reason, tt.field, tt.msg)
			}
		})
	}
	if got := h.e.Silences(); len(got) != 0 {
		t.Errorf("got %d silences stored, want none", len(got))
	}
}

// TestMaxSilence: a silence may last up to alerting.max_silence (30 days by default),
// from its start, wherever that is.
func TestMaxSilence(t *testing.T) {
	tests := []struct {
		max        time.Duration
		start, end time.Duration // from now
		ok         bool
	}{
		{0, 0, 30 * 24 * time.Hour, true},
		{0, 0, 30*24*time.Hour + time.Second, false},
		{0, 24 * time.Hour, 31 * 24 * time.Hour, true},
		{0, 24 * time.Hour, 32 * 24 * time.Hour, false},
		{2 * time.Hour, 0, 2 * time.Hour, true},
		{2 * time.Hour, 0, 3 * time.Hour, false},
		{365 * 24 * time.Hour, 0, 200 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		h := newHarness(t, alert.Config{MaxSilence: tt.max})
		_, err := h.e.CreateSilence(context.Background(), patrol.Silence{Matchers: mustMatchers(t, "a=b"), Author: "a",
			StartsAt: t0.Add(tt.start), EndsAt: t0.Add(tt.end)})
		if (err == nil) != tt.ok {
			t.Errorf("max %s, %s to %s: got error %v, want ok %v", tt.max, tt.start, tt.end, err, tt.ok)
		}
	}
	err := alert.Config{MaxSilence: -time.Hour}.Validate()
	var ce *alert.ConfigError
	if !errors.As(err, &ce) || ce.Field != "max_silence" {
		t.Errorf("max_silence: -1h: got %v, want a ConfigError on max_silence", err)
	}
}

// TestMaintenanceWindow: a recurring window in Europe/Berlin mutes what it matches,
// shows the alert as silenced by it, and keeps its local hours across the change to
// summer time on the last Sunday of March.
func TestMaintenanceWindow(t *testing.T) {
	cfg := chainConfig()
	cfg.Maintenance = []alert.Window{{Name: "db-weekly", Schedule: "Sun 02:00-04:00 Europe/Berlin", Matchers: []string{"service=orders"}}}
	h := newHarness(t, cfg)
	// Sunday 30 March 2025: at 02:00 CET the clock jumps to 03:00 CEST, so the
	// window runs from 01:00 to 02:00 UTC.
	h.clock.set(time.Date(2025, 3, 30, 0, 59, 0, 0, time.UTC))
	h.down(db, patrol.ClassRefused, "service=orders")
	h.down("tcp://web:80", patrol.ClassRefused, "service=web")
	h.run(0)
	h.sink.take() // paged before the window opened
	h.run(2 * time.Minute)
	a := h.one(alert.Filter{Target: db})
	if a.State != patrol.AlertSilenced || a.MutedBy != "maintenance db-weekly" {
		t.Errorf("at %s: got %s muted by %q, want silenced by maintenance db-weekly", h.now(), a.State, a.MutedBy)
	}
	if b := h.one(alert.Filter{Target: "tcp://web:80"}); b.State != patrol.AlertFiring {
		t.Errorf("web: got %s, want firing", b.State)
	}
	for _, l := range func() []string { h.run(55 * time.Minute); return sent(h.sink.take()) }() {
		if strings.Contains(l, db) {
			t.Errorf("during the window: %s", l)
		}
	}
	ws := h.e.Windows()
	if len(ws) != 1 || !ws[0].Active || !ws[0].Until.Equal(time.Date(2025, 3, 30, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("got windows %+v, want db-weekly active until 02:00 UTC", ws)
	}
	h.run(5 * time.Minute) // 02:01 UTC = 04:01 CEST
	if a := h.one(alert.Filter{Target: db}); a.State != patrol.AlertFiring {
		t.Errorf("after the window: got %s (%q), want firing", a.State, a.MutedBy)
	}
}

func TestScheduleAcrossDST(t *testing.T) {
	sc, err := alert.ParseSchedule("Sun 02:00–04:00 Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(mo time.Month, d, h, m int) time.Time { return time.Date(2025, mo, d, h, m, 0, 0, time.UTC) }
	tests := []struct {
		at   time.Time
		want bool
	}{
		{utc(3, 23, 0, 59), false}, // 01:59 CET
		{utc(3, 23, 1, 0), true},   // 02:00 CET
		{utc(3, 23, 2, 59), true},  // 03:59 CET
		{utc(3, 23, 3, 0), false},  // 04:00 CET
		{utc(3, 30, 0, 59), false}, // 01:59 CET, the clock then jumps to 03:00 CEST
		{utc(3, 30, 1, 0), true},   // 03:00 CEST
		{utc(3, 30, 1, 59), true},  // 03:59 CEST
		{utc(3, 30, 2, 0), false},  // 04:00 CEST
		{utc(4, 6, 0, 0), true},    // 02:00 CEST
		{utc(4, 6, 1, 59), true},   // 03:59 CEST
		{utc(4, 6, 2, 0), false},   // 04:00 CEST
		{utc(4, 7, 0, 30), false},  // Monday
		{utc(10, 26, 0, 0), true},  // 02:00 CEST, the clock then goes back at 03:00 CEST
		{utc(10, 26, 1, 30), true}, // 02:30 CET, the second time
		{utc(10, 26, 2, 59), true}, // 03:59 CET
		{utc(10, 26, 3, 0), false}, // 04:00 CET
	}
	for _, tt := range tests {
		if _, _, got := sc.At(tt.at); got != tt.want {
			t.Errorf("At(%s): got %v, want %v", tt.at, got, tt.want)
		}
	}
	s, e, ok := sc.Next(utc(3, 24, 12, 0))
	if !ok || !s.Equal(utc(3, 30, 1, 0)) || !e.Equal(utc(3, 30, 2, 0)) {
		t.Errorf("Next after 24 March: got %s–%s %v, want 01:00–02:00 UTC on 30 March", s, e, ok)
	}
}

func TestParseSchedule(t *testing.T) {
	tests := []struct {
		in      string
		in1     time.Time // inside
		out     time.Time // outside
		wantErr string
	}{
		{in: "Sun 02:00-04:00 Asia/Shanghai", in1: time.Date(2025, 1, 4, 18, 30, 0, 0, time.UTC), out: time.Date(2025, 1, 4, 20, 0, 0, 0, time.UTC)},
		{in: "Mon-Fri 22:00 - 06:00", in1: time.Date(2025, 1, 11, 3, 0, 0, 0, time.UTC) /* Saturday early: Friday's */, out: time.Date(2025, 1, 12, 3, 0, 0, 0, time.UTC)},
		{in: "sat,sunday 00:00-24:00 UTC", in1: time.Date(2025, 1, 12, 23, 59, 0, 0, time.UTC), out: time.Date(2025, 1, 13, 0, 0, 0, 0, time.UTC)},
		{in: "daily 12:00-13:00", in1: time.Date(2025, 1, 8, 12, 0, 0, 0, time.UTC), out: time.Date(2025, 1, 8, 13, 0, 0, 0, time.UTC)},
		{in: "Fri-Mon 10:00-11:00", in1: time.Date(2025, 1, 12, 10, 0, 0, 0, time.UTC), out: time.Date(2025, 1, 8, 10, 0, 0, 0, time.UTC)},
		{in: "Sun", wantErr: "want"},
		{in: "Sun 02:00", wantErr: "HH:MM-HH:MM"},
		{in: "Sonntag 02:00-04:00", wantErr: "unknown day"},
		{in: "Sun 25:00-26:00", wantErr: "time"},
		{in: "Sun 02:00-02:00", wantErr: "empty"},
		{in: "Sun 24:00-02:00", wantErr: "time"},
		{in: "Sun 02:00-04:00 Mars/Olympus", wantErr: "time zone"},
		{in: "Sun 02:00-04:00 UTC extra", wantErr: "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sc, err := alert.ParseSchedule(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, ok := sc.At(tt.in1); !ok {
				t.Errorf("At(%s): got false, want true", tt.in1)
			}
			if _, _, ok := sc.At(tt.out); ok {
				t.Errorf("At(%s): got true, want false", tt.out)
			}
		})
	}
}

func TestOneOffWindow(t *testing.T) {
	cfg := chainConfig()
	cfg.Maintenance = []alert.Window{{Name: "migration", Start: t0.Add(10 * time.Minute), End: t0.Add(time.Hour)}}
	h := newHarness(t, cfg)
	if ws := h.e.Windows(); ws[0].Active || !ws[0].From.Equal(t0.Add(10*time.Minute)) {
		t.Errorf("got %+v, want not yet active", ws[0])
	}
	h.run(11 * time.Minute)
	h.down(db, patrol.ClassRefused)
	h.run(48 * time.Minute)
	if got := h.sink.take(); len(got) != 0 {
		t.Errorf("during the window got %v", sent(got))
	}
	h.run(2 * time.Minute)
	if diff := cmp.Diff([]string{"firing noc " + db + "/unreachable"}, sent(h.sink.take())); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		value   string
		matches bool
		wantErr bool
	}{
		{in: "env=prod", want: "env=prod", value: "prod", matches: true},
		{in: `env = "prod"`, want: "env=prod", value: "prod", matches: true},
		{in: "env!=prod", want: "env!=prod", value: "dev", matches: true},
		{in: "env=~prod|stag.*", want: "env=~prod|stag.*", value: "staging", matches: true},
		{in: "env=~prod", want: "env=~prod", value: "preprod", matches: false},
		{in: "env!~dev", want: "env!~dev", value: "", matches: true},
		{in: "team=", want: "team=", value: "", matches: true},
		{in: "=x", wantErr: true},
		{in: "env", wantErr: true},
		{in: "env~x", wantErr: true},
		{in: "env=~(", wantErr: true},
	}
	for _, tt := range tests {
		m, err := patrol.ParseMatcher(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseMatcher(%q): got %v, want an error", tt.in, m)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMatcher(%q): %v", tt.in, err)
			continue
		}
		if m.String() != tt.want || m.Matches(tt.value) != tt.matches {
			t.Errorf("ParseMatcher(%q) = %s, matches %q = %v; want %s, %v", tt.in, m, tt.value, m.Matches(tt.value), tt.want, tt.matches)
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"Sun 02:00-04:00 Asia/Shanghai", "Mon-Fri 22:00 - 06:00", "daily 00:00-24:00", "x", "Sun 9:7-1:00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := alert.ParseSchedule(s)
		if err != nil {
			return
		}
		at := time.Date(2025, 3, 30, 1, 30, 0, 0, time.UTC)
		if start, end, ok := sc.At(at); ok && (at.Before(start) || !at.Before(end)) {
			t.Fatalf("%q: At(%s) = %s–%s, which does not contain it", s, at, start, end)
		}
	})
}
