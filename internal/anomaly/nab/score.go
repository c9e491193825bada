// Package nab scores anomaly detections the way the Numenta Anomaly Benchmark does: labelled
// windows around each anomaly, a probationary period at the start of each file, a scaled
// sigmoid that rewards early detection inside a window and charges detections outside one,
// one threshold optimised per profile over the whole corpus, and normalisation between the
// null detector (0) and the perfect detector (100).
//
// It also reads NAB's files: the data CSVs (timestamp,value) with the file and line of any
// bad row, and labels/combined_windows.json and combined_labels.json.
package nab

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Profile is one of NAB's application profiles: the weights of a true positive, a false
// positive and a false negative.
type Profile struct {
	Name       string
	TP, FP, FN float64
}

// Profiles returns NAB's three profiles as config/profiles.json defines them.
func Profiles() []Profile {
	return []Profile{
		{Name: "standard", TP: 1, FP: 0.11, FN: 1},
		{Name: "reward_low_FP_rate", TP: 1, FP: 0.22, FN: 1},
		{Name: "reward_low_FN_rate", TP: 1, FP: 0.11, FN: 2},
	}
}

// ProbationPercent is the share of each file NAB leaves unscored while a detector learns.
const ProbationPercent = 0.15

// Window is a labelled anomaly window, both ends included.
type Window struct {
	Start, End time.Time
}

// File is one scored data file: its rows' timestamps, the detector's scores for them, and
// the file's windows.
type File struct {
	Name    string // relative path, e.g. "realKnownCause/nyc_taxi.csv"
	Times   []time.Time
	Scores  []float64
	Windows []Window
}

// ProbationLength returns the number of leading rows NAB does not score in a file of n rows.
func ProbationLength(n int) int {
	return int(math.Min(math.Floor(ProbationPercent*float64(n)), ProbationPercent*5000))
}

// scaledSigmoid is NAB's reward curve: about 0.987 at the left edge of a window (-1), 0 at
// its right edge, and down to -1 for detections well after it.
func scaledSigmoid(pos float64) float64 {
	if pos > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*pos)) - 1
}

// point is one scorable row.
type point struct {
	score  float64
	weight float64 // the row's weighted reward if it were a detection
	window int     // index into the corpus's windows, or -1 outside any window
}

// rows computes the weighted reward of every scorable row of f under p. windowBase numbers
// f's windows in the corpus; the second result is the number of f's windows that have at
// least one scorable row.
func rows(f File, p Profile, windowBase int) ([]point, []bool, error) {
	if len(f.Times) != len(f.Scores) {
		return nil, nil, fmt.Errorf("%s: %d timestamps but %d scores", f.Name, len(f.Times), len(f.Scores))
	}
	type span struct{ lo, hi int }
	spans := make([]span, len(f.Windows))
	for k, w := range f.Windows {
		lo, hi := -1, -1
		for i, t := range f.Times {
			// The first row at each end, as NAB's list.index finds it.
			if lo < 0 && t.Equal(w.Start) {
				lo = i
			}
			if hi < 0 && t.Equal(w.End) {
				hi = i
			}
		}
		if lo < 0 || hi < lo {
			return nil, nil, fmt.Errorf("%s: window %s..%s does not start and end on rows of the file",
				f.Name, w.Start.Format(TimeLayout), w.End.Format(TimeLayout))
		}
		if k > 0 && lo <= spans[k-1].hi {
			return nil, nil, fmt.Errorf("%s: window %s overlaps the one before", f.Name, w.Start.Format(TimeLayout))
		}
		spans[k] = span{lo, hi}
	}
	maxTP := scaledSigmoid(-1)
	prob := ProbationLength(len(f.Times))
	scored := make([]bool, len(f.Windows))
	out := make([]point, 0, len(f.Times)-prob)
	cur, prev := -1, -1 // window we are in, last window we left
	for i := range f.Times {
		if cur < 0 && prev+1 < len(spans) && spans[prev+1].lo == i {
			cur = prev + 1
		}
		var w float64
		switch {
		case cur >= 0:
			width := float64(spans[cur].hi - spans[cur].lo + 1)
			w = scaledSigmoid(-float64(spans[cur].hi-i+1)/width) * p.TP / maxTP
		case prev < 0:
			w = -p.FP
		default:
			width := float64(spans[prev].hi - spans[prev].lo + 1)
			w = scaledSigmoid(math.Abs(float64(spans[prev].hi-i))/(width-1)) * p.FP
		}
		if i >= prob {
			win := -1
			if cur >= 0 {
				win = windowBase + cur
				scored[cur] = true
			}
			out = append(out, point{score: f.Scores[i], weight: w, window: win})
		}
		if cur >= 0 && spans[cur].hi == i {
			prev, cur = cur, -1
		}
	}
	return out, scored, nil
}

// Counts are the row counts at a threshold, as NAB reports them.
type Counts struct {
	TP, TN, FP, FN int
}

