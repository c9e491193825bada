package anomaly

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// portSeries is a synthetic port metric: a daily cycle with quieter weekends, noise, and
// one injected anomaly.
type portSeries struct {
	name      string
	dir       Direction
	kind      string
	at, until int // the anomaly's points
	values    []float64
}

// makePortSeries builds series k of the suite: two weeks of 5-minute points, one anomaly
// of kind kinds[k%len] somewhere in the second week.
func makePortSeries(k int) portSeries {
	kinds := []string{"spike", "shift", "ramp", "variance", "drop", "flat", "night"}
	rng := rand.New(rand.NewPCG(uint64(k), 42))
	n := 14 * perDay
	s := portSeries{kind: kinds[k%len(kinds)]}
	base := 20 + 200*rng.Float64()
	amp := base * (0.2 + 0.6*rng.Float64()) // daily swing
	noise := base * (0.02 + 0.06*rng.Float64())
	metric := k % 3
	switch metric {
	case 0:
		s.name, s.dir = "latency", Up
	case 1:
		s.name, s.dir = "connections", Down
	default:
		s.name, s.dir = "accept-queue", Both
	}
	s.at = 8*perDay + rng.IntN(5*perDay)
	s.until = s.at + 1
	v := make([]float64, n)
	for i := range n {
		h := float64(i%perDay) / float64(perDay)
		x := base + amp*math.Sin(2*math.Pi*(h-0.3))
		if wd := (i / perDay) % 7; wd >= 5 {
			x = base*0.7 + amp*0.4*math.Sin(2*math.Pi*(h-0.3))
		}
		v[i] = x + noise*rng.NormFloat64()
		if metric == 1 {
			v[i] = math.Round(v[i])
		}
	}
	up := 1.0
	if s.dir == Down {
		up = -1
	}
	switch s.kind {
	case "spike":
		v[s.at] += up * (10*noise + amp)
	case "shift":
		s.until = n
		for i := s.at; i < n; i++ {
			v[i] += up * (6*noise + 0.5*amp)
		}
	case "ramp":
		s.until = s.at + 72
		for i := s.at; i < n; i++ {
			f := math.Min(1, float64(i-s.at)/72)
			v[i] += up * f * (10*noise + amp)
		}
	case "variance":
		s.until = s.at + 36
		for i := s.at; i < s.until; i++ {
			v[i] += 6 * noise * rng.NormFloat64()
		}
	case "drop":
		s.until = s.at + 12
		for i := s.at; i < s.until; i++ {
			v[i] = 0
			if s.dir == Up {
				v[i] = 10 * base // latency cannot drop to zero and matter; a timeout instead
			}
		}
	case "flat":
		s.until = s.at + 72
		for i := s.at; i < s.until; i++ {
			v[i] = v[s.at]
		}
	case "night":
		// Three night hours at the day's peak level.
		day := s.at / perDay * perDay
		s.at, s.until = day+perDay/12, day+perDay/12+36
		for i := s.at; i < s.until; i++ {
			v[i] = base + amp + noise*rng.NormFloat64()
		}
		if s.dir == Down { // for connections, a night at noon's level is not a drop
			s.dir = Both
		}
	}
	s.values = v
	return s
}

// TestPortMetricSuite runs the detector at its defaults over synthetic port metrics with
// one anomaly each, as the daemon would, and checks the goals: recall >= 0.9 and at most
// 0.5 false-alarm episodes per series-week.
func TestPortMetricSuite(t *testing.T) {
	const n = 140
	detected := map[string][2]int{}
	falseAlarms, weeks := 0, 0.0
	var delays []time.Duration
	for k := range n {
		s := makePortSeries(k)
		d := New(Config{Name: s.name, Direction: s.dir})
		hit := false
		for i, v := range s.values {
			r, err := d.Observe(t0.Add(time.Duration(i)*step), v)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Alert || i < 2*perDay {
				continue // the first two days are learning time
			}
			switch {
			case i >= s.at && i < s.until+12:
				if !hit {
					delays = append(delays, time.Duration(i-s.at)*step)
				}
				hit = true
			case i >= s.at && i < s.until+72:
				// the tail of the anomaly's episode
			default:
				falseAlarms++
			}
		}
		weeks += float64(len(s.values)-2*perDay) / float64(7*perDay)
		c := detected[s.kind]
		c[1]++
		if hit {
			c[0]++
		}
		detected[s.kind] = c
	}
	hits := 0
	var b strings.Builder
	for _, k := range []string{"spike", "shift", "ramp", "variance", "drop", "flat", "night"} {
		c := detected[k]
		hits += c[0]
		fmt.Fprintf(&b, " %s %d/%d", k, c[0], c[1])
	}
	recall := float64(hits) / n
	fpw := float64(falseAlarms) / weeks
	t.Logf("recall %.2f (goal >= 0.9):%s; false alarms %.2f per series-week (goal <= 0.5); median delay %v",
		recall, b.String(), fpw, median(delays))
	if recall < 0.9 {
		t.Errorf("recall %.2f, want >= 0.9", recall)
	}
	if fpw > 0.5 {
		t.Errorf("false alarms %.2f per series-week, want <= 0.5", fpw)
	}
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	c := append([]time.Duration(nil), d...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c[len(c)/2]
}
