package nab

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// synthetic returns a 1000-row file at 5-minute steps with one window on rows 500..599.
func synthetic(scores func(i int) float64) File {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	f := File{Name: "synthetic.csv"}
	for i := range 1000 {
		f.Times = append(f.Times, t0.Add(time.Duration(i)*5*time.Minute))
		f.Scores = append(f.Scores, scores(i))
	}
	f.Windows = []Window{{f.Times[500], f.Times[599]}}
	return f
}

func TestScoreNullAndPerfect(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.Name, func(t *testing.T) {
			null, err := Score([]File{synthetic(func(int) float64 { return 0 })}, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			if null.Normalized != 0 || null.Raw != -p.FN {
				t.Errorf("detector that flags nothing: got %v (raw %v), want 0 (raw %v)", null.Normalized, null.Raw, -p.FN)
			}
			perfect, err := Score([]File{synthetic(func(i int) float64 { return b2f(i == 500) })}, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(perfect.Normalized-100) > 1e-9 {
				t.Errorf("detector that flags the first row of the window: got %v, want 100", perfect.Normalized)
			}
			all, err := Score([]File{synthetic(func(int) float64 { return 1 })}, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			if all.Normalized != 0 || all.Threshold != 1.1 {
				t.Errorf("detector that flags everything: got %v at threshold %v, want 0 at 1.1 (flagging nothing is better)", all.Normalized, all.Threshold)
			}
		})
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func TestScoreRewardCurve(t *testing.T) {
	p := Profiles()[0]
	cases := []struct {
		name string
		hits []int
		want float64 // raw score
	}{
		// Last row of the window: position -1/100.
		{"late in window", []int{599}, (2/(1+math.Exp(-0.05)) - 1) / (2/(1+math.Exp(-5.0)) - 1)},
		// Before any window: a full false positive, plus the missed window.
		{"false positive before", []int{200}, -0.11 - 1},
		// In the probationary period (first 150 rows): not scored.
		{"probationary", []int{100}, -1},
		// 51 rows after a 100-row window: position 51/99.
		{"false positive after", []int{500, 650}, 1 + 0.11*(2/(1+math.Exp(5*51.0/99))-1)},
		// More than 3 widths after: -1 weighted.
		{"far after", []int{500, 950}, 1 - 0.11},
		// Two detections in one window count once, the earlier.
		{"twice in window", []int{550, 520}, (2/(1+math.Exp(-5*80.0/100)) - 1) / (2/(1+math.Exp(-5.0)) - 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := synthetic(func(i int) float64 {
				for _, h := range c.hits {
					if i == h {
						return 0.9
					}
				}
				return 0.1
			})
			r, err := Score([]File{f}, p, 1)
			if err != nil {
				t.Fatal(err)
			}
			// The optimiser may prefer flagging nothing; score at 0.9 explicitly.
			pts, w, _ := rows(f, p, 0)
			got := -1.0
			for _, e := range sweep(pts, w, p) {
				if e.threshold == 0.9 {
					got = e.score
				}
			}
			if math.Abs(got-c.want) > 1e-12 {
				t.Errorf("raw score at 0.9: got %v, want %v", got, c.want)
			}
			if r.Raw < -1-1e-12 {
				t.Errorf("optimised raw %v is below flagging nothing (-1)", r.Raw)
			}
		})
	}
}

func TestProbationLength(t *testing.T) {
	for _, c := range []struct{ n, want int }{{1000, 150}, {4032, 604}, {22695, 750}} {
		if got := ProbationLength(c.n); got != c.want {
			t.Errorf("ProbationLength(%d): got %d, want %d", c.n, got, c.want)
		}
	}
}

func TestReadSeriesErrors(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"header", "time,val\n", "f.csv:1: header"},
		{"fields", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00\n", "f.csv:3: row"},
		{"timestamp", "timestamp,value\nyesterday,1\n", "f.csv:2: timestamp \"yesterday\""},
		{"value", "timestamp,value\n2024-01-01 00:00:00,1\n\n2024-01-01 00:05:00,abc\n", "f.csv:4: value \"abc\" is not a finite number"},
		{"nan", "timestamp,value\n2024-01-01 00:00:00,NaN\n", "f.csv:2: value \"NaN\""},
		{"repeat", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:00,2\n", "f.csv:3: timestamp 2024-01-01 00:00:00 repeats line 2"},
		{"backwards", "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:00:00,2\n", "f.csv:3: timestamp 2024-01-01 00:00:00 goes back before line 2"},
		{"empty", "", "f.csv:1: empty file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ReadSeries(strings.NewReader(c.in), "f.csv", ReadOptions{})
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("got %v, want an error starting %q", err, c.want)
			}
		})
	}
	rows, err := ReadSeries(strings.NewReader("timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:05:00,2\n2024-01-01 00:10:00,3\n"), "f.csv", ReadOptions{KeepDisorder: true})
	if err != nil || len(rows) != 3 || rows[1].Skip == "" || rows[2].Skip != "" {
		t.Errorf("KeepDisorder: got %+v, %v; want 3 rows, the second marked Skip", rows, err)
	}
}

// nabDir is NAB's checkout (data/ and labels/); the corpus tests need it.
func nabDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("NAB_DIR")
	if dir == "" {
		// The corpus sits beside the checkout, in shared/data/nab of some parent.
		dir = filepath.Join("shared", "data", "nab")
		for up := "."; ; up = filepath.Join(up, "..") {
			cand := filepath.Join(up, "shared", "data", "nab")
			if _, err := os.Stat(filepath.Join(cand, "labels")); err == nil {
				dir = cand
				break
			}
			if abs, _ := filepath.Abs(up); abs == filepath.Dir(abs) {
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err != nil {
		t.Skipf("NAB corpus not found at %s (set NAB_DIR to a checkout of github.com/numenta/NAB): %v", dir, err)
	}
	return dir
}

// TestCorpusNullAndPerfect scores a detector that flags nothing and one that flags the
// first scorable row of every window on the real corpus: 0 and (nearly) 100.
func TestCorpusNullAndPerfect(t *testing.T) {
	c, err := OpenCorpus(nabDir(t))
	if err != nil {
		t.Fatal(err)
	}
	null := func(_ string, rows []Row) ([]float64, []bool, error) {
		return make([]float64, len(rows)), make([]bool, len(rows)), nil
	}
	rep, err := Evaluate(c, "null", null, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Normalized != 0 {
			t.Errorf("%s: null detector scores %v, want 0", r.Profile.Name, r.Normalized)
		}
	}
	perfect := func(path string, rows []Row) ([]float64, []bool, error) {
		name, _ := filepath.Rel(filepath.Join(c.Dir, "data"), path)
		s, a := make([]float64, len(rows)), make([]bool, len(rows))
		prob := ProbationLength(len(rows))
		for _, w := range c.Windows[filepath.ToSlash(name)] {
			for i := prob; i < len(rows); i++ {
				if !rows[i].Time.Before(w.Start) {
					s[i], a[i] = 1, true
					break
				}
			}
		}
		return s, a, nil
	}
	rep, err = Evaluate(c, "perfect", perfect, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		// Windows that begin inside the probationary period cannot earn a full point.
		if r.Normalized < 99 || r.Normalized > 100 {
			t.Errorf("%s: perfect detector scores %v, want 99..100", r.Profile.Name, r.Normalized)
		}
		t.Logf("%s: perfect detector %.3f", r.Profile.Name, r.Normalized)
	}
	if rep.Events.Recall() != 1 || rep.Events.Precision() != 1 {
		t.Errorf("perfect detector: recall %v precision %v, want 1 and 1", rep.Events.Recall(), rep.Events.Precision())
	}
}

// TestPublishedResults scores the results NAB publishes for other detectors at the
// thresholds NAB used (config/thresholds.json) and compares with NAB's own
// results/final_results.json. NAB_RESULTS is the results/ directory of a checkout of
// github.com/numenta/NAB.
func TestPublishedResults(t *testing.T) {
	dir := nabDir(t)
	res := os.Getenv("NAB_RESULTS")
	if res == "" {
		t.Skip("NAB_RESULTS not set (the results/ directory of a github.com/numenta/NAB checkout)")
	}
	var final map[string]map[string]float64
	if err := readJSON(filepath.Join(res, "final_results.json"), &final); err != nil {
		t.Fatal(err)
	}
	var thresholds map[string]map[string]struct{ Threshold float64 }
	if err := readJSON(filepath.Join(res, "..", "config", "thresholds.json"), &thresholds); err != nil {
		t.Fatal(err)
	}
	c, err := OpenCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, det := range []string{"contextOSE", "windowedGaussian", "ARTime", "numenta"} {
		t.Run(det, func(t *testing.T) {
			rep, err := Evaluate(c, det, ReadResults(filepath.Join(res, det), dir, 0.5), "")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Results {
				at, err := ScoreAt(rep.Files, r.Profile, c.TotalWindows(), thresholds[det][r.Profile.Name].Threshold)
				if err != nil {
					t.Fatal(err)
				}
				want := final[det][r.Profile.Name]
				if math.Abs(at.Normalized-want) > 1e-6 {
					t.Errorf("%s at NAB's threshold: got %.8f, want NAB's %.8f", r.Profile.Name, at.Normalized, want)
				}
				if r.Normalized < want-1e-6 {
					t.Errorf("%s optimised: got %.4f, below NAB's %.4f", r.Profile.Name, r.Normalized, want)
				}
			}
		})
	}
}

// FuzzReadSeries: any input is rows in increasing time order or a *ParseError naming a
// line; never a panic.
func FuzzReadSeries(f *testing.F) {
	f.Add("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,2.5\n")
	f.Add("timestamp,value\n1700000000,1\n2024-01-01T00:00:00Z,x\n")
	f.Fuzz(func(t *testing.T, in string) {
		rows, err := ReadSeries(strings.NewReader(in), "f.csv", ReadOptions{})
		if err != nil {
			var pe *ParseError
			if errors.As(err, &pe) && pe.Line < 1 {
				t.Fatalf("error without a line: %v", err)
			}
			return
		}
		for i := 1; i < len(rows); i++ {
			if !rows[i].Time.After(rows[i-1].Time) {
				t.Fatalf("rows %d and %d out of order", i-1, i)
			}
		}
	})
}
