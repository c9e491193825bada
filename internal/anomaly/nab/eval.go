package nab

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Detect scores the rows of one file: one score in [0,1] and one alert decision per row.
// It gets a fresh detector for every file.
type Detect func(path string, rows []Row) (scores []float64, alerts []bool, err error)

// Events are event-level figures at the detector's own alert decisions (not NAB's
// optimised thresholds): an event is a labelled window that has at least one scorable row.
type Events struct {
	Windows     int             // windows with a scorable row
	Detected    int             // windows with an alert inside
	Alerts      int             // alerts after the probationary period
	TrueAlerts  int             // alerts inside a window
	Delays      []time.Duration // first alert in a detected window minus its labelled anomaly
	MedianDelay time.Duration
}

// Precision is the share of alerts that fell inside a window.
func (e Events) Precision() float64 { return ratio(e.TrueAlerts, e.Alerts) }

// Recall is the share of windows with an alert.
func (e Events) Recall() float64 { return ratio(e.Detected, e.Windows) }

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Report is the outcome of Evaluate.
type Report struct {
	Results []Result // one per profile, in Profiles() order
	Files   []File
	Events  Events
	Points  int
}

// Evaluate runs detect over every file of the corpus, writes NAB's results layout under
// out (out/<detector>/<category>/<detector>_<file>.csv with
// timestamp,value,anomaly_score,label) when out is not empty, and scores the results.
func Evaluate(c *Corpus, detector string, detect Detect, out string) (Report, error) {
	var rep Report
	var files []File
	for _, name := range c.Files {
		path := filepath.Join(c.Dir, "data", filepath.FromSlash(name))
		rows, err := ReadSeriesFile(path, ReadOptions{KeepDisorder: true})
		if err != nil {
			return rep, err
		}
		scores, alerts, err := detect(path, rows)
		if err != nil {
			return rep, err
		}
		f := File{Name: name, Scores: scores, Windows: c.Windows[name], Times: make([]time.Time, len(rows))}
		for i, r := range rows {
			f.Times[i] = r.Time
		}
		if out != "" {
			if err := writeResults(out, detector, name, rows, f); err != nil {
				return rep, err
			}
		}
		rep.Events.add(f, alerts, c.Labels[name])
		rep.Points += len(rows)
		files = append(files, f)
	}
	rep.Files = files
	for _, p := range Profiles() {
		r, err := Score(files, p, c.TotalWindows())
		if err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, r)
	}
	if n := len(rep.Events.Delays); n > 0 {
		d := slices.Clone(rep.Events.Delays)
		slices.Sort(d)
		rep.Events.MedianDelay = d[n/2]
		if n%2 == 0 {
			rep.Events.MedianDelay = (d[n/2-1] + d[n/2]) / 2
		}
	}
	return rep, nil
}

func (e *Events) add(f File, alerts []bool, labels []time.Time) {
	prob := ProbationLength(len(f.Times))
	for i := prob; i < len(f.Times); i++ {
		if !alerts[i] {
			continue
		}
		e.Alerts++
		for _, w := range f.Windows {
			if !f.Times[i].Before(w.Start) && !f.Times[i].After(w.End) {
				e.TrueAlerts++
				break
			}
		}
	}
	for _, w := range f.Windows {
		scorable, first := false, -1
		for i := prob; i < len(f.Times); i++ {
			t := f.Times[i]
			if t.Before(w.Start) || t.After(w.End) {
				continue
			}
			scorable = true
			if alerts[i] {
				first = i
				break
			}
		}
		if !scorable {
			continue
		}
		e.Windows++
		if first < 0 {
			continue
		}
		e.Detected++
		for _, l := range labels {
			if !l.Before(w.Start) && !l.After(w.End) {
				e.Delays = append(e.Delays, f.Times[first].Sub(l))
				break
			}
		}
	}
}

