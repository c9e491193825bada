package nab

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TimeLayout is the timestamp format of NAB's data files.
const TimeLayout = "2006-01-02 15:04:05"

// Row is one row of a data file.
type Row struct {
	Line  int    // 1-based line number in the file
	Raw   string // the timestamp as written
	Time  time.Time
	Value float64
	// Skip, when not empty, says why the detector must not see the row: its timestamp
	// repeats or goes back (only with ReadOptions.KeepDisorder).
	Skip string
}

// ReadOptions change how ReadSeries treats rows out of time order.
type ReadOptions struct {
	// KeepDisorder keeps a row whose timestamp repeats or goes back, with Row.Skip set,
	// instead of failing. NAB's corpus has such rows (clock changes) and scores every row.
	KeepDisorder bool
}

// ParseError names the file and line of a row that cannot be used.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// timeLayouts are the timestamp forms ReadSeries accepts: NAB's, with fractional seconds
// (as in NAB's label files), RFC 3339, and a bare date.
var timeLayouts = []string{TimeLayout, "2006-01-02 15:04:05.999999999", time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"}

// ParseTime parses a timestamp in one of the forms ReadSeries accepts. Timestamps without
// a zone are UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
		return time.Unix(n, 0).UTC(), nil // epoch seconds
	}
	return time.Time{}, fmt.Errorf("timestamp %q is not \"YYYY-MM-DD hh:mm:ss\", RFC 3339 or epoch seconds", s)
}

// ReadSeries reads a CSV of timestamp,value rows with a header line. Extra columns are
// ignored. name is used in errors. A row with the wrong number of fields, a timestamp that
// does not parse or is not after the one before, or a value that is not a finite number is
// an error naming name:line. Blank lines are skipped.
func ReadSeries(r io.Reader, name string, opt ReadOptions) ([]Row, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	var out []Row
	latest := -1 // index of the row with the latest timestamp so far
	line := 0
	header := true
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		fields := strings.Split(text, ",")
		if header {
			header = false
			if len(fields) < 2 || strings.TrimSpace(fields[0]) != "timestamp" || strings.TrimSpace(fields[1]) != "value" {
				return nil, &ParseError{name, line, fmt.Sprintf("header is %q, want \"timestamp,value\"", text)}
			}
			continue
		}
		if len(fields) < 2 {
			return nil, &ParseError{name, line, fmt.Sprintf("row %q has %d field, want timestamp,value", text, len(fields))}
		}
		t, err := ParseTime(fields[0])
		if err != nil {
			return nil, &ParseError{name, line, err.Error()}
		}
		vs := strings.TrimSpace(fields[1])
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil || v != v || v > 1e300 || v < -1e300 {
			return nil, &ParseError{name, line, fmt.Sprintf("value %q is not a finite number", vs)}
		}
		row := Row{Line: line, Raw: strings.TrimSpace(fields[0]), Time: t, Value: v}
		if latest >= 0 && !t.After(out[latest].Time) {
			prev := out[latest]
			msg := fmt.Sprintf("timestamp %s repeats line %d", row.Raw, prev.Line)
			if t.Before(prev.Time) {
				msg = fmt.Sprintf("timestamp %s goes back before line %d (%s)", row.Raw, prev.Line, prev.Raw)
			}
			if !opt.KeepDisorder {
				return nil, &ParseError{name, line, msg}
			}
			row.Skip = msg
		}
		out = append(out, row)
		if row.Skip == "" {
			latest = len(out) - 1
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, line+1, err)
	}
	if header {
		return nil, &ParseError{name, 1, "empty file, want a \"timestamp,value\" header"}
	}
	return out, nil
}

// ReadSeriesFile reads a timestamp,value CSV file with ReadSeries.
func ReadSeriesFile(path string, opt ReadOptions) ([]Row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadSeries(f, path, opt)
}

// Corpus is NAB's data directory: the data files and their labels.
type Corpus struct {
	Dir     string
	Files   []string            // relative paths under Dir/data, sorted
	Windows map[string][]Window // from labels/combined_windows.json
	Labels  map[string][]time.Time
}

// TotalWindows is the number of windows in the label file: NAB's count of possible true
// positives.
func (c *Corpus) TotalWindows() int {
	n := 0
	for _, w := range c.Windows {
		n += len(w)
	}
	return n
}

// OpenCorpus reads the label files of the NAB checkout at dir and lists its data files.
func OpenCorpus(dir string) (*Corpus, error) {
	c := &Corpus{Dir: dir}
	var raw map[string][][2]string
	if err := readJSON(filepath.Join(dir, "labels", "combined_windows.json"), &raw); err != nil {
		return nil, err
	}
	c.Windows = make(map[string][]Window, len(raw))
	for name, ws := range raw {
		c.Windows[name] = []Window{}
		for _, w := range ws {
			a, err := ParseTime(w[0])
			if err != nil {
				return nil, fmt.Errorf("combined_windows.json: %s: %w", name, err)
			}
			b, err := ParseTime(w[1])
			if err != nil {
				return nil, fmt.Errorf("combined_windows.json: %s: %w", name, err)
			}
			c.Windows[name] = append(c.Windows[name], Window{a, b})
		}
		sort.Slice(c.Windows[name], func(i, j int) bool { return c.Windows[name][i].Start.Before(c.Windows[name][j].Start) })
	}
	var labels map[string][]string
	if err := readJSON(filepath.Join(dir, "labels", "combined_labels.json"), &labels); err != nil {
		return nil, err
	}
	c.Labels = make(map[string][]time.Time, len(labels))
	for name, ls := range labels {
		for _, l := range ls {
			t, err := ParseTime(l)
			if err != nil {
				return nil, fmt.Errorf("combined_labels.json: %s: %w", name, err)
			}
			c.Labels[name] = append(c.Labels[name], t)
		}
	}
	data := filepath.Join(dir, "data")
	err := filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".csv") {
			return nil
		}
		rel, err := filepath.Rel(data, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if _, ok := c.Windows[rel]; !ok {
			return fmt.Errorf("%s: no entry in labels/combined_windows.json", p)
		}
		c.Files = append(c.Files, rel)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(c.Files) == 0 {
		return nil, fmt.Errorf("%s: no CSV files (want NAB's layout: data/<category>/<file>.csv and labels/)", data)
	}
	sort.Strings(c.Files)
	return c, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w (want NAB's layout: data/ and labels/)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
