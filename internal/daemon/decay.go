package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/portpatrol/portpatrol/internal/alert"
	"github.com/portpatrol/portpatrol/internal/anomaly"
	"github.com/portpatrol/portpatrol/internal/schedule"
	"github.com/portpatrol/portpatrol/internal/store"
)

// Performance decay: a slow rise of a target's latency over weeks, which the detector's
// baseline follows (a level that holds for 6 hours becomes the new normal) and so never
// pages. Every window's p95 latency goes into the day's typical p95 (their geometric
// mean); once two weeks of days are kept, the median day of the last 7 is compared with
// the median day of the 7 before. A rise of decayFactor or more (and at least
// decayMinRise) is one P3 alert per target, rule "anomaly:decay"; it clears when the
// ratio falls under decayClear, which happens at the latest a week after the rise ends,
// once the worse level is last week's too.
const (
	decayMetric  = "decay"
	decayFactor  = 1.5
	decayClear   = 1.3
	decayMinRise = 2.0 // ms: loopback's 0.2 ms doubling to 0.4 ms is no decay worth a page
	decayDays    = 14
	// decayMinDays is how many days of each week must have data.
	decayMinDays = 5
	decayPrefix  = "decay "
)

// decay is what a target keeps for its week-over-week comparison: about 140 bytes.
type decay struct {
	day   int32   // the day being summed (unix days)
	sum   float64 // sum of ln(window p95 in ms) of the day
	n     int32
	days  [decayDays]int32 // ring of the last days' indexes (0: empty)
	p95   [decayDays]float32
	head  int8
	sent  bool
	dirty bool
	// ratio, this and last are the latest comparison, for the alert's words.
	ratio, this, last float64
}

// decayPoint adds a window's p95 latency (ms) ending at end. It reports whether a day
// was completed, when the comparison should be made again.
func (dc *decay) point(end time.Time, p95 float64) bool {
	if p95 <= 0 || math.IsNaN(p95) || math.IsInf(p95, 0) {
		return false
	}
	day := int32(end.Add(-time.Nanosecond).Unix() / 86400) // a window ending at midnight is the day before's
	done := false
	if day != dc.day {
		if dc.n > 0 && day > dc.day {
			dc.days[dc.head] = dc.day
			dc.p95[dc.head] = float32(math.Exp(dc.sum / float64(dc.n)))
			dc.head = (dc.head + 1) % decayDays
			done = true
		}
		if day < dc.day {
			return false // out of order
		}
		dc.day, dc.sum, dc.n = day, 0, 0
	}
	dc.sum += math.Log(p95)
	dc.n++
	dc.dirty = true
	return done
}

// compare works out the week-over-week ratio of the days kept before today; ok is
// false without decayMinDays days in each week.
func (dc *decay) compare() (ratio, this, last float64, ok bool) {
	var week, before []float64
	for i := range decayDays {
		d := dc.days[i]
		if d == 0 {
			continue
		}
		switch age := dc.day - d; {
		case age >= 1 && age <= 7:
			week = append(week, float64(dc.p95[i]))
		case age >= 8 && age <= 14:
			before = append(before, float64(dc.p95[i]))
		}
	}
	if len(week) < decayMinDays || len(before) < decayMinDays {
		return 0, 0, 0, false
	}
	this, last = anomaly.Median(week), anomaly.Median(before)
	return this / last, this, last, true
}

