package intrusion

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// timed is one event of a replay and its offset from the replay's start.
type timed struct {
	at time.Duration
	e  Event
}

// mixedReplay builds a replay at 100,000 events/s: clients reconnecting to a web
// service, checkers (load balancers' health checks of web, SSH, PostgreSQL and
// Redis ports, each every 2 s, HAProxy's default) and, when scanners > 0, that many
// sources trying random ports, interleaved.
func mixedReplay(n, clients, checkers, scanners int) []timed {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]timed, 0, n)
	const step = 10 * time.Microsecond // 100,000 events/s
	const period = int(2 * time.Second / step)
	sport := uint16(1024)
	type open struct {
		src          netip.Addr
		sport, dport uint16
		closeAt      int
	}
	var pending []open
	due := make(map[int][]int, checkers) // step within the period -> checkers
	for c := 0; c < checkers; c++ {
		o := rng.IntN(period)
		due[o] = append(due[o], c)
	}
	checkPorts := []uint16{80, 443, 8080, 8443, 22, 5432, 6379}
	at := func() time.Duration { return time.Duration(len(out)) * step }
	session := func(src netip.Addr, dport uint16, dur int) {
		sport++
		e := Event{Type: EventNew, Proto: ProtoTCP, Src: src, Dst: victim, SrcPort: sport, DstPort: dport, TCPState: TCPSynSent}
		out = append(out, timed{at(), e})
		e.Type, e.TCPState, e.Assured = EventUpdate, TCPEstablished, true
		out = append(out, timed{at(), e})
		pending = append(pending, open{src, sport, dport, len(out) + dur})
	}
	for i := 0; len(out) < n; i++ {
		keep := pending[:0]
		for _, p := range pending {
			if p.closeAt <= len(out) {
				e := Event{Proto: ProtoTCP, Src: p.src, Dst: victim, SrcPort: p.sport, DstPort: p.dport, Assured: true}
				e.Type, e.TCPState = EventUpdate, TCPFinWait
				out = append(out, timed{at(), e})
				e.Type, e.TCPState = EventDestroy, TCPTimeWait
				out = append(out, timed{at(), e})
				continue
			}
			keep = append(keep, p)
		}
		pending = keep
		for _, c := range due[len(out)%period] {
			src := netip.AddrFrom4([4]byte{10, 200, byte(c >> 8), byte(c)})
			session(src, checkPorts[c%len(checkPorts)], 200)
		}
		if scanners > 0 && rng.IntN(20) == 0 {
			sport++
			src := netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(scanners))})
			e := Event{Type: EventNew, Proto: ProtoTCP, Src: src, Dst: victim, SrcPort: sport, DstPort: uint16(1 + rng.IntN(65535)), TCPState: TCPSynSent}
			out = append(out, timed{at(), e})
			e.Type, e.TCPState = EventUpdate, TCPClose
			out = append(out, timed{at(), e})
			continue
		}
		c := rng.IntN(clients)
		session(netip.AddrFrom4([4]byte{10, byte(c >> 16), byte(c >> 8), byte(c)}), 443, 200+rng.IntN(2000))
	}
	return out[:n]
}

// BenchmarkDetector replays a mix of benign clients and scanners at 100,000
// events/s on the fake clock and reports CPU per event (goal ≤ 2 µs), the heap per
// tracked source (goal ≤ 1 KiB) and the findings about benign sources (goal 0).
func BenchmarkDetector(b *testing.B) {
	const clients = 20_000
	replay := mixedReplay(1_000_000, clients, 2_000, 50)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	d := NewDetector(Config{})
	var buf []Finding
	falseFindings, scanFindings := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := &replay[i%len(replay)]
		lap := time.Duration(i/len(replay)) * time.Duration(len(replay)) * 10 * time.Microsecond
		buf = d.Observe(buf[:0], t0.Add(lap+r.at), &r.e)
		for _, f := range buf {
			if f.Source.As4()[0] == 10 {
				falseFindings++
			} else {
				scanFindings++
			}
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEvent := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	perSource := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / float64(max(d.Sources(), 1))
	b.ReportMetric(perEvent, "ns/event")
	b.ReportMetric(perSource, "B/source")
	b.ReportMetric(float64(falseFindings), "false-findings")
	if b.N >= 100_000 {
		fmt.Printf("intrusion detector: %.0f ns CPU per event (goal ≤ 2000 ns; anchor: a loopback connect+close costs the kernel 53-62 µs), "+
			"%.0f B per tracked source over %d sources (goal ≤ 1024 B), %d findings about %d benign clients and 2,000 health checkers (goal 0), %d about 50 scanners\n",
			perEvent, perSource, d.Sources(), falseFindings, clients, scanFindings)
	}
	runtime.KeepAlive(replay)
}

// BenchmarkBenignReplay replays two hours of benign traffic on the fake clock —
// reconnecting clients, a load balancer's health checks, applications reconnecting
// to their database, a Prometheus scraping exporters — and counts the findings,
// each of which would be a ban (goal 0).
func BenchmarkBenignReplay(b *testing.B) {
	for i := 0; i < b.N; i++ {
		findings := 0
		g := NewGuard(GuardConfig{Detector: NewDetector(Config{}), OnFinding: func(Finding) { findings++ }})
		events := mixedReplay(720_000, 2_000, 2_000, 0) // 7.2 s at 100,000/s
		for i := range events {
			g.Handle(t0.Add(events[i].at), &events[i].e)
		}
		// And two hours at the pace of health checks and scrapes.
		slow := &replay{d: NewDetector(Config{})}
		lb, app, prom := netip.MustParseAddr("10.1.0.2"), netip.MustParseAddr("10.1.0.3"), netip.MustParseAddr("10.1.0.4")
		for s := 0; s < 2*3600; s += 2 {
			at := t0.Add(time.Duration(s) * time.Second)
			for _, p := range []uint16{80, 443, 8080, 8443} {
				slow.session(at, lb, victim, p, 3*time.Millisecond)
			}
			slow.session(at, app, victim, 5432, 50*time.Millisecond)
			if s%10 == 0 {
				for p := uint16(9100); p < 9110; p++ {
					slow.session(at, prom, victim, p, 10*time.Millisecond)
				}
			}
			if s%60 == 0 {
				slow.d.Sweep(at)
			}
		}
		bans := findings + len(slow.found)
		b.ReportMetric(float64(bans), "false-bans")
		if i == b.N-1 {
			fmt.Printf("benign replay: %d bans of benign sources over 720,000 events of 2,000 clients and 2,000 health checkers, and two hours of health checks and scrapes (goal 0)\n", bans)
		}
	}
}
