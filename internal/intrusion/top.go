package intrusion

import (
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"time"
)

// SourceScore is what the detector knows of one tracked source now: how many doors
// it tried and how many of its flows failed. Score orders sources: distinct ports
// plus failed flows plus short connections to authentication ports.
type SourceScore struct {
	Source        netip.Addr `json:"source"`
	Score         int        `json:"score"`
	DistinctPorts int        `json:"distinct_ports"`
	DistinctHosts int        `json:"distinct_hosts"`
	NewFlows      int        `json:"new_flows"`
	Refused       int        `json:"refused"`
	HalfOpen      int        `json:"half_open"`
	Attempts      int        `json:"attempts"`
	FirstSeen     time.Time  `json:"first_seen"`
	LastSeen      time.Time  `json:"last_seen"`
	// Found are the kinds of finding raised about the source while tracked.
	Found []string `json:"found"`
}

// Top returns the n tracked sources of highest score, highest first (ties: the most
// recently seen first). It walks every tracked source once without allocating per
// source (about 1 µs a source, BenchmarkTop); like the rest of the Detector it is not
// safe for concurrent use (Guard.Top is).
func (d *Detector) Top(n int) []SourceScore {
	if n <= 0 {
		return []SourceScore{}
	}
	type cand struct {
		src   netip.Addr
		s     *source
		score int
	}
	less := func(a, b cand) bool { // a ranks below b
		if a.score != b.score {
			return a.score < b.score
		}
		return a.s.last < b.s.last
	}
	best := make([]cand, 0, n)
	for k, s := range d.sources {
		c := cand{src: k, s: s, score: s.score()}
		if len(best) == n && !less(best[len(best)-1], c) {
			continue
		}
		i := len(best)
		if i < n {
			best = append(best, c)
		} else {
			i = n - 1
		}
		for ; i > 0 && less(best[i-1], c); i-- {
			best[i] = best[i-1]
		}
		best[i] = c
	}
	out := make([]SourceScore, 0, len(best))
	for _, c := range best {
		out = append(out, c.s.scoreOf(c.src, c.score))
	}
	return out
}

// distinct counts the distinct ports and hosts in the fast window's ring.
func (s *source) distinct() (ports, hosts int) {
	var ps [ringSize]uint16
	var hs [ringSize]uint32
	for _, r := range s.ring {
		if r.t == 0 {
			continue
		}
		if !slices.Contains(ps[:ports], r.port) {
			ps[ports] = r.port
			ports++
		}
		if !slices.Contains(hs[:hosts], r.host) {
			hs[hosts] = r.host
			hosts++
		}
	}
	return ports, hosts
}

// score is cheap: the fast window's flows (each a distinct door while in it) stand
// for its distinct ports.
func (s *source) score() int {
	p := 0
	for i := range s.ring {
		if s.ring[i].t != 0 {
			p++
		}
	}
	ones := 0
	for w := 0; w < slowBits/64; w++ {
		ones += bits.OnesCount64(s.slow[0][w] | s.slow[1][w] | s.slow[2][w] | s.slow[3][w])
	}
	return max(p, slowByOnes[ones]) + int(s.refused) + int(s.halfOpen) + int(s.attempts)
}

// slowByOnes is slowCount by the number of bits set in the union of the quarters.
var slowByOnes = func() (t [slowBits + 1]int) {
	for ones := range t {
		zeros := max(slowBits-ones, 1)
		t[ones] = int(math.Round(-slowBits * math.Log(float64(zeros)/slowBits)))
	}
	return t
}()

func (s *source) scoreOf(src netip.Addr, score int) SourceScore {
	p, h := s.distinct()
	sc := SourceScore{Source: src, Score: score, DistinctPorts: max(p, slowCount(s)), DistinctHosts: h,
		NewFlows: int(s.news), Refused: int(s.refused), HalfOpen: int(s.halfOpen), Attempts: int(s.attempts),
		FirstSeen: time.Unix(0, s.first), LastSeen: time.Unix(0, s.last), Found: []string{}}
	for i, name := range []string{KindFastScan, KindSlowScan, KindHalfOpen, KindBruteForce} {
		if s.reported[i] != 0 {
			sc.Found = append(sc.Found, name)
		}
	}
	return sc
}

// Top returns the detector's n tracked sources of highest score; see Detector.Top.
// Safe for concurrent use with Handle and Sweep.
func (g *Guard) Top(n int) []SourceScore {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cfg.Detector.Top(n)
}
