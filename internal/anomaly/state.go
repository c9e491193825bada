package anomaly

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// stateVersion is the first byte of a marshalled state; a change of layout bumps it.
const stateVersion = 1

// MarshalBinary encodes the learned state (not the Config) compactly: about 12 KiB with
// 5-minute buckets, most of it the weekly profile. Restore it with UnmarshalBinary on a
// Detector made by New with the same Config.Bucket.
func (d *Detector) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 128+8*nPred+8*bins+5*(len(d.dVal)+len(d.wVal)))
	b = append(b, stateVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(d.dVal)))
	for _, v := range []int64{d.first, d.last, d.quiet} {
		b = binary.LittleEndian.AppendUint64(b, uint64(v))
	}
	for _, v := range []uint32{d.n, d.run, d.maxRun, uint32(d.adopt)} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	fs := []float64{d.lastV, d.ival, d.level, d.fast, d.drift, d.spread, d.absV, d.histN, d.inc, d.surp.maxS, d.spikes.maxS}
	fs = append(fs, d.err[:]...)
	for _, v := range fs {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	for _, dv := range [][]float32{d.surp.hist[:], d.spikes.hist[:], d.dVal, d.wVal} {
		for _, v := range dv {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	}
	b = append(b, d.dN...)
	b = append(b, d.wN...)
	return b, nil
}

// ErrState is returned by UnmarshalBinary for a state it cannot use.
var ErrState = errors.New("anomaly: bad detector state")

// UnmarshalBinary restores a state written by MarshalBinary. The Detector must come from
// New with the same Config.Bucket; on error it is left unchanged.
func (d *Detector) UnmarshalBinary(b []byte) error {
	if len(b) < 5 || b[0] != stateVersion {
		return fmt.Errorf("%w: unknown version or truncated", ErrState)
	}
	nd := int(binary.LittleEndian.Uint32(b[1:]))
	if nd != len(d.dVal) {
		return fmt.Errorf("%w: %d buckets a day, this detector has %d (Config.Bucket differs)", ErrState, nd, len(d.dVal))
	}
	want := 5 + 3*8 + 4*4 + (11+nPred)*8 + 2*4*bins + 4*8*nd + 8*nd
	if len(b) != want {
		return fmt.Errorf("%w: %d bytes, want %d", ErrState, len(b), want)
	}
	n := *d
	n.dVal, n.wVal = make([]float32, nd), make([]float32, 7*nd)
	n.dN, n.wN = make([]uint8, nd), make([]uint8, 7*nd)
	p := b[5:]
	u64 := func() uint64 { v := binary.LittleEndian.Uint64(p); p = p[8:]; return v }
	u32 := func() uint32 { v := binary.LittleEndian.Uint32(p); p = p[4:]; return v }
	f64 := func() float64 { return math.Float64frombits(u64()) }
	n.first, n.last, n.quiet = int64(u64()), int64(u64()), int64(u64())
	n.n, n.run, n.maxRun, n.adopt = u32(), u32(), u32(), int32(u32())
	for _, f := range []*float64{&n.lastV, &n.ival, &n.level, &n.fast, &n.drift, &n.spread, &n.absV, &n.histN, &n.inc, &n.surp.maxS, &n.spikes.maxS} {
		*f = f64()
	}
	for k := range n.err {
		n.err[k] = f64()
	}
	for _, dv := range [][]float32{n.surp.hist[:], n.spikes.hist[:], n.dVal, n.wVal} {
		for k := range dv {
			dv[k] = math.Float32frombits(u32())
		}
	}
	p = p[copy(n.dN, p):]
	copy(n.wN, p)
	for _, f := range []float64{n.lastV, n.ival, n.level, n.fast, n.drift, n.spread, n.absV, n.histN, n.inc, n.surp.maxS, n.spikes.maxS} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: a statistic is not finite", ErrState)
		}
	}
	for _, f := range n.err {
		if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return fmt.Errorf("%w: an error statistic is not finite", ErrState)
		}
	}
	for _, dv := range [][]float32{n.surp.hist[:], n.spikes.hist[:], n.dVal, n.wVal} {
		for _, f := range dv {
			if f != f || math.IsInf(float64(f), 0) {
				return fmt.Errorf("%w: a profile or count is not finite", ErrState)
			}
		}
	}
	sum := 0.0
	for _, h := range [][]float32{n.surp.hist[:], n.spikes.hist[:]} {
		for _, c := range h {
			if c < 0 {
				return fmt.Errorf("%w: a negative count", ErrState)
			}
			sum += float64(c)
		}
	}
	if sum > 2*n.histN*(1+1e-6)+1 {
		return fmt.Errorf("%w: counts exceed their total", ErrState)
	}
	if n.inc <= 0 || n.histN < 0 || n.ival < 0 {
		return fmt.Errorf("%w: counts out of range", ErrState)
	}
	*d = n
	return nil
}
