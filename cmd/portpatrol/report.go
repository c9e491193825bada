package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/spf13/cobra"
)

func newReportCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports from a running daemon: capacity forecasts",
		Example: `  portpatrol report capacity
  portpatrol report capacity --since 7d`,
	}
	addAPIFlags(cmd, &f)
	cmd.AddCommand(newReportCapacityCmd(&f))
	return cmd
}

func newReportCapacityCmd(f *apiFlags) *cobra.Command {
	var (
		asJSON bool
		since  string
	)
	cmd := &cobra.Command{
		Use:   "capacity",
		Short: "List what will run out first: every used/limit pair and when it reaches its limit",
		Long: `Every used/limit pair a probe reads (Redis clients of maxclients, MySQL and PostgreSQL
connections of their maximum) is a trend the daemon fits: the last two hours of 5-minute
windows for a leak, and hourly means of up to 30 days, day against the same hour of other
days, for growth. The report lists each pair with its latest reading, its rise per day and
the time until its limit at that rate, soonest first; pairs with no rise toward their limit
follow, fullest first. --since fits the long horizon over only that much history.
A forecast under 24h is also a P3 alert, under 30m a P2 (docs/anomaly.md).
` + apiExitHelp,
		Example: `  portpatrol report capacity
  portpatrol report capacity --since 7d
  portpatrol report capacity --json | jq '.forecasts[] | select(.eta_seconds != null)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			path := "/api/v1/capacity"
			if since != "" {
				path += "?since=" + url.QueryEscape(since)
			}
			var v struct {
				Since     string                 `json:"since"`
				Forecasts []api.CapacityForecast `json:"forecasts"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, path, nil, &v); err != nil {
				return c.fail(err, "capacity forecasts")
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			if len(v.Forecasts) == 0 {
				fmt.Fprintln(out, "No used/limit readings yet: Redis, MySQL and PostgreSQL targets report them with every probe.")
				return nil
			}
			var t table
			t.add("TARGET", "WHAT", "USED", "LIMIT", "PER DAY", "RUNS OUT IN", "FIT", "ALERT")
			for _, r := range v.Forecasts {
				eta, fit := "-", "-"
				if r.ETASeconds != nil {
					eta = etaWords(time.Duration(*r.ETASeconds * float64(time.Second)))
					fit = r.Horizon + " " + etaWords(time.Duration(r.SpanSeconds*float64(time.Second)))
				}
				t.add(r.Target, r.What, strconv.FormatFloat(r.Used, 'f', 0, 64), strconv.FormatFloat(r.Limit, 'f', 0, 64),
					signed(r.PerDay), eta, fit, dash(r.Severity))
			}
			return t.write(out)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "fit the long horizon over this much history (30d, 72h); default all that is kept (30 days)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// etaWords rounds a duration for the report: "now", minutes under a day, days after.
func etaWords(d time.Duration) string {
	switch {
	case d <= 0:
		return "now"
	case d < time.Minute:
		return "<1m"
	case d < 24*time.Hour:
		return d.Round(time.Minute).String()
	case d < 1000*24*time.Hour:
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
	return ">1000d"
}

// signed prints a rate with its sign and no exponent: +19440, +0.9, -0.25.
func signed(v float64) string {
	a := max(v, -v)
	switch {
	case a >= 100:
		return fmt.Sprintf("%+.0f", v)
	case a >= 1:
		return fmt.Sprintf("%+.1f", v)
	}
	return fmt.Sprintf("%+.2g", v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
