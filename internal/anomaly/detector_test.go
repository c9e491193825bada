package anomaly

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC) // a Monday

const step = 5 * time.Minute

// perDay is the number of 5-minute points in a day.
const perDay = int(24 * time.Hour / step)

// series is a synthetic series: value(i) for point i at t0 + i*step.
type series func(i int, rng *rand.Rand) float64

// run feeds n points of s to a fresh detector and returns every result.
func run(t *testing.T, cfg Config, n int, s series) []Result {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	d := New(cfg)
	out := make([]Result, n)
	for i := range n {
		r, err := d.Observe(t0.Add(time.Duration(i)*step), s(i, rng))
		if err != nil {
			t.Fatalf("point %d: %v", i, err)
		}
		if r.Score < 0 || r.Score > 1 || math.IsNaN(r.Score) {
			t.Fatalf("point %d: score %v outside [0,1]", i, r.Score)
		}
		out[i] = r
	}
	return out
}

// alerts returns the indexes of alerting points in [from, to).
func alerts(rs []Result, from, to int) []int {
	var out []int
	for i := from; i < to && i < len(rs); i++ {
		if rs[i].Alert {
			out = append(out, i)
		}
	}
	return out
}

// daily is a daily cycle between lo (03:00) and hi (15:00) with Gaussian noise.
func daily(i int, rng *rand.Rand, lo, hi, noise float64) float64 {
	ph := 2 * math.Pi * float64(i%perDay) / float64(perDay)
	return lo + (hi-lo)*(1-math.Cos(ph-math.Pi/4*0))/2*1 + noise*rng.NormFloat64()
}

func TestQuietSeriesDoesNotPage(t *testing.T) {
	rs := run(t, Config{}, 7*perDay, func(i int, rng *rand.Rand) float64 { return 100 + 5*rng.NormFloat64() })
	if a := alerts(rs, perDay, len(rs)); len(a) > 1 {
		t.Errorf("Gaussian noise for 6 days: got %d alerts %v, want at most 1", len(a), a)
	}
	rs = run(t, Config{}, 7*perDay, func(i int, rng *rand.Rand) float64 { return daily(i, rng, 20, 100, 3) })
	if a := alerts(rs, 2*perDay, len(rs)); len(a) > 1 {
		t.Errorf("daily cycle for 5 days: got %d alerts %v, want at most 1", len(a), a)
	}
}

func TestSpike(t *testing.T) {
	at := 3*perDay + 100
	rs := run(t, Config{}, 4*perDay, func(i int, rng *rand.Rand) float64 {
		v := 100 + 5*rng.NormFloat64()
		if i == at {
			v = 180
		}
		return v
	})
	if !rs[at].Alert {
		t.Fatalf("spike of 16 sigma: no alert (score %v)", rs[at].Score)
	}
	if rs[at].Kind != Spike || !strings.Contains(rs[at].Reason(), "far above") {
		t.Errorf("spike: kind %v, reason %q; want spike, far above", rs[at].Kind, rs[at].Reason())
	}
	if a := alerts(rs, perDay, at); len(a) > 1 {
		t.Errorf("before the spike: alerts %v, want at most 1", a)
	}
	// The spike stays out of the baseline.
	if e := rs[at+1].Expected; math.Abs(e-100) > 5 {
		t.Errorf("after the spike: expected %v, want about 100", e)
	}
}

func TestNightLooksLikeNoon(t *testing.T) {
	// Seven days of a daily cycle; on the eighth night, 02:00-03:00 has noon's value.
	from := 7*perDay + 24
	rs := run(t, Config{Name: "connections"}, 8*perDay, func(i int, rng *rand.Rand) float64 {
		if i >= from && i < from+12 {
			return 100 + 3*rng.NormFloat64()
		}
		return daily(i, rng, 20, 100, 3)
	})
	a := alerts(rs, from, from+12)
	if len(a) == 0 {
		t.Fatalf("noon's value at night: no alert (scores %v)", scores(rs[from:from+12]))
	}
	r := rs[a[0]]
	if r.Season != Daily && r.Season != Weekly {
		t.Errorf("night alert: season %v, want the daily profile", r.Season)
	}
	if !strings.Contains(r.Reason(), "connections") || !strings.Contains(r.Reason(), "for 02:") {
		t.Errorf("reason %q: want the series name and the time of day", r.Reason())
	}
	// Noon at noon is normal.
	if a := alerts(rs, 2*perDay, from); len(a) > 1 {
		t.Errorf("days 3-7 of the cycle: alerts %v, want at most 1", a)
	}
}