func writeResults(out, detector, name string, rows []Row, f File) error {
	dir, file := filepath.Split(filepath.FromSlash(name))
	path := filepath.Join(out, detector, dir, detector+"_"+file)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(fh)
	w.WriteString("timestamp,value,anomaly_score,label\n")
	for i, r := range rows {
		label := "0"
		for _, win := range f.Windows {
			if !r.Time.Before(win.Start) && !r.Time.After(win.End) {
				label = "1"
				break
			}
		}
		fmt.Fprintf(w, "%s,%s,%s,%s\n", r.Raw, strconv.FormatFloat(r.Value, 'g', -1, 64),
			strconv.FormatFloat(f.Scores[i], 'f', -1, 64), label)
	}
	if err := w.Flush(); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Summary formats the report as the harness prints it, with NAB's published scores beside
// it.
func (r Report) Summary(detector string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "NAB corpus: %d points in %d windows\n\n", r.Points, r.Events.Windows)
	fmt.Fprintf(&b, "%-20s %9s %9s %10s %6s %6s\n", "profile", "score", "goal", "threshold", "TP", "FP")
	goals := []float64{75, 67, 80}
	for i, res := range r.Results {
		fmt.Fprintf(&b, "%-20s %9.1f %9.0f %10.4f %6d %6d\n", res.Profile.Name, res.Normalized, goals[i],
			res.Threshold, res.Counts.TP, res.Counts.FP)
	}
	fmt.Fprintf(&b, "\npublished (cited, NAB scoreboard, github.com/numenta/NAB README):\n")
	for _, a := range []struct {
		name string
		s    string
	}{
		{"ARTime", "74.9 / 65.1 / 80.4"},
		{"Numenta HTM", "70.5 / 62.6 / 75.2"},
		{"CAD OSE", "69.9 / 67.0 / 73.2"},
		{"Random Cut Forest", "51.7 (standard)"},
		{"Twitter ADVec", "47.1 (standard)"},
		{"windowed Gaussian", "39.6 (standard)"},
	} {
		fmt.Fprintf(&b, "  %-18s %s\n", a.name, a.s)
	}
	e := r.Events
	fmt.Fprintf(&b, "\n%s at its default threshold (alerts as the daemon pages):\n", detector)
	fmt.Fprintf(&b, "  event recall     %.2f (%d of %d windows)\n", e.Recall(), e.Detected, e.Windows)
	fmt.Fprintf(&b, "  alert precision  %.2f (%d of %d alerts inside a window)\n", e.Precision(), e.TrueAlerts, e.Alerts)
	fmt.Fprintf(&b, "  median delay     %s after the labelled anomaly (negative: before it)\n", e.MedianDelay)
	return b.String()
}

// ReadResults returns a Detect that reads the anomaly_score column of an existing results
// directory in NAB's layout (dir/<category>/<detector>_<file>.csv, where detector is dir's
// base name), so that any detector's published results can be scored. Its alerts are the
// rows at or above threshold.
func ReadResults(dir, dataDir string, threshold float64) Detect {
	detector := filepath.Base(filepath.Clean(dir))
	return func(path string, rows []Row) ([]float64, []bool, error) {
		rel, err := filepath.Rel(filepath.Join(dataDir, "data"), path)
		if err != nil {
			return nil, nil, err
		}
		cat, file := filepath.Split(rel)
		rp := filepath.Join(dir, cat, detector+"_"+file)
		b, err := os.ReadFile(rp)
		if err != nil {
			return nil, nil, err
		}
		lines := strings.Split(strings.TrimRight(string(b), "\r\n"), "\n")
		if len(lines) == 0 {
			return nil, nil, fmt.Errorf("%s: empty", rp)
		}
		col := slices.Index(strings.Split(strings.TrimSpace(lines[0]), ","), "anomaly_score")
		if col < 0 {
			return nil, nil, fmt.Errorf("%s:1: no anomaly_score column", rp)
		}
		if len(lines)-1 != len(rows) {
			return nil, nil, fmt.Errorf("%s: %d rows, the data file has %d", rp, len(lines)-1, len(rows))
		}
		scores, alerts := make([]float64, len(rows)), make([]bool, len(rows))
		for i, l := range lines[1:] {
			f := strings.Split(strings.TrimSpace(l), ",")
			if col >= len(f) {
				return nil, nil, fmt.Errorf("%s:%d: no anomaly_score field", rp, i+2)
			}
			v, err := strconv.ParseFloat(f[col], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%s:%d: anomaly_score %q is not a number", rp, i+2, f[col])
			}
			scores[i], alerts[i] = v, v >= threshold
		}
		return scores, alerts, nil
	}
}
