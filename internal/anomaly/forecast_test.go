package anomaly

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

var tt0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

// feedTrend feeds n points 5 minutes apart from start, value v(i), limit lim, and
// returns the last forecast.
func feedTrend(t *testing.T, tr *Trend, start time.Time, n int, v func(i int) float64, lim float64) Forecast {
	t.Helper()
	var f Forecast
	for i := range n {
		var err error
		f, err = tr.Observe(start.Add(time.Duration(i)*5*time.Minute), v(i), lim)
		if err != nil {
			t.Fatalf("point %d: %v", i, err)
		}
	}
	return f
}

func within(got, want time.Duration, frac float64) bool {
	return math.Abs(float64(got-want)) <= frac*float64(want)
}

// aDay feeds a day of a level of used of limit with a little noise: the history a short
// forecast needs.
func aDay(t *testing.T, tr *Trend, used, limit float64) time.Time {
	rng := rand.New(rand.NewPCG(9, 9))
	feedTrend(t, tr, tt0.Add(-24*time.Hour), 24*12, func(int) float64 { return used + rng.NormFloat64() }, limit)
	return tt0
}

func TestTrendForecastsALeak(t *testing.T) {
	// A connection leak: 500 of 1,000 connections, 10 more every 5 minutes, with noise.
	rng := rand.New(rand.NewPCG(1, 2))
	var tr Trend
	aDay(t, &tr, 500, 1000)
	f := feedTrend(t, &tr, tt0, 24, func(i int) float64 { return 500 + 10*float64(i) + rng.NormFloat64()*3 }, 1000)
	// At point 23 the level is 730: 270 left at 2/min is 135 minutes.
	if !f.OK || f.Horizon != "short" || !within(f.ETA, 135*time.Minute, 0.05) {
		t.Fatalf("got %+v, want a short-horizon forecast of about 2h15m", f)
	}
	if perHour := f.Rate * 3600; math.Abs(perHour-120) > 6 {
		t.Errorf("got rate %.4f/s, want about 2/min", f.Rate)
	}
	// Twelve more points: 50 minutes before the limit at the same rate.
	f = feedTrend(t, &tr, tt0.Add(24*5*time.Minute), 12, func(i int) float64 { return 740 + 10*float64(i) }, 1000)
	if !f.OK || !within(f.ETA, 75*time.Minute, 0.05) {
		t.Fatalf("got %+v, want about 1h15m", f)
	}
}

func TestTrendIgnoresASpike(t *testing.T) {
	var plain, spiked Trend
	aDay(t, &plain, 400, 1000)
	aDay(t, &spiked, 400, 1000)
	v := func(i int) float64 { return 400 + 15*float64(i) }
	fp := feedTrend(t, &plain, tt0, 24, v, 1000)
	fs := feedTrend(t, &spiked, tt0, 24, func(i int) float64 {
		if i == 20 {
			return 990 // one reading of a burst
		}
		return v(i)
	}, 1000)
	if !fp.OK || !fs.OK || !within(fs.ETA, fp.ETA, 0.05) {
		t.Fatalf("got %v with a spike, %v without; want within 5%%", fs.ETA, fp.ETA)
	}
}

func TestTrendForecastsNothingWhenFlatOrFalling(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// The morning rise of a daily curve that peaks at 90 % every day.
	var daily Trend
	curve := func(i int) float64 { return 600 + 300*math.Sin(2*math.Pi*float64(i)/(24*12)) }
	for i, f := range func() []Forecast {
		var fs []Forecast
		for i := range 3 * 24 * 12 {
			f, _ := daily.Observe(tt0.Add(time.Duration(i)*5*time.Minute), curve(i), 1000)
			fs = append(fs, f)
		}
		return fs
	}() {
		if f.OK && f.ETA < 24*time.Hour {
			t.Fatalf("daily curve, point %d: got %+v, want no forecast under a day", i, f)
		}
	}
	for name, v := range map[string]func(int) float64{
		"noise around a level": func(int) float64 { return 600 + rng.NormFloat64()*40 },
		"falling":              func(i int) float64 { return 900 - 10*float64(i) },
		"a daily curve's calm": func(i int) float64 { return 600 + 2*math.Sin(float64(i)/3) },
		"a creep under 1 %":    func(i int) float64 { return 600 + 0.3*float64(i) },
	} {
		var tr Trend
		if f := feedTrend(t, &tr, tt0, 24, v, 1000); f.OK {
			t.Errorf("%s: got a forecast %+v, want none", name, f)
		}
	}
	var tr Trend
	if f := feedTrend(t, &tr, tt0, 24, func(i int) float64 { return float64(i) }, 0); f.OK {
		t.Errorf("no limit: got a forecast %+v, want none", f)
	}
	if f := feedTrend(t, &Trend{}, tt0, 5, func(i int) float64 { return 100 * float64(i) }, 1000); f.OK {
		t.Errorf("five points: got a forecast %+v, want none before half an hour", f)
	}
}

