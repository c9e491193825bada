package schedule

import "time"

// lagBounds are the upper bounds of the lag histogram's buckets.
var lagBounds = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// Stats are the scheduler's counters, as Scheduler.Stats reports them.
type Stats struct {
	Jobs    int // configured jobs
	Running int // runs in flight, including their OnResult call
	Queued  int // due runs waiting for a global or per-host slot
	// Runs counts completed runs whose results were recorded; Confirms counts the
	// fast confirmations among them.
	Runs, Confirms uint64
	// Missed counts interval slots skipped because a job was still queued or running
	// a whole interval after its slot.
	Missed uint64
	// Lag is the distribution of Event.Lag over recorded runs.
	Lag Histogram
}

// Histogram is a cumulative histogram in the Prometheus style.
type Histogram struct {
	// Bounds are the buckets' upper bounds, ascending; Counts[i] is the number of
	// observations ≤ Bounds[i]. Count includes observations above the last bound.
	Bounds []time.Duration
	Counts []uint64
	Count  uint64
	Sum    time.Duration
}

// lagHist accumulates the lag histogram; it is guarded by the scheduler's mutex.
type lagHist struct {
	counts [len(lagBounds) + 1]uint64 // per bucket, not cumulative; the last is +Inf
	sum    time.Duration
}

func (h *lagHist) observe(d time.Duration) {
	i := 0
	for i < len(lagBounds) && d > lagBounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += d
}

func (h *lagHist) export() Histogram {
	out := Histogram{
		Bounds: append([]time.Duration(nil), lagBounds[:]...),
		Counts: make([]uint64, len(lagBounds)),
		Sum:    h.sum,
	}
	var c uint64
	for i := range lagBounds {
		c += h.counts[i]
		out.Counts[i] = c
	}
	out.Count = c + h.counts[len(lagBounds)]
	return out
}
