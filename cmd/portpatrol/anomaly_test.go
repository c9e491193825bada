package main

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSeries writes a timestamp,value CSV of n 5-minute points of a noisy daily cycle
// with one spike at row spike (0-based), and returns its path.
func writeSeries(t *testing.T, dir, name string, n, spike int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		v := 100 + 40*math.Sin(2*math.Pi*float64(i)/288) + float64((i*7919)%11) - 5
		if i == spike {
			v = 400
		}
		fmt.Fprintf(&b, "%s,%.3f\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
	}
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAnomalyDetect(t *testing.T) {
	p := writeSeries(t, t.TempDir(), "s.csv", 3*288, 2*288+50)
	var out, errb bytes.Buffer
	if code := run([]string{"anomaly", "detect", "--explain", p}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "timestamp,value,anomaly_score,alert" || len(lines) != 3*288+1 {
		t.Fatalf("got header %q and %d lines, want the header and %d rows", lines[0], len(lines), 3*288)
	}
	spike := strings.Split(lines[1+2*288+50], ",")
	if spike[3] != "1" {
		t.Errorf("spike row %v: alert %s, want 1", spike, spike[3])
	}
	if !strings.Contains(errb.String(), "far above") {
		t.Errorf("--explain: got %q, want the reason of the alert", errb.String())
	}
}

func TestAnomalyDetectBadInput(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ name, body, want string }{
		{"row.csv", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00\n", "row.csv:3: row"},
		{"nan.csv", "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:05:00,abc\n", "nan.csv:3: value \"abc\" is not a finite number"},
		{"back.csv", "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:00:00,2\n", "back.csv:3: timestamp 2024-01-01 00:00:00 goes back before line 2"},
		{"repeat.csv", "timestamp,value\n2024-01-01 00:05:00,1\n2024-01-01 00:05:00,2\n", "repeat.csv:3: timestamp 2024-01-01 00:05:00 repeats line 2"},
		{"missing.csv", "", "missing.csv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if c.body != "" {
				os.WriteFile(p, []byte(c.body), 0o644)
			}
			var out, errb bytes.Buffer
			code := run([]string{"anomaly", "detect", p}, &out, &errb)
			if code != exitUnknown || !strings.Contains(errb.String(), c.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errb.String(), exitUnknown, c.want)
			}
		})
	}
	// --keep-disorder: the repeated row is named, scored 0, and the rest goes on.
	p := filepath.Join(dir, "repeat.csv")
	var out, errb bytes.Buffer
	if code := run([]string{"anomaly", "detect", "--keep-disorder", p}, &out, &errb); code != 0 {
		t.Fatalf("--keep-disorder: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "repeat.csv:3:") || strings.Count(out.String(), "\n") != 3 {
		t.Errorf("--keep-disorder: stdout %q stderr %q; want 2 rows and a warning naming repeat.csv:3", out.String(), errb.String())
	}
	if code := run([]string{"anomaly", "detect", "--direction", "sideways", p}, &out, &errb); code != exitUnknown {
		t.Errorf("--direction sideways: exit %d, want %d", code, exitUnknown)
	}
}

func TestAnomalyNAB(t *testing.T) {
	dir := t.TempDir()
	writeSeries(t, dir, "data/cat/a.csv", 3*288, 2*288+50)
	writeSeries(t, dir, "data/cat/b.csv", 3*288, -1)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(i int) string {
		return t0.Add(time.Duration(i) * 5 * time.Minute).Format("2006-01-02 15:04:05.000000")
	}
	os.MkdirAll(filepath.Join(dir, "labels"), 0o755)
	os.WriteFile(filepath.Join(dir, "labels", "combined_windows.json"),
		[]byte(fmt.Sprintf(`{"cat/a.csv": [["%s", "%s"]], "cat/b.csv": []}`, at(2*288+30), at(2*288+70))), 0o644)
	os.WriteFile(filepath.Join(dir, "labels", "combined_labels.json"),
		[]byte(fmt.Sprintf(`{"cat/a.csv": ["%s"], "cat/b.csv": []}`, at(2*288+50))), 0o644)
	res := filepath.Join(dir, "results")
	var out, errb bytes.Buffer
	if code := run([]string{"anomaly", "nab", "--data", dir, "--out", res}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"standard", "reward_low_FP_rate", "reward_low_FN_rate", "event recall     1.00 (1 of 1 windows)", "ARTime"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(res, "portpatrol", "cat", "portpatrol_a.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if lines[0] != "timestamp,value,anomaly_score,label" || len(lines) != 3*288+1 || !strings.HasSuffix(lines[1+2*288+30], ",1") || !strings.HasSuffix(lines[1+2*288+29], ",0") {
		t.Errorf("results file: header %q, %d lines, labels around the window %q %q", lines[0], len(lines), lines[1+2*288+29], lines[1+2*288+30])
	}
	// The results directory scores the same through --score.
	var again bytes.Buffer
	if code := run([]string{"anomaly", "nab", "--data", dir, "--score", filepath.Join(res, "portpatrol")}, &again, &errb); code != 0 {
		t.Fatalf("--score: exit %d: %s", code, errb.String())
	}
	first := strings.SplitN(out.String(), "published", 2)[0]
	if second := strings.SplitN(again.String(), "published", 2)[0]; first != second {
		t.Errorf("--score of the written results:\n%s\nwant the same scores as the run:\n%s", second, first)
	}
	if code := run([]string{"anomaly", "nab", "--data", filepath.Join(dir, "nope")}, &out, &errb); code != exitUnknown {
		t.Errorf("missing corpus: exit %d, want %d", code, exitUnknown)
	}
}