func TestTrendAtTheLimit(t *testing.T) {
	var tr Trend
	aDay(t, &tr, 800, 1000)
	f := feedTrend(t, &tr, tt0, 12, func(i int) float64 { return 900 + 20*float64(i) }, 1000)
	if !f.OK || f.ETA != 0 {
		t.Fatalf("got %+v, want ETA 0 at the limit", f)
	}
	// Without a day of history, the same rise forecasts nothing: it could be the
	// morning of a daily curve.
	tr = Trend{}
	f = feedTrend(t, &tr, tt0, 12, func(i int) float64 { return 900 + 20*float64(i) }, 1000)
	if f.OK {
		t.Fatalf("got %+v without a day of history, want no forecast", f)
	}
}

func TestTrendLongHorizon(t *testing.T) {
	// Slow growth with a daily curve: +2 % of the limit a day from 40 %, a swing of
	// ±5 % a day. The short horizon sees the daily curve, not the growth; the hourly
	// means of five days see the growth, and their daily peaks: 60 % left of which the
	// peaks take 5 %, at 2 % a day, is 27.5 days from the start, 22.5 from the last
	// point.
	var tr Trend
	n := 5 * 24 * 12
	f := feedTrend(t, &tr, tt0, n, func(i int) float64 {
		days := float64(i) / (24 * 12)
		return 4000 + 200*days + 500*math.Sin(2*math.Pi*days)
	}, 10000)
	if !f.OK || f.Horizon != "long" || !within(f.ETA, 22*24*time.Hour+12*time.Hour, 0.1) {
		t.Fatalf("got %+v (ETA %v), want a long-horizon forecast of about 22.5 days", f, f.ETA)
	}
	if c := tr.Current(); c.ETA != f.ETA || c.Horizon != f.Horizon || c.OK != f.OK {
		t.Errorf("Current() = %+v, want the last forecast %+v", c, f)
	}
}

func TestTrendRefusesBadPoints(t *testing.T) {
	var tr Trend
	if _, err := tr.Observe(tt0, 1, 10); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]struct {
		at     time.Time
		v, lim float64
	}{
		"same time": {tt0, 2, 10}, "earlier": {tt0.Add(-time.Minute), 2, 10},
		"NaN": {tt0.Add(time.Minute), math.NaN(), 10}, "Inf limit": {tt0.Add(time.Minute), 1, math.Inf(1)},
	} {
		if _, err := tr.Observe(p.at, p.v, p.lim); !errors.Is(err, ErrTrendOrder) {
			t.Errorf("%s: got %v, want ErrTrendOrder", name, err)
		}
	}
}

// BenchmarkTrend prints the CPU per point with both horizons full. The daemon adds one
// point per used/limit series and 5-minute window, so a point's cost is spent once per
// series every 300 s.
func BenchmarkTrend(b *testing.B) {
	var tr Trend
	at := tt0
	for i := range TrendLong * 12 {
		at = at.Add(5 * time.Minute)
		tr.Observe(at, float64(i%1000), 2000)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		at = at.Add(5 * time.Minute)
		tr.Observe(at, float64(i%1000), 2000)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "µs/point")
	b.Logf("one point per series every 5 minutes in the daemon; the long fit runs once per 12 points")
}

func TestTrendStateRoundTrip(t *testing.T) {
	var tr Trend
	n := 3 * 24 * 12
	v := func(i int) float64 { return 4000 + 300*float64(i)/(24*12) }
	feedTrend(t, &tr, tt0, n, v, 10000)
	b, err := tr.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Trend
	if err := back.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got, want := back.Current(), tr.Current(); got.ETA != want.ETA || got.Horizon != want.Horizon || !got.OK {
		t.Fatalf("restored forecast %+v, want %+v", got, want)
	}
	// Both go on alike.
	at := tt0.Add(time.Duration(n) * 5 * time.Minute)
	f1, _ := tr.Observe(at, v(n), 10000)
	f2, _ := back.Observe(at, v(n), 10000)
	if f1.ETA != f2.ETA {
		t.Errorf("after one more point: %v restored, %v kept", f2.ETA, f1.ETA)
	}
	for i := range b {
		var bad Trend
		if err := bad.UnmarshalBinary(b[:i]); err == nil {
			t.Fatalf("a state cut at %d bytes of %d was accepted", i, len(b))
		}
	}
}

func TestTrendSince(t *testing.T) {
	// Flat for 20 days, then rising for 5: over 30 days the seasonal pairs mostly see
	// no rise; over the last 5 days they all do.
	var tr Trend
	n := 25 * 24 * 12
	feedTrend(t, &tr, tt0, n, func(i int) float64 {
		days := float64(i) / (24 * 12)
		return 3000 + 400*max(0, days-20)
	}, 10000)
	if f := tr.Since(5 * 24 * time.Hour); !f.OK || f.Horizon != "long" {
		t.Errorf("since 5 days: got %+v, want a long forecast", f)
	}
	if f := tr.Since(30 * 24 * time.Hour); f.OK && f.Horizon == "long" {
		t.Errorf("since 30 days: got %+v, want no long forecast (most day pairs are flat)", f)
	}
}

func FuzzTrendState(f *testing.F) {
	var tr Trend
	for i := range 100 {
		tr.Observe(tt0.Add(time.Duration(i)*time.Hour), float64(i), 1000)
	}
	b, _ := tr.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var tr Trend
		if tr.UnmarshalBinary(b) != nil {
			return
		}
		tr.Current()
		tr.Since(time.Hour)
		tr.Observe(time.Unix(tr.last+1, 0), 1, 2)
	})
}