// decayWindow feeds a window's p95 to the target's decay and, when a day ended, raises
// or clears its decay alert. The caller holds t.mu.
func (t *anomTarget) decayWindow(ctx context.Context, f *anomalyFeeder, job *schedule.Job, end time.Time, p95 float64) {
	if t.dc == nil {
		t.dc = &decay{}
	}
	dc := t.dc
	if !dc.point(end, p95) {
		return
	}
	ratio, this, last, ok := dc.compare()
	dc.ratio, dc.this, dc.last = ratio, this, last
	want := dc.sent
	switch {
	case !ok:
		want = false
	case ratio >= decayFactor && this-last >= decayMinRise:
		want = true
	case ratio < decayClear:
		want = false
	}
	if want == dc.sent {
		return
	}
	a := alert.Anomaly{Target: t.id, Metric: decayMetric, Active: want, Severity: "P3", At: end, Labels: anomalyLabels(job)}
	if want {
		a.Summary = fmt.Sprintf("%s: p95 latency %.2g× last week's (%.4g ms, was %.4g ms)", t.id, ratio, this, last)
		a.Why = fmt.Sprintf("Performance decay: the median day's p95 latency of the last 7 days is %.4g ms, "+
			"%.2g× the %.4g ms of the 7 days before (a rise of %.2g× and %.0f ms pages). "+
			"A slow rise becomes each day's new normal for the learned baseline; this compares weeks instead.",
			this, ratio, last, decayFactor, decayMinRise)
	} else {
		a.Why = fmt.Sprintf("p95 latency %.2g× last week's: under %.2g×, or too few days to compare", ratio, decayClear)
	}
	err := f.raise(ctx, a)
	if errors.Is(err, errNotLeading) {
		return
	}
	if err != nil && ctx.Err() == nil {
		f.logger.Warn("decay alert", "target", t.id, "err", err)
	}
	dc.sent = want
}

// decayMagic starts a decay's stored state.
const decayMagic = "ppd1"

func (dc *decay) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 4+8+8+4+1+1+decayDays*8)
	b = append(b, decayMagic...)
	b = binary.LittleEndian.AppendUint32(b, uint32(dc.day))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(dc.sum))
	b = binary.LittleEndian.AppendUint32(b, uint32(dc.n))
	b = append(b, byte(dc.head))
	for i := range decayDays {
		b = binary.LittleEndian.AppendUint32(b, uint32(dc.days[i]))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(dc.p95[i]))
	}
	return b, nil
}

var errDecayState = errors.New("decay: bad state")

func (dc *decay) UnmarshalBinary(b []byte) error {
	if len(b) != 4+4+8+4+1+decayDays*8 || string(b[:4]) != decayMagic {
		return errDecayState
	}
	var nd decay
	p := b[4:]
	nd.day = int32(binary.LittleEndian.Uint32(p))
	nd.sum = math.Float64frombits(binary.LittleEndian.Uint64(p[4:]))
	nd.n = int32(binary.LittleEndian.Uint32(p[12:]))
	nd.head = int8(p[16])
	p = p[17:]
	if nd.n < 0 || nd.head < 0 || nd.head >= decayDays || math.IsNaN(nd.sum) || math.IsInf(nd.sum, 0) {
		return errDecayState
	}
	for i := range decayDays {
		nd.days[i] = int32(binary.LittleEndian.Uint32(p))
		v := math.Float32frombits(binary.LittleEndian.Uint32(p[4:]))
		if nd.days[i] < 0 || nd.days[i] > nd.day || v < 0 || math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return errDecayState
		}
		nd.p95[i] = v
		p = p[8:]
	}
	*dc = nd
	return nil
}

// restoreDecay loads a stored decay ("decay <target>"); a state it cannot use is logged
// and skipped.
func (f *anomalyFeeder) restoreDecay(row store.AnomalyState) bool {
	target := strings.TrimPrefix(row.Key, decayPrefix)
	dc := &decay{}
	if target == "" {
		f.logger.Warn("anomaly state with an unknown key skipped", "key", row.Key)
		return false
	}
	if err := dc.UnmarshalBinary(row.State); err != nil {
		f.logger.Warn("decay state skipped: the comparison starts again", "key", row.Key, "err", err)
		return false
	}
	t := f.target(target)
	t.mu.Lock()
	if t.dc != nil {
		dc.sent = t.dc.sent
	}
	t.dc = dc
	t.mu.Unlock()
	return true
}

// decayOpen records that target's decay alert is open, found so at start.
func (f *anomalyFeeder) decayOpen(target string) {
	t := f.target(target)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dc == nil {
		t.dc = &decay{}
	}
	t.dc.sent = true
}
