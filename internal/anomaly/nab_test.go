package anomaly

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/portpatrol/portpatrol/internal/anomaly/nab"
)

// TestNABScores runs the detector at its defaults over the NAB corpus, as `portpatrol
// anomaly nab` does, and pins the scores docs/anomaly.md reports, so that a change of the
// model that loses ground on NAB fails here. The detector is deterministic: the figures
// are exact, the floor is 0.05 under them.
func TestNABScores(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the NAB corpus takes seconds")
	}
	dir := os.Getenv("NAB_DIR")
	if dir == "" {
		for up := "."; ; up = filepath.Join(up, "..") {
			if _, err := os.Stat(filepath.Join(up, "shared", "data", "nab", "labels")); err == nil {
				dir = filepath.Join(up, "shared", "data", "nab")
				break
			}
			if abs, _ := filepath.Abs(up); abs == filepath.Dir(abs) {
				break
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "labels", "combined_windows.json")); err != nil {
		t.Skipf("NAB corpus not found at %q (set NAB_DIR to a checkout of github.com/numenta/NAB)", dir)
	}
	c, err := nab.OpenCorpus(dir)
	if err != nil {
		t.Fatal(err)
	}
	detect := func(path string, rows []nab.Row) ([]float64, []bool, error) {
		d := New(Config{})
		scores, alerts := make([]float64, len(rows)), make([]bool, len(rows))
		for i, r := range rows {
			if r.Skip != "" {
				continue
			}
			res, err := d.Observe(r.Time, r.Value)
			if err != nil {
				return nil, nil, err
			}
			scores[i], alerts[i] = res.Score, res.Alert
		}
		return scores, alerts, nil
	}
	rep, err := nab.Evaluate(c, "portpatrol", detect, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"standard": 65.4, "reward_low_FP_rate": 55.6, "reward_low_FN_rate": 70.6}
	for _, r := range rep.Results {
		t.Logf("%s: %.2f at threshold %.4f (TP %d, FP %d rows)", r.Profile.Name, r.Normalized, r.Threshold, r.Counts.TP, r.Counts.FP)
		if w := want[r.Profile.Name]; r.Normalized < w-0.05 {
			t.Errorf("%s: got %.2f, want at least %.1f", r.Profile.Name, r.Normalized, w)
		}
	}
}
