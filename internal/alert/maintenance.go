package alert

import (
	"fmt"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"strconv"
	"strings"
	"time"
)

// Schedule is a recurring weekly time range in one time zone, such as
// "Sun 02:00-04:00 Asia/Shanghai". The range is wall-clock time in the zone, so it
// keeps its local hours across daylight-saving changes: on a day the clock jumps over
// the start, the window starts when the clock lands after the jump; on a day the clock
// goes back, the window lasts an hour longer in real time. The zero value never
// matches. A Schedule is immutable and safe for concurrent use.
type Schedule struct {
	days       [7]bool // by time.Weekday
	start, end int     // minutes after local midnight; end > start, or end <= start for a range past midnight
	loc        *time.Location
	text       string
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseSchedule parses "DAYS HH:MM-HH:MM [ZONE]".
//
// DAYS is "daily", "*", or a comma-separated list of days and day ranges using
// three-letter (or full) English names: "Sun", "Mon-Fri", "Sat,Sun", "Fri-Mon". The
// time range may cross midnight ("Sat 23:00-01:00" runs into Sunday) and "24:00" may
// end it; an en dash may stand for the hyphen. ZONE is an IANA name loaded with
// time.LoadLocation ("Europe/Berlin"); without one the schedule is in UTC.
func ParseSchedule(s string) (Schedule, error) {
	bad := func(format string, args ...any) (Schedule, error) {
		return Schedule{}, fmt.Errorf("schedule %q: %s", s, fmt.Sprintf(format, args...))
	}
	norm := strings.NewReplacer("–", "-", "—", "-").Replace(s)
	fields := strings.Fields(norm)
	if len(fields) < 2 {
		return bad(`want "DAYS HH:MM-HH:MM [ZONE]", such as "Sun 02:00-04:00 Asia/Shanghai"`)
	}
	var sc Schedule
	sc.text = s
	if err := parseDays(fields[0], &sc.days); err != nil {
		return bad("%v", err)
	}
	// The range may be written "02:00-04:00" or "02:00 - 04:00".
	rest := fields[1:]
	rng := rest[0]
	rest = rest[1:]
	for len(rest) > 0 && (strings.HasSuffix(rng, "-") || strings.HasPrefix(rest[0], "-")) {
		rng += rest[0]
		rest = rest[1:]
	}
	from, to, ok := strings.Cut(rng, "-")
	if !ok {
		return bad("time range %q: want HH:MM-HH:MM", rng)
	}
	var err error
	if sc.start, err = parseClock(from, false); err != nil {
		return bad("%v", err)
	}
	if sc.end, err = parseClock(to, true); err != nil {
		return bad("%v", err)
	}
	if sc.start == sc.end {
		return bad("time range %q is empty", rng)
	}
	sc.loc = time.UTC
	switch len(rest) {
	case 0:
	case 1:
		if sc.loc, err = time.LoadLocation(rest[0]); err != nil {
			return bad("time zone: %v", err)
		}
	default:
		return bad("unexpected %q after the time zone", strings.Join(rest[1:], " "))
	}
	return sc, nil
}

func parseDays(s string, days *[7]bool) error {
	if s == "*" || strings.EqualFold(s, "daily") {
		for i := range days {
			days[i] = true
		}
		return nil
	}
	day := func(name string) (time.Weekday, error) {
		n := strings.ToLower(name)
		if len(n) > 3 {
			full := map[string]string{"sun": "sunday", "mon": "monday", "tue": "tuesday", "wed": "wednesday",
				"thu": "thursday", "fri": "friday", "sat": "saturday"}[n[:3]]
			if full != n {
				return 0, fmt.Errorf("unknown day %q", name)
			}
			n = n[:3]
		}
		d, ok := dayNames[n]
		if !ok {
			return 0, fmt.Errorf("unknown day %q: want Sun, Mon, Tue, Wed, Thu, Fri or Sat", name)
		}
		return d, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := day(a)
		if err != nil {
			return err
		}
		to := from
		if isRange {
			if to, err = day(b); err != nil {
				return err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			days[d] = true
			if d == to {
				break
			}
		}
	}
	return nil
}

func parseClock(s string, end bool) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 ||
		hh == 24 && (mm != 0 || !end) {
		return 0, fmt.Errorf("time %q: want HH:MM between 00:00 and 23:59 (24:00 may end a range)", s)
	}
	return hh*60 + mm, nil
}

// String returns the text the schedule was parsed from.
func (sc Schedule) String() string { return sc.text }

// occurrence returns the window that starts on the local calendar day of day. A
// wall-clock time that occurs twice (the clock going back) starts at its first
// occurrence and ends at its last, so the window covers all of its local hours.
func (sc Schedule) occurrence(y int, mo time.Month, d int) (start, end time.Time) {
	start = wallTime(y, mo, d, sc.start, sc.loc, -1)
	endDay := d
	if sc.end <= sc.start {
		endDay++
	}
	end = wallTime(y, mo, endDay, sc.end, sc.loc, +1)
	return start, end
}

// wallTime returns the instant of a local wall-clock time; when the time occurs twice,
// the first (dir < 0) or the last (dir > 0) of them.
func wallTime(y int, mo time.Month, d, minutes int, loc *time.Location, dir int) time.Time {
	t := time.Date(y, mo, d, 0, minutes, 0, 0, loc)
	wy, wm, wd := t.Date()
	wh, wmin, _ := t.Clock()
	for _, shift := range []time.Duration{time.Hour, 30 * time.Minute} {
		c := t.Add(time.Duration(dir) * shift)
		cy, cm, cd := c.Date()
		ch, cmin, _ := c.Clock()
		if cy == wy && cm == wm && cd == wd && ch == wh && cmin == wmin {
			return c
		}
	}
	return t
}

// At returns the occurrence that contains t, if any.
func (sc Schedule) At(t time.Time) (start, end time.Time, ok bool) {
	if sc.loc == nil {
		return time.Time{}, time.Time{}, false
	}
	lt := t.In(sc.loc)
	// An occurrence that contains t started today or, crossing midnight, yesterday.
	for back := 1; back >= 0; back-- {
		y, mo, d := lt.Date()
		day := time.Date(y, mo, d-back, 12, 0, 0, 0, sc.loc)
		if !sc.days[day.Weekday()] {
			continue
		}
		s, e := sc.occurrence(day.Date())
		if !t.Before(s) && t.Before(e) {
			return s, e, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// Next returns the first occurrence that ends after t: the current one if t is inside
// a window.
func (sc Schedule) Next(t time.Time) (start, end time.Time, ok bool) {
	if sc.loc == nil {
		return time.Time{}, time.Time{}, false
	}
	lt := t.In(sc.loc)
	y, mo, d := lt.Date()
	for i := -1; i <= 8; i++ {
		day := time.Date(y, mo, d+i, 12, 0, 0, 0, sc.loc)
		if !sc.days[day.Weekday()] {
			continue
		}
		s, e := sc.occurrence(day.Date())
		if e.After(t) && e.After(s) {
			return s, e, true
		}
	}
	return time.Time{}, time.Time{}, false
}

// Window is a maintenance window: while it is open, the alerts it matches are muted and
// shown as silenced by it. It recurs by Schedule, or is a one-off from Start to End.
// Window is a configuration value; see Config.Maintenance.
type Window struct {
	// Name identifies the window in alerts ("maintenance <name>") and errors.
	Name string `yaml:"name" json:"name"`
	// Schedule is a recurring window in ParseSchedule's syntax; empty for a one-off.
	Schedule string `yaml:"schedule" json:"schedule,omitempty"`
	// Start and End bound a one-off window; both are empty for a recurring one.
	Start time.Time `yaml:"start" json:"start,omitzero"`
	End   time.Time `yaml:"end" json:"end,omitzero"`
	// Matchers select the alerts the window mutes (patrol.ParseMatcher syntax); empty mutes
	// every alert.
	Matchers []string `yaml:"matchers" json:"matchers,omitempty"`
}

// WindowStatus is a maintenance window as Engine.Windows reports it: whether it is open
// now, and its current or next occurrence.
type WindowStatus struct {
	Window
	Active bool `json:"active"`
	// From and Until bound the current occurrence, or the next one when not active;
	// both are zero when the window will not open again.
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

// window is a validated Window.
type window struct {
	Window
	sched    Schedule
	recur    bool
	matchers patrol.Matchers
}

func compileWindow(w Window) (window, error) {
	cw := window{Window: w}
	bad := func(field, format string, args ...any) (window, error) {
		return cw, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	var err error
	if cw.matchers, err = patrol.ParseMatchers(w.Matchers); err != nil {
		return bad("matchers", "%v", err)
	}
	switch {
	case w.Name == "":
		return bad("name", "empty")
	case w.Schedule != "" && (!w.Start.IsZero() || !w.End.IsZero()):
		return bad("schedule", "give either a schedule or start and end, not both")
	case w.Schedule != "":
		cw.recur = true
		if cw.sched, err = ParseSchedule(w.Schedule); err != nil {
			return bad("schedule", "%v", err)
		}
	case w.Start.IsZero() || w.End.IsZero():
		return bad("start, end", "a one-off window needs both (or give a schedule)")
	case !w.End.After(w.Start):
		return bad("end", "%s is not after start %s", w.End.Format(time.RFC3339), w.Start.Format(time.RFC3339))
	}
	return cw, nil
}

// activeAt reports whether the window is open at t.
func (w *window) activeAt(t time.Time) bool {
	if w.recur {
		_, _, ok := w.sched.At(t)
		return ok
	}
	return !t.Before(w.Start) && t.Before(w.End)
}

func (w *window) status(t time.Time) WindowStatus {
	st := WindowStatus{Window: w.Window, Active: w.activeAt(t)}
	if w.recur {
		if s, e, ok := w.sched.Next(t); ok {
			st.From, st.Until = s, e
		}
	} else if t.Before(w.End) {
		st.From, st.Until = w.Start, w.End
	}
	return st
}