// Result is a detector's score on a corpus under one profile.
type Result struct {
	Profile    Profile
	Threshold  float64 // the optimised threshold: a row is a detection when its score >= Threshold
	Raw        float64 // the summed weighted reward at Threshold
	Null       float64 // the null detector's raw score
	Perfect    float64 // the perfect detector's raw score
	Normalized float64 // 100 * (Raw - Null) / (Perfect - Null)
	Counts     Counts
	Files      []FileResult
}

// FileResult is one file's share of a Result at the optimised threshold.
type FileResult struct {
	Name   string
	Raw    float64
	Counts Counts
}

// sweep is NAB's threshold sweep: it walks the rows from the highest score down and
// returns, for every distinct score, the raw score when that score is the threshold. The
// first entry (threshold 1.1) detects nothing.
type sweepEntry struct {
	threshold, score float64
	counts           Counts
}

func sweep(pts []point, windows []bool, p Profile) []sweepEntry {
	sorted := slices.Clone(pts)
	slices.SortStableFunc(sorted, func(a, b point) int { return cmp.Compare(b.score, a.score) })
	best := make([]float64, len(windows))
	for k, ok := range windows {
		best[k] = math.NaN()
		if ok {
			best[k] = -p.FN
		}
	}
	var c Counts
	for _, pt := range sorted {
		if pt.window >= 0 {
			c.FN++
		} else {
			c.TN++
		}
	}
	fp := 0.0
	total := func() float64 {
		s := fp
		for _, v := range best {
			if !math.IsNaN(v) {
				s += v
			}
		}
		return s
	}
	var out []sweepEntry
	thr := 1.1
	for _, pt := range sorted {
		if pt.score != thr {
			out = append(out, sweepEntry{thr, total(), c})
			thr = pt.score
		}
		if pt.window >= 0 {
			c.TP++
			c.FN--
			best[pt.window] = math.Max(best[pt.window], pt.weight)
		} else {
			c.FP++
			c.TN--
			fp += pt.weight
		}
	}
	return append(out, sweepEntry{thr, total(), c})
}

// Score scores files under p: it finds the threshold that maximises the corpus's raw score
// (NAB's optimizer), scores each file at that threshold, and normalises the total between
// the null detector (a constant score of 0.5) and the perfect one. totalWindows is the
// number of windows in the label file (NAB's count of possible true positives).
func Score(files []File, p Profile, totalWindows int) (Result, error) {
	best, err := optimise(files, p, nil)
	if err != nil {
		return Result{Profile: p}, err
	}
	return ScoreAt(files, p, totalWindows, best.threshold)
}

// ScoreAt is Score at a given threshold instead of the optimised one (NAB's scorer run
// with the thresholds of its config/thresholds.json).
func ScoreAt(files []File, p Profile, totalWindows int, threshold float64) (Result, error) {
	res := Result{Profile: p, Perfect: float64(totalWindows) * p.TP}
	null, err := optimise(files, p, func(float64) float64 { return 0.5 })
	if err != nil {
		return res, err
	}
	res.Threshold, res.Null = threshold, null.score
	for _, f := range files {
		pts, windows, err := rows(f, p, 0)
		if err != nil {
			return res, err
		}
		fr := FileResult{Name: f.Name}
		bw := make([]float64, len(windows))
		for k := range bw {
			bw[k] = math.NaN()
		}
		for k, ok := range windows {
			if ok {
				bw[k] = -p.FN
			}
		}
		for _, pt := range pts {
			hit := pt.score >= res.Threshold
			switch {
			case pt.window >= 0 && hit:
				fr.Counts.TP++
				bw[pt.window] = math.Max(bw[pt.window], pt.weight)
			case pt.window >= 0:
				fr.Counts.FN++
			case hit:
				fr.Counts.FP++
				fr.Raw += pt.weight
			default:
				fr.Counts.TN++
			}
		}
		for _, v := range bw {
			if !math.IsNaN(v) {
				fr.Raw += v
			}
		}
		res.Raw += fr.Raw
		res.Counts.TP += fr.Counts.TP
		res.Counts.TN += fr.Counts.TN
		res.Counts.FP += fr.Counts.FP
		res.Counts.FN += fr.Counts.FN
		res.Files = append(res.Files, fr)
	}
	if res.Perfect != res.Null {
		res.Normalized = 100 * (res.Raw - res.Null) / (res.Perfect - res.Null)
	}
	return res, nil
}

// optimise pools every file's rows and returns the sweep entry with the highest score
// (the highest threshold among equals). With remap, scores are replaced first.
func optimise(files []File, p Profile, remap func(float64) float64) (sweepEntry, error) {
	var all []point
	var windows []bool
	for _, f := range files {
		pts, w, err := rows(f, p, len(windows))
		if err != nil {
			return sweepEntry{}, err
		}
		if remap != nil {
			for i := range pts {
				pts[i].score = remap(pts[i].score)
			}
		}
		all = append(all, pts...)
		windows = append(windows, w...)
	}
	entries := sweep(all, windows, p)
	best := entries[0]
	for _, e := range entries[1:] {
		if e.score > best.score {
			best = e
		}
	}
	return best, nil
}