func scores(rs []Result) []float64 {
	out := make([]float64, len(rs))
	for i, r := range rs {
		out[i] = math.Round(r.Score*1e4) / 1e4
	}
	return out
}

func TestWeeklySeasonality(t *testing.T) {
	// Weekdays busy, weekends quiet; in the fourth week a Saturday is as busy as a weekday.
	busy := func(i int) bool { return t0.Add(time.Duration(i)*step).Weekday() != time.Saturday }
	sat := 3*7*perDay + 5*perDay + 10*12 // Saturday of week 4, 10:00
	rs := run(t, Config{}, sat+perDay, func(i int, rng *rand.Rand) float64 {
		if busy(i) || (i >= sat && i < sat+24) {
			return daily(i, rng, 50, 150, 4)
		}
		return daily(i, rng, 10, 30, 2)
	})
	a := alerts(rs, sat, sat+24)
	if len(a) == 0 {
		t.Fatalf("a Saturday as busy as a weekday: no alert")
	}
	if rs[a[0]].Season != Weekly || !strings.Contains(rs[a[0]].Reason(), "Saturday") {
		t.Errorf("season %v, reason %q; want the weekly profile and Saturday", rs[a[0]].Season, rs[a[0]].Reason())
	}
	// The third and fourth weeks' ordinary Saturdays and Mondays do not page.
	if a := alerts(rs, 2*7*perDay+perDay, sat); len(a) > 2 {
		t.Errorf("ordinary days of weeks 3-4: alerts %v, want at most 2", a)
	}
}

func TestLevelShiftBecomesNormal(t *testing.T) {
	at := 3 * perDay
	rs := run(t, Config{}, 6*perDay, func(i int, rng *rand.Rand) float64 {
		if i >= at {
			return 200 + 5*rng.NormFloat64()
		}
		return 100 + 5*rng.NormFloat64()
	})
	if a := alerts(rs, at, at+12); len(a) == 0 {
		t.Fatalf("shift from 100 to 200: no alert within an hour")
	}
	if a := alerts(rs, at+perDay, len(rs)); len(a) > 0 {
		t.Errorf("a day after the shift: alerts %v, want none (the new level is normal)", a)
	}
	if e := rs[len(rs)-1].Expected; math.Abs(e-200) > 10 {
		t.Errorf("expected at the end: %v, want about 200", e)
	}
}

func TestSlowRamp(t *testing.T) {
	// Latency 100±5 for three days, then rising by 100 over six hours.
	at := 3 * perDay
	rs := run(t, Config{Direction: Up, Name: "latency"}, at+72, func(i int, rng *rand.Rand) float64 {
		v := 100 + 5*rng.NormFloat64()
		if i >= at {
			v += 100 * float64(i-at) / 72
		}
		return v
	})
	a := alerts(rs, at, at+72)
	if len(a) == 0 {
		t.Fatalf("ramp of +100 over 6h: no alert")
	}
	if a[0] > at+36 {
		t.Errorf("ramp: first alert after %v, want within 3h", time.Duration(a[0]-at)*step)
	}
}

func TestVarianceChange(t *testing.T) {
	at := 3 * perDay
	rs := run(t, Config{}, at+48, func(i int, rng *rand.Rand) float64 {
		sd := 2.0
		if i >= at {
			sd = 10
		}
		return 100 + sd*rng.NormFloat64()
	})
	a := alerts(rs, at, at+48)
	if len(a) == 0 {
		t.Fatalf("spread ×5: no alert within 4h")
	}
	if a[0] > at+12 {
		t.Errorf("spread ×5: first alert after %v, want within 1h", time.Duration(a[0]-at)*step)
	}
}

func TestDropToZero(t *testing.T) {
	at := 3*perDay + 50
	rs := run(t, Config{Direction: Down, Name: "connections"}, at+12, func(i int, rng *rand.Rand) float64 {
		if i >= at {
			return 0
		}
		return math.Round(120 + 10*rng.NormFloat64())
	})
	if !rs[at].Alert {
		t.Fatalf("connections 120 -> 0: no alert at the drop (score %v)", rs[at].Score)
	}
	if !strings.Contains(rs[at].Reason(), "below") {
		t.Errorf("reason %q: want below", rs[at].Reason())
	}
}

