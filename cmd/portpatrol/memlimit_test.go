package main

import (
	"math"
	"runtime/metrics"
	"testing"
)

func TestSoftLimit(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name        string
		live, other uint64
		want        int64
	}{
		{"small heap gets the minimum headroom", 10 * mb, 5 * mb, (10 + 32 + 5) * mb},
		{"large heap gets half of itself", 200 * mb, 20 * mb, (200 + 100 + 20) * mb},
		{"never overflows", math.MaxUint64 / 2, math.MaxUint64 / 2, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := softLimit(tt.live, tt.other); got != tt.want {
				t.Errorf("softLimit(%d, %d): got %d, want %d", tt.live, tt.other, got, tt.want)
			}
		})
	}
}

// The runtime reports every figure the limit reads, and the limit it gives holds the
// live heap with room to spare: a renamed metric would leave the limit unset.
func TestReadLimitFromRuntime(t *testing.T) {
	keep := make([][]byte, 64)
	for i := range keep {
		keep[i] = make([]byte, 1<<20)
	}
	s := make([]metrics.Sample, len(memorySamples))
	for i, name := range memorySamples {
		s[i].Name = name
	}
	got, ok := readLimit(s)
	if !ok {
		t.Fatalf("readLimit: the runtime did not report %v", memorySamples)
	}
	live := s[0].Value.Uint64()
	if got < int64(live)+minHeadroom {
		t.Errorf("readLimit: got %d, want at least the live heap %d + %d", got, live, minHeadroom)
	}
	_ = keep[len(keep)-1][0]
}
