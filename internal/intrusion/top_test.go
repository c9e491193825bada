package intrusion

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestTop(t *testing.T) {
	r := &replay{d: NewDetector(Config{})}
	// A scanner of 100 closed ports, a client of one web port, a guesser at SSH.
	for i := 0; i < 100; i++ {
		r.refused(t0.Add(time.Duration(i)*5*time.Millisecond), attacker, victim, uint16(1+i))
	}
	client := netip.MustParseAddr("198.51.100.20")
	for i := 0; i < 5; i++ {
		r.session(t0.Add(time.Duration(i)*time.Second), client, victim, 443, 30*time.Second)
	}
	guesser := netip.MustParseAddr("2001:db8::66")
	for i := 0; i < 45; i++ {
		r.session(t0.Add(time.Duration(i)*time.Second), guesser, victim, 22, time.Second)
	}

	top := r.d.Top(10)
	var order []netip.Addr
	for _, s := range top {
		order = append(order, s.Source)
	}
	if want := []netip.Addr{attacker, guesser, client}; !slices.Equal(order, want) {
		t.Fatalf("got order %v, want %v", order, want)
	}
	sc := top[0]
	if sc.DistinctPorts < 90 || sc.Refused != 100 || sc.NewFlows != 100 || sc.DistinctHosts != 1 || !slices.Contains(sc.Found, KindFastScan) {
		t.Errorf("scanner: got %+v, want about 100 distinct ports, 100 refused, the fast scan found", sc)
	}
	if !sc.FirstSeen.Equal(t0) || !sc.LastSeen.After(sc.FirstSeen) {
		t.Errorf("scanner seen %s to %s, want from %s", sc.FirstSeen, sc.LastSeen, t0)
	}
	if g := top[1]; g.Attempts != 45 || !slices.Contains(g.Found, KindBruteForce) {
		t.Errorf("guesser: got %+v, want 45 attempts and the brute force found", g)
	}
	if c := top[2]; c.Score > 2 || c.DistinctPorts != 1 || len(c.Found) != 0 {
		t.Errorf("client: got %+v, want a score of at most 2, one port, nothing found", c)
	}
	if got := r.d.Top(1); len(got) != 1 || got[0].Source != attacker {
		t.Errorf("Top(1) = %v, want the scanner alone", got)
	}
	if got := r.d.Top(0); len(got) != 0 {
		t.Errorf("Top(0) = %v, want none", got)
	}
}

// TestGuardTopConcurrent reads the top sources while events are fed (run with -race).
func TestGuardTopConcurrent(t *testing.T) {
	g := NewGuard(GuardConfig{Detector: NewDetector(Config{})})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ {
			src := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 50)})
			g.Handle(t0.Add(time.Duration(i)*time.Millisecond), &Event{Type: EventNew, Proto: ProtoTCP, Src: src, Dst: victim,
				SrcPort: uint16(10000 + i), DstPort: uint16(1000 + i), TCPState: TCPSynSent})
		}
	}()
	for i := 0; i < 200; i++ {
		for _, s := range g.Top(5) {
			if !s.Source.IsValid() {
				t.Fatalf("invalid source in %v", s)
			}
		}
	}
	wg.Wait()
	top := g.Top(60)
	if len(top) != 50 {
		t.Fatalf("got %d sources, want the 50 fed", len(top))
	}
	for i := 1; i < len(top); i++ {
		if top[i].Score > top[i-1].Score {
			t.Fatalf("not ordered by score at %d: %d after %d", i, top[i].Score, top[i-1].Score)
		}
	}
}

// BenchmarkTop ranks 100,000 tracked sources (the default cap).
func BenchmarkTop(b *testing.B) {
	d := NewDetector(Config{})
	for i := 0; i < 100_000; i++ {
		src := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		e := Event{Type: EventNew, Proto: ProtoTCP, Src: src, Dst: victim, SrcPort: 40000, DstPort: uint16(1 + i%1000), TCPState: TCPSynSent}
		d.Observe(nil, t0.Add(time.Duration(i)*time.Microsecond), &e)
	}
	b.ResetTimer()
	for b.Loop() {
		d.Top(50)
	}
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N) / 100_000
	b.ReportMetric(per, "ns/source")
	b.Logf("Top(50) over 100,000 sources: %.0f ns a source, %.0f ms a call, with events held meanwhile (goal: at most 2 µs a source, "+
		"0.2 s at the cap; anchor: the 2-core reference machine)", per, per*100_000/1e6)
}