func TestFlatLine(t *testing.T) {
	at := 3 * perDay
	rs := run(t, Config{}, at+72, func(i int, rng *rand.Rand) float64 {
		if i >= at {
			return 101.5
		}
		return 100 + 5*rng.NormFloat64()
	})
	a := alerts(rs, at, at+72)
	if len(a) == 0 {
		t.Fatalf("flat for 6h after noise: no alert")
	}
	if rs[a[0]].Kind != Flat || !strings.Contains(rs[a[0]].Reason(), "flat") {
		t.Errorf("kind %v reason %q, want flat-line", rs[a[0]].Kind, rs[a[0]].Reason())
	}
	// A flat-line that lasts two days pages a few times (each time it has doubled), not
	// at every point.
	rs = run(t, Config{}, at+2*perDay, func(i int, rng *rand.Rand) float64 {
		if i >= at {
			return 101.5
		}
		return 100 + 5*rng.NormFloat64()
	})
	if a := alerts(rs, at, len(rs)); len(a) == 0 || len(a) > 4 {
		t.Errorf("flat for 2 days: alerts %v, want 1 to 4", a)
	}
	// A series that never varied is not a flat-line anomaly.
	rs = run(t, Config{}, 3*perDay, func(int, *rand.Rand) float64 { return 5 })
	if a := alerts(rs, 0, len(rs)); len(a) > 0 {
		t.Errorf("constant series: alerts %v, want none", a)
	}
}

func TestDirection(t *testing.T) {
	at := 3*perDay + 10
	dip := func(i int, rng *rand.Rand) float64 {
		if i == at {
			return 20
		}
		return 100 + 5*rng.NormFloat64()
	}
	if rs := run(t, Config{Direction: Up}, at+1, dip); rs[at].Alert {
		t.Errorf("direction up: a dip alerts (score %v), want no alert", rs[at].Score)
	}
	if rs := run(t, Config{Direction: Both}, at+1, dip); !rs[at].Alert {
		t.Errorf("direction both: a dip does not alert (score %v)", rs[at].Score)
	}
}

func TestDeterministic(t *testing.T) {
	s := func(i int, rng *rand.Rand) float64 { return daily(i, rng, 20, 100, 5) }
	a, b := run(t, Config{}, 3*perDay, s), run(t, Config{}, 3*perDay, s)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("point %d: %+v then %+v", i, a[i], b[i])
		}
	}
}

