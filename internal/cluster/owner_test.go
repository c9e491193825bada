package cluster

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"testing"
)

func members(k int, location string) []Member {
	ms := make([]Member, k)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("probe-%02d-%s", i, location), Location: location}
	}
	return ms
}

func TestOwnerOfStable(t *testing.T) {
	ms := append(members(5, "eu-1"), members(3, "us-1")...)
	reversed := make([]Member, len(ms))
	for i, m := range ms {
		reversed[len(ms)-1-i] = m
	}
	for i := range 1000 {
		key := fmt.Sprintf("target-%d", i)
		for _, loc := range []string{"eu-1", "us-1"} {
			a, b, c := OwnerOf(ms, loc, key), OwnerOf(ms, loc, key), OwnerOf(reversed, loc, key)
			if a == "" || a != b || a != c {
				t.Fatalf("OwnerOf(%s, %s) = %q, %q, %q (reversed); want one non-empty answer", loc, key, a, b, c)
			}
			for _, m := range ms {
				if m.ID == a && m.Location != loc {
					t.Fatalf("OwnerOf(%s, %s) = %s of location %s", loc, key, a, m.Location)
				}
			}
		}
	}
	if got := OwnerOf(ms, "ap-1", "target-1"); got != "" {
		t.Errorf("OwnerOf of a location without members = %q, want \"\"", got)
	}
	if got := OwnerOf(nil, "eu-1", "target-1"); got != "" {
		t.Errorf("OwnerOf(nil) = %q, want \"\"", got)
	}
}

// TestOwnerOfFixed pins the hash: every process, of every version, must agree.
func TestOwnerOfFixed(t *testing.T) {
	ms := []Member{{ID: "a", Location: "x"}, {ID: "b", Location: "x"}, {ID: "c", Location: "x"}}
	want := map[string]string{}
	for i := range 8 {
		key := fmt.Sprintf("k%d", i)
		want[key] = OwnerOf(ms, "x", key)
	}
	got := fmt.Sprint(want)
	const pinned = "map[k0:c k1:c k2:a k3:c k4:b k5:a k6:b k7:b]"
	if got != pinned {
		t.Errorf("assignments = %s, want %s", got, pinned)
	}
}

func TestOwnerOfBalance(t *testing.T) {
	const keys = 100000
	ms := members(10, "eu-1")
	count := map[string]int{}
	for i := range keys {
		count[OwnerOf(ms, "eu-1", fmt.Sprintf("tcp://10.%d.%d.%d:443", i>>16, (i>>8)&255, i&255))]++
	}
	even := float64(keys) / float64(len(ms))
	for _, m := range ms {
		got := float64(count[m.ID])
		if dev := math.Abs(got-even) / even; dev > 0.10 {
			t.Errorf("%s owns %.0f keys, %.1f%% off the even %.0f; want within 10%%", m.ID, got, 100*dev, even)
		}
	}
}

func TestOwnerOfMinimalMovement(t *testing.T) {
	const keys = 100000
	ms := members(10, "eu-1")
	grown := append(append([]Member(nil), ms...), Member{ID: "probe-new", Location: "eu-1"})
	moved := 0
	for i := range keys {
		key := fmt.Sprintf("target-%d", i)
		before, after := OwnerOf(ms, "eu-1", key), OwnerOf(grown, "eu-1", key)
		if before == after {
			continue
		}
		moved++
		if after != "probe-new" {
			t.Fatalf("%s moved from %s to %s; only moves to the new member are allowed", key, before, after)
		}
	}
	share := float64(moved) / keys
	if want := 1.0 / 11; math.Abs(share-want) > 0.1*want {
		t.Errorf("adding an 11th member moved %.2f%% of keys, want about %.2f%%", 100*share, 100*want)
	}
	// A leaving member gives away only its own keys.
	for i := range keys {
		key := fmt.Sprintf("target-%d", i)
		before, after := OwnerOf(grown, "eu-1", key), OwnerOf(grown[1:], "eu-1", key)
		if before != after && before != grown[0].ID {
			t.Fatalf("%s moved from %s to %s when %s left", key, before, after, grown[0].ID)
		}
	}
}

// BenchmarkOwnerOf measures one assignment: OwnerOf (hashing the member IDs on every
// call) and Node.Owner (ID hashes kept with the view). Goal: at most 1 µs with 30
// members, so that 100,000 targets are reassigned in under 0.1 s after a membership
// change. Anchor, measured in the same run: Prometheus hashmod relabelling (an MD5 of
// the target modulo the number of shards; static, so a change of the shard count moves
// almost every target).
func BenchmarkOwnerOf(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("tcp://db-%d.prod.example.internal:5432", i)
	}
	report := func(b *testing.B, what string, k int) {
		ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		b.ReportMetric(ns, "ns/assignment")
		b.ReportMetric(ns*100000/1e9, "s/100k-targets")
		b.Logf("%s with %d members: %.0f ns per assignment, %.3f s for 100,000 targets; goal <= 1000 ns with 30 members (100k in < 0.1 s); anchor: BenchmarkOwnerOf/hashmod (Prometheus hashmod relabel, static) in the same run",
			what, k, ns, ns*100000/1e9)
	}
	for _, k := range []int{3, 30} {
		ms := members(k, "eu-1")
		b.Run(fmt.Sprintf("OwnerOf/members=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = OwnerOf(ms, "eu-1", keys[i&1023])
			}
			report(b, "OwnerOf", k)
		})
		b.Run(fmt.Sprintf("Owner/members=%d", k), func(b *testing.B) {
			n := &Node{view: ms, viewIDs: idHashes(ms)}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				_ = n.Owner("eu-1", keys[i&1023])
			}
			report(b, "Node.Owner", k)
		})
		b.Run(fmt.Sprintf("hashmod/shards=%d", k), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				sum := md5.Sum([]byte(keys[i&1023]))
				_ = binary.BigEndian.Uint64(sum[8:]) % uint64(k)
			}
			report(b, "hashmod anchor", k)
		})
	}
}
