package main

import (
	"bufio"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/portpatrol/portpatrol/internal/anomaly"
	"github.com/portpatrol/portpatrol/internal/anomaly/nab"
	"github.com/spf13/cobra"
)

func newAnomalyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "anomaly",
		Short: "Run the streaming anomaly detector over recorded series",
		Long: `The anomaly detector learns each series from the stream alone (level, daily and
weekly profile, spread) and scores every point in [0,1]; a point at or above the
threshold pages. These commands run it over CSV files, one fresh detector per file,
exactly as the daemon would feed it. See docs/anomaly.md.`,
		Example: `  # Score a series: one row out per row in (timestamp,value,anomaly_score,alert)
  portpatrol anomaly detect ../shared/data/nab/data/realKnownCause/nyc_taxi.csv

  # Run the NAB corpus, write NAB's results layout and print its scores
  portpatrol anomaly nab --data ../shared/data/nab --out /tmp/nab-results`,
	}
	cmd.AddCommand(newAnomalyDetectCmd(), newAnomalyNABCmd())
	return cmd
}

type anomalyFlags struct {
	direction string
	threshold float64
}

func (f *anomalyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.direction, "direction", "both", "which deviations are anomalous: both, up (latency) or down (connections)")
	cmd.Flags().Float64Var(&f.threshold, "threshold", anomaly.DefaultThreshold, "score at or above which a point alerts")
}

func (f *anomalyFlags) config() (anomaly.Config, error) {
	dir, err := anomaly.ParseDirection(f.direction)
	if err != nil {
		return anomaly.Config{}, exitf(exitUnknown, "--direction: %v", err)
	}
	if f.threshold <= 0 || f.threshold > 1 {
		return anomaly.Config{}, exitf(exitUnknown, "--threshold %v: want a score in (0,1]", f.threshold)
	}
	return anomaly.Config{Direction: dir, Threshold: f.threshold}, nil
}

// detectRows runs a fresh detector over rows. A row marked Skip scores 0 and is not fed;
// warn says so.
func detectRows(cfg anomaly.Config, rows []nab.Row, explain, warn io.Writer, name string) ([]float64, []bool, error) {
	d := anomaly.New(cfg)
	scores, alerts := make([]float64, len(rows)), make([]bool, len(rows))
	for i, r := range rows {
		if r.Skip != "" {
			fmt.Fprintf(warn, "portpatrol: %s:%d: %s: scored 0, not fed to the detector\n", name, r.Line, r.Skip)
			continue
		}
		res, err := d.Observe(r.Time, r.Value)
		if err != nil {
			return nil, nil, fmt.Errorf("%s:%d: %w", name, r.Line, err)
		}
		scores[i], alerts[i] = res.Score, res.Alert
		if explain != nil && res.Alert {
			fmt.Fprintf(explain, "%s:%d: %s score %.4f: %s\n", name, r.Line, r.Raw, res.Score, res.Reason())
		}
	}
	return scores, alerts, nil
}

func newAnomalyDetectCmd() *cobra.Command {
	var f anomalyFlags
	var explain, keep bool
	cmd := &cobra.Command{
		Use:   "detect FILE.csv",
		Short: "Score a timestamp,value CSV and print timestamp,value,anomaly_score,alert",
		Long: `detect reads a CSV with a "timestamp,value" header (NAB's format; timestamps as
"2006-01-02 15:04:05", RFC 3339 or epoch seconds, in increasing order) and writes one
row per input row: timestamp,value,anomaly_score,alert. alert is 1 where the daemon
would page at --threshold. A malformed row, a timestamp that repeats or goes back, or
a value that is not a number stops with file:line (with --keep-disorder, a repeated or
backward timestamp is a warning instead: the row scores 0 and is not fed). A gap in the timestamps is not an
error: the detector treats it as missing data (see docs/anomaly.md).`,
		Example: `  portpatrol anomaly detect ../shared/data/nab/data/realKnownCause/nyc_taxi.csv > scored.csv

  # Latency: only a rise is anomalous; print why each alert fired on stderr
  portpatrol anomaly detect --direction up --explain latency.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			rows, err := nab.ReadSeriesFile(args[0], nab.ReadOptions{KeepDisorder: keep})
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			var ex io.Writer
			if explain {
				ex = cmd.ErrOrStderr()
			}
			scores, alerts, err := detectRows(cfg, rows, ex, cmd.ErrOrStderr(), args[0])
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			fmt.Fprintln(w, "timestamp,value,anomaly_score,alert")
			for i, r := range rows {
				a := "0"
				if alerts[i] {
					a = "1"
				}
				fmt.Fprintf(w, "%s,%s,%s,%s\n", r.Raw, strconv.FormatFloat(r.Value, 'g', -1, 64),
					strconv.FormatFloat(scores[i], 'f', 6, 64), a)
			}
			return w.Flush()
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&explain, "explain", false, "print the reason of every alert on stderr")
	cmd.Flags().BoolVar(&keep, "keep-disorder", false, "a row whose timestamp repeats or goes back is a warning (scored 0, not fed) instead of an error")
	return cmd
}

func newAnomalyNABCmd() *cobra.Command {
	var f anomalyFlags
	var data, out, score string
	cmd := &cobra.Command{
		Use:   "nab --data DIR [--out DIR]",
		Short: "Run the detector over the NAB corpus and print NAB's scores",
		Long: `nab runs one fresh detector per file of a Numenta Anomaly Benchmark checkout (its
data/ and labels/ directories), with the same parameters for every file, and scores
the results as NAB does: the windows of labels/combined_windows.json, a probationary
15 % per file, the scaled sigmoid, the threshold optimised per profile over the whole
corpus, and normalisation between the null detector (0) and the perfect one (100).
With --out it writes NAB's results layout (DIR/portpatrol/<category>/portpatrol_<file>.csv
with timestamp,value,anomaly_score,label), which NAB's own scorer reads unchanged.
A row whose timestamp repeats or goes back (NAB's corpus has a few, from clock
changes) is named on stderr, scores 0 and is not fed to the detector. It also prints
event recall, alert precision and the median detection delay at the
detector's own threshold, which is what the daemon pages on.`,
		Example: `  portpatrol anomaly nab --data ../shared/data/nab --out /tmp/nab-results

  # Score another detector's results in NAB's layout with the same scorer (e.g. NAB's
  # published results/contextOSE); alerts for the event figures at --threshold
  portpatrol anomaly nab --data ../shared/data/nab --score NAB/results/contextOSE --threshold 0.5`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			if data == "" {
				return exitf(exitUnknown, "--data: give the NAB directory (with data/ and labels/)")
			}
			c, err := nab.OpenCorpus(data)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			name := "portpatrol"
			detect := func(path string, rows []nab.Row) ([]float64, []bool, error) {
				return detectRows(cfg, rows, nil, cmd.ErrOrStderr(), path)
			}
			if score != "" {
				name, out = filepath.Base(filepath.Clean(score)), ""
				detect = nab.ReadResults(score, data, cfg.Threshold)
			}
			rep, err := nab.Evaluate(c, name, detect, out)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			fmt.Fprint(cmd.OutOrStdout(), rep.Summary(name))
			if out != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "\nresults written under %s/portpatrol\n", out)
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&data, "data", "", "NAB directory with data/ and labels/ (required)")
	cmd.Flags().StringVar(&out, "out", "", "write NAB's results layout under this directory")
	cmd.Flags().StringVar(&score, "score", "", "score this results directory (NAB layout, named after its detector) instead of running the detector")
	return cmd
}