func TestGapAndBadPoints(t *testing.T) {
	d := New(Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	tm := t0
	for range 2 * perDay {
		tm = tm.Add(step)
		if _, err := d.Observe(tm, 100+5*rng.NormFloat64()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Observe(tm, 1); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("repeated timestamp: got %v, want ErrOutOfOrder", err)
	}
	if _, err := d.Observe(tm.Add(-time.Hour), 1); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("timestamp back: got %v, want ErrOutOfOrder", err)
	}
	if _, err := d.Observe(tm.Add(time.Second), math.NaN()); err == nil {
		t.Error("NaN: no error")
	}
	// Two days without data, then the same series: no alert.
	tm = tm.Add(48 * time.Hour)
	for i := range 24 {
		r, err := d.Observe(tm.Add(time.Duration(i)*step), 100+5*rng.NormFloat64())
		if err != nil {
			t.Fatal(err)
		}
		if r.Alert {
			t.Errorf("point %d after a 2-day gap: alert (%s)", i, r.Reason())
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	cfg := Config{Name: "latency", Direction: Up}
	a := New(cfg)
	rng := rand.New(rand.NewPCG(5, 6))
	feed := func(d *Detector, i int, v float64) Result {
		r, err := d.Observe(t0.Add(time.Duration(i)*step), v)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	n := 9 * perDay
	for i := range n {
		feed(a, i, daily(i, rng, 20, 100, 5))
	}
	blob, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("state after 9 days of 5-minute points: %d bytes", len(blob))
	if len(blob) > 64<<10 {
		t.Errorf("state: %d bytes, want at most 64 KiB", len(blob))
	}
	b := New(cfg)
	if err := b.UnmarshalBinary(blob); err != nil {
		t.Fatal(err)
	}
	for i := n; i < n+perDay; i++ {
		v := daily(i, rng, 20, 100, 5)
		if i == n+100 {
			v = 300
		}
		ra, rb := feed(a, i, v), feed(b, i, v)
		if ra != rb {
			t.Fatalf("point %d: original %+v, restored %+v", i, ra, rb)
		}
	}
	again, _ := b.MarshalBinary()
	if blob2, _ := a.MarshalBinary(); string(again) != string(blob2) {
		t.Error("states of the original and the restored detector differ")
	}

	for _, bad := range []struct {
		name string
		b    []byte
		into *Detector
	}{
		{"empty", nil, New(cfg)},
		{"version", append([]byte{9}, blob[1:]...), New(cfg)},
		{"truncated", blob[:len(blob)-1], New(cfg)},
		{"other bucket", blob, New(Config{Bucket: time.Minute})},
	} {
		if err := bad.into.UnmarshalBinary(bad.b); !errors.Is(err, ErrState) {
			t.Errorf("%s: got %v, want ErrState", bad.name, err)
		}
	}
}

func FuzzUnmarshalBinary(f *testing.F) {
	d := New(Config{Bucket: time.Hour})
	for i := range 200 {
		d.Observe(t0.Add(time.Duration(i)*time.Hour), float64(i%24))
	}
	blob, _ := d.MarshalBinary()
	f.Add(blob)
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(Config{Bucket: time.Hour})
		if err := d.UnmarshalBinary(b); err != nil {
			return
		}
		for i := range 50 {
			r, err := d.Observe(time.Unix(int64(4e9+i*3600), 0), float64(i))
			if err == nil && (r.Score < 0 || r.Score > 1 || math.IsNaN(r.Score)) {
				t.Fatalf("score %v after a restored state", r.Score)
			}
		}
	})
}

// FuzzObserve feeds arbitrary steps and values: no panic, and every score in [0,1].
func FuzzObserve(f *testing.F) {
	f.Add([]byte{1, 2, 3, 250, 0, 0, 7, 9, 200, 100})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := New(Config{Direction: Direction(len(b) % 3)})
		tm := t0
		for i := 0; i+1 < len(b); i += 2 {
			tm = tm.Add(time.Duration(1+int(b[i])*int(b[i])) * time.Second * 30)
			v := math.Ldexp(float64(int8(b[i+1])), int(b[i]%64)-20)
			r, err := d.Observe(tm, v)
			if err != nil {
				t.Fatal(err)
			}
			if r.Score < 0 || r.Score > 1 || math.IsNaN(r.Score) || math.IsNaN(r.Expected) {
				t.Fatalf("point %d (%v): score %v expected %v", i/2, v, r.Score, r.Expected)
			}
		}
	})
}

// Band draws the daily shape it learned: after a week of a daily curve, the band at 03:00
// and at 15:00 are each around that hour's usual value, and Observe's band at a time is
// Band's for the same time.
func TestBandFollowsTheDailyProfile(t *testing.T) {
	d := New(Config{Name: "latency (ms)", Direction: Up, Bucket: time.Hour})
	if _, ok := d.Band(t0); ok {
		t.Fatal("a band before any point")
	}
	usual := func(at time.Time) float64 { return 20 + 10*math.Sin(2*math.Pi*float64(at.Hour())/24) }
	at := t0
	for ; at.Before(t0.Add(7 * 24 * time.Hour)); at = at.Add(5 * time.Minute) {
		if _, err := d.Observe(at, usual(at)); err != nil {
			t.Fatal(err)
		}
	}
	for _, hour := range []int{3, 9, 15, 21} {
		when := at.Truncate(24 * time.Hour).Add(time.Duration(hour) * time.Hour)
		b, ok := d.Band(when)
		if !ok || b.Season != Daily && b.Season != Weekly || math.Abs(b.Expected-usual(when)) > 1 || b.Lower > usual(when) || b.Upper < usual(when) {
			t.Errorf("%02d:00: got %+v, want a seasonal band around %.1f", hour, b, usual(when))
		}
	}
	b, _ := d.Band(at)
	r, _ := d.Observe(at, usual(at))
	// (Unless the local level predicted this point: Band never uses it.)
	if r.Season != Local && (b.Expected != r.Expected || b.Lower != r.Lower || b.Upper != r.Upper) {
		t.Errorf("Band %+v, Observe %+v at the same time", b, r)
	}
}
