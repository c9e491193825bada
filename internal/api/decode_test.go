package api

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string // fragment of the expected error; empty means none
	}{
		{in: "90", want: 90 * time.Second},
		{in: "1.5", want: 1500 * time.Millisecond},
		{in: "0.000000001", want: time.Nanosecond},
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "2µs", want: 2 * time.Microsecond},
		{in: ".5s", want: 500 * time.Millisecond},
		{in: "0.0001220703125h", want: 439453125 * time.Nanosecond},
		{in: "2562047h", want: 2562047 * time.Hour},
		{in: "1e-10", err: "finer than a nanosecond"},
		{in: "0.0000000001", err: "finer than a nanosecond"},
		{in: "1.0000000001s", err: "finer than a nanosecond"},
		{in: "0.5ns", err: "finer than a nanosecond"},
		{in: "NaN", err: "not a finite number"},
		{in: "Inf", err: "not a finite number"},
		{in: "-Inf", err: "not a finite number"},
		{in: "infinity", err: "not a finite number"},
		{in: "1e300", err: "out of range"},
		{in: "1e400", err: "out of range"},
		{in: "9223372037", err: "out of range"},
		{in: "2562048h", err: "out of range"},
		{in: "2562047h48m", err: "out of range"},
		{in: "-5", err: "is negative"},
		{in: "-1h", err: "is negative"},
		{in: "1e3", err: "not a plain decimal"},
		{in: "0x10", err: "not a duration"},
		{in: "0x1p4", err: "not a plain decimal"},
		{in: "", err: "not a duration"},
		{in: "1..5", err: "not a duration"},
		{in: "5 s", err: "not a duration"},
		{in: "5d", err: "not a duration"},
		{in: "h", err: "not a duration"},
		{in: "1h.", err: "not a duration"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, bad := parseDuration("step", tt.in, 0, 1<<63-1)
			if tt.err != "" {
				if bad == nil || bad.field != "step" || !strings.Contains(bad.msg, tt.err) {
					t.Fatalf("got %s, %v, want an error on step saying %q", got, bad, tt.err)
				}
				return
			}
			if bad != nil {
				t.Fatalf("got error %q, want %s", bad.msg, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "2026-03-01T12:00:00Z", want: t0},
		{in: "2026-03-01T13:00:00+01:00", want: t0},
		{in: "1772366400", want: t0},
		{in: "1772366400.5", want: t0.Add(500 * time.Millisecond)},
		{in: "0", want: time.Unix(0, 0)},
		{in: "NaN", err: "not a finite number"},
		{in: "Inf", err: "not a finite number"},
		{in: "1e300", err: "out of range"},
		{in: "7258118400", err: "out of range"}, // 2200-01-01
		{in: "9999-01-01T00:00:00Z", err: "out of range"},
		{in: "1969-12-31T23:59:59Z", err: "out of range"},
		{in: "-1", err: "is negative"},
		{in: "1772366400.0000000001", err: "finer than a nanosecond"},
		{in: "yesterday", err: "not an RFC 3339 time"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, bad := parseTime("from", tt.in)
			if tt.err != "" {
				if bad == nil || bad.field != "from" || !strings.Contains(bad.msg, tt.err) {
					t.Fatalf("got %s, %v, want an error on from saying %q", got, bad, tt.err)
				}
				return
			}
			if bad != nil {
				t.Fatalf("got error %q, want %s", bad.msg, tt.want)
			}
			if !got.Equal(tt.want) {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestTimeAndDurationParameters: every time and duration the API reads refuses NaN,
// Inf, out-of-range and sub-resolution values with a 400 that names the field, and a
// history step below the floor never reaches a division.
func TestTimeAndDurationParameters(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	id := url.QueryEscape(dbID)
	silence := func(extra string) string {
		return `{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x",` + extra + `}`
	}
	tests := []struct {
		name, method, path, body string
		field, msg               string
	}{
		{"step 1e-10", "GET", "/api/v1/targets/history?id=" + id + "&step=1e-10", "", "step", "finer than a nanosecond"},
		{"step 1ns", "GET", "/api/v1/targets/history?id=" + id + "&step=1ns", "", "step", "shorter than the minimum of 1s"},
		{"step 0.5", "GET", "/api/v1/targets/history?id=" + id + "&step=0.5", "", "step", "shorter than the minimum of 1s"},
		{"step 0", "GET", "/api/v1/targets/history?id=" + id + "&step=0", "", "step", "shorter than the minimum"},
		{"step NaN", "GET", "/api/v1/targets/history?id=" + id + "&step=NaN", "", "step", "not a finite number"},
		{"step Inf", "GET", "/api/v1/targets/history?id=" + id + "&step=Inf", "", "step", "not a finite number"},
		{"step 1e300", "GET", "/api/v1/targets/history?id=" + id + "&step=1e300", "", "step", "out of range"},
		{"step over span", "GET", "/api/v1/targets/history?id=" + id + "&step=10000h", "", "step", "longer than the maximum"},
		{"from NaN", "GET", "/api/v1/targets/history?id=" + id + "&from=NaN", "", "from", "not a finite number"},
		{"from Inf", "GET", "/api/v1/targets/history?id=" + id + "&from=-Inf", "", "from", "not a finite number"},
		{"to 1e300", "GET", "/api/v1/targets/history?id=" + id + "&to=1e300", "", "to", "out of range"},
		{"to far", "GET", "/api/v1/targets/history?id=" + id + "&to=9000000000", "", "to", "out of range"},
		{"since NaN", "GET", "/api/v1/deliveries?since=NaN", "", "since", "not a finite number"},
		{"since 1e300", "GET", "/api/v1/deliveries?since=1e300", "", "since", "out of range"},
		{"duration NaN", "POST", "/api/v1/silences", silence(`"duration":"NaN"`), "duration", "not a finite number"},
		{"duration Inf", "POST", "/api/v1/silences", silence(`"duration":"Inf"`), "duration", "not a finite number"},
		{"duration 1e300", "POST", "/api/v1/silences", silence(`"duration":"1e300"`), "duration", "out of range"},
		{"duration 1e-10", "POST", "/api/v1/silences", silence(`"duration":"1e-10"`), "duration", "finer than a nanosecond"},
		{"duration 1ns", "POST", "/api/v1/silences", silence(`"duration":"1ns"`), "duration", "shorter than the minimum of 1s"},
		{"ends_at NaN", "POST", "/api/v1/silences", silence(`"ends_at":"NaN"`), "ends_at", "not a finite number"},
		{"ends_at 1e300", "POST", "/api/v1/silences", silence(`"ends_at":"1e300"`), "ends_at", "out of range"},
		{"starts_at Inf", "POST", "/api/v1/silences", silence(`"starts_at":"Inf","duration":"1h"`), "starts_at", "not a finite number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := do(t, s, tt.method, tt.path, operatorSecret, tt.body)
			if rec.Code != 400 {
				t.Fatalf("got %d, want 400: %s", rec.Code, rec.Body)
			}
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
				t.Fatal(err)
			}
			if e.Field != tt.field || !strings.Contains(e.Error, tt.msg) {
				t.Errorf("got %s: %q, want %s: …%s…", e.Field, e.Error, tt.field, tt.msg)
			}
		})
	}
	// The floor itself is accepted.
	if rec := do(t, s, "GET", "/api/v1/targets/history?id="+id+"&step=1&from=2026-03-01T11:00:00Z", viewerSecret, ""); rec.Code != 200 {
		t.Errorf("step=1: got %d, want 200: %s", rec.Code, rec.Body)
	}
}

// TestSilenceRefusals: a silence whose matchers all match the empty string is refused
// by the API itself, and the engine's refusal (a *patrol.SilenceError) becomes a 400
// naming the field the request used.
func TestSilenceRefusals(t *testing.T) {
	f, c := newWorld()
	s := newServer(f, nil)
	for _, body := range []string{
		`{"matchers":[{"name":"target","op":"=~","value":".*"}],"comment":"x","duration":"1h"}`,
		`{"matchers":[{"name":"target","op":"=~","value":".*"},{"name":"team","op":"!=","value":"web"}],"comment":"x","duration":"1h"}`,
	} {
		rec := do(t, s, "POST", "/api/v1/silences", operatorSecret, body)
		var e errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 400 || e.Field != "matchers" || !strings.Contains(e.Error, "match the empty string") {
			t.Errorf("%s: got %d %s: %q, want 400 on matchers", body, rec.Code, e.Field, e.Error)
		}
	}
	if len(c.silences) != 0 {
		t.Errorf("got %d silences created, want none", len(c.silences))
	}

	f.createSilence = func(_ context.Context, sl patrol.Silence) (patrol.Silence, error) {
		if sl.EndsAt.Sub(sl.StartsAt) > 30*24*time.Hour {
			return patrol.Silence{}, &patrol.SilenceError{Field: "ends_at", Reason: "lasts 744h0m0s, longer than the maximum of 720h0m0s"}
		}
		return sl, nil
	}
	for _, tt := range []struct{ body, field string }{
		{`{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","duration":"744h"}`, "duration"},
		{`{"matchers":[{"name":"a","op":"=","value":"b"}],"comment":"x","ends_at":"2026-04-01T12:00:00Z"}`, "ends_at"},
	} {
		rec := do(t, s, "POST", "/api/v1/silences", operatorSecret, tt.body)
		var e errorBody
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != 400 || e.Field != tt.field || !strings.Contains(e.Error, "longer than the maximum") {
			t.Errorf("%s: got %d %s: %q, want 400 on %s", tt.body, rec.Code, e.Field, e.Error, tt.field)
		}
	}
}

// TestErrorsHidePasswords: an error that echoes a target ID given with a password
// shows it without.
func TestErrorsHidePasswords(t *testing.T) {
	f, _ := newWorld()
	s := newServer(f, nil)
	for _, path := range []string{
		"/api/v1/targets/" + url.PathEscape("redis://admin:hunter2@cache:6379"),
		"/api/v1/targets/" + url.PathEscape("admin:hunter2@cache:6379"),
		"/api/v1/targets/history?id=" + url.QueryEscape("redis://admin:hunter2@cache:6379"),
		"/api/v1/targets/history?id=" + url.QueryEscape("redis://admin:hun#ter2@cache:6379"),
	} {
		rec := do(t, s, "GET", path, viewerSecret, "")
		if rec.Code != 404 {
			t.Errorf("GET %s: got %d, want 404", path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "hunter2") || strings.Contains(rec.Body.String(), "ter2") {
			t.Errorf("GET %s: got %s, which shows the password", path, rec.Body)
		}
	}
}
