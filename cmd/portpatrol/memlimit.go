package main

import (
	"context"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// With GOGC at 100 the collector lets the heap grow to twice what the last collection
// found live before it collects again, and the scavenger hands freed memory back to
// the system over minutes: at 100,000 targets the resident size was 2–2.5× the live
// heap. serve instead keeps a soft memory limit derived from the heap it actually
// needs: the live heap, plus half of it (at least minHeadroom) to collect into, plus
// the runtime's own memory (stacks, metadata). The limit follows the live heap, so it
// is never below what the daemon holds and the collector is never made to run without
// pause; the runtime also returns freed memory to stay under it. GOGC and GOMEMLIMIT,
// when set, are the operator's choice and turn this off.
const (
	// headroomDiv divides the live heap into the headroom: 2 is half of it, as GOGC=50.
	headroomDiv = 2
	// minHeadroom keeps small daemons from collecting at every allocation burst.
	minHeadroom = 32 << 20
	// limitEvery is how often the limit follows the live heap.
	limitEvery = 5 * time.Second
)

// memorySamples are the runtime/metrics read for the limit.
var memorySamples = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/released:bytes",
}

// softLimit is the memory limit for a live heap of live bytes with other bytes of the
// runtime's own memory beside the heap.
func softLimit(live, other uint64) int64 {
	n := live
	for _, add := range [...]uint64{max(live/headroomDiv, minHeadroom), other} {
		if add > math.MaxInt64 || n > math.MaxInt64-add {
			return math.MaxInt64
		}
		n += add
	}
	return int64(n)
}

// readLimit reads the runtime's figures and returns the limit they call for, or false
// when the runtime does not report them.
func readLimit(s []metrics.Sample) (int64, bool) {
	metrics.Read(s)
	var v [6]uint64
	for i := range s {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0, false
		}
		v[i] = s[i].Value.Uint64()
	}
	live, total := v[0], v[1]
	heap := v[2] + v[3] + v[4] + v[5]
	if live == 0 || heap > total {
		return 0, false
	}
	return softLimit(live, total-heap), true
}

// followLiveHeap keeps the soft memory limit at softLimit of the live heap until ctx
// is done, unless GOGC or GOMEMLIMIT is set.
func followLiveHeap(ctx context.Context, logger *slog.Logger) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		logger.Debug("GOGC or GOMEMLIMIT set; the memory limit is left to them")
		return
	}
	s := make([]metrics.Sample, len(memorySamples))
	for i, name := range memorySamples {
		s[i].Name = name
	}
	set := func() {
		if n, ok := readLimit(s); ok {
			debug.SetMemoryLimit(n)
		}
	}
	set()
	go func() {
		t := time.NewTicker(limitEvery)
		defer t.Stop()
		defer debug.SetMemoryLimit(math.MaxInt64)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				set()
			}
		}
	}()
}
