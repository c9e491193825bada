package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// automationCmds are the automation command and the approve and deny shortcuts.
func automationCmds() []*cobra.Command {
	return []*cobra.Command{newAutomationCmd(), newApproveCmd(), newDenyCmd()}
}

func newAutomationCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "automation",
		Short: "Remediation: state, kill switch, approvals and a replay of past alerts",
		Long: `Remediation playbooks run steps (exec, http, kube, switch_port, systemd) under risk tiers,
approvals, circuit breakers and a kill switch; see docs/automation.md.

  status    the live state: mode, kill switch, breakers, pending approvals
  pause     throw the kill switch: nothing runs until resume
  resume    lift it (also after the fleet limit halted automation)
  simulate  replay stored alerts against a config's playbooks: what would have run,
            what would have needed approval, which breakers would have tripped
  request   ask for a playbook's step on an open alert; someone else approves it
  report    the permission review: what playbooks may do, what ran, who approved`,
		Example: `  portpatrol automation status
  portpatrol automation pause -m "change freeze until Monday"
  portpatrol automation resume
  portpatrol automation simulate -c portpatrol.yaml --since 7d
  portpatrol automation report -c portpatrol.yaml --since 30d`,
	}
	cmd.AddCommand(newAutomationStatusCmd(), newAutomationSwitchCmd("pause"), newAutomationSwitchCmd("resume"), newSimulateCmd(),
		newAutomationRequestCmd(), newAutomationReportCmd())
	return cmd
}

// requestJSON is an approval request as the API returns it.
type requestJSON struct {
	ID          string    `json:"id"`
	AlertID     string    `json:"alert_id"`
	State       string    `json:"state"`
	RequestedBy string    `json:"requested_by"`
	ExpiresAt   time.Time `json:"expires_at"`
	Needs       string    `json:"needs"`
	Reason      string    `json:"reason"`
	Reasons     []string  `json:"reasons"`
	Approvals   []struct {
		By string `json:"by"`
	} `json:"approvals"`
	Plan struct {
		Playbook string            `json:"playbook"`
		Step     string            `json:"step"`
		Tier     string            `json:"tier"`
		Action   string            `json:"action"`
		Target   string            `json:"target"`
		Diff     string            `json:"diff"`
		Hash     string            `json:"hash"`
		Params   map[string]string `json:"params"`
	} `json:"plan"`
}

func newAutomationStatusCmd() *cobra.Command {
	var (
		f      apiFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show automation's live state and the pending approvals",
		Long:  "Show the mode, the kill switch, each playbook, the circuit breakers and the pending approvals with their plans.\n" + apiExitHelp,
		Example: `  portpatrol automation status
  portpatrol automation status --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var st automation.State
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/automation", nil, &st); err != nil {
				return c.fail(err, "automation")
			}
			var reqs struct {
				Requests []requestJSON `json:"requests"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/automation/approvals", nil, &reqs); err != nil {
				return c.fail(err, "automation")
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"state": st, "requests": reqs.Requests})
			}
			printState(out, st)
			printRequests(out, reqs.Requests)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the state and the requests as JSON")
	return cmd
}

func printState(out io.Writer, st automation.State) {
	mode := st.Mode
	if mode == automation.ModeOff {
		mode += " (observe and recommend only)"
	}
	fmt.Fprintf(out, "mode:      %s\n", mode)
	if st.Paused {
		fmt.Fprintf(out, "paused:    yes, by %s: %s\n", st.PausedBy, st.PauseReason)
	} else {
		fmt.Fprintln(out, "paused:    no")
	}
	fmt.Fprintf(out, "fleet:     %d of %d actions within %s\n", st.FleetCount, st.FleetLimit, st.FleetWindow)
	fmt.Fprintln(out, "playbooks:")
	for _, p := range st.Playbooks {
		fmt.Fprintf(out, "  %s (%s): %s\n", p.Name, p.Mode, strings.Join(p.Steps, "; "))
	}
	if len(st.Breakers) == 0 {
		fmt.Fprintln(out, "breakers:  none has counted an attempt")
	} else {
		fmt.Fprintln(out, "breakers:")
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  ACTION\tTARGET\tATTEMPTS\tSTATE")
		for _, b := range st.Breakers {
			state := "closed"
			if b.Open {
				state = b.Reason
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", b.Action, b.Target, len(b.Attempts), state)
		}
		_ = tw.Flush()
	}
}

func printRequests(out io.Writer, reqs []requestJSON) {
	pending := 0
	for _, r := range reqs {
		if r.State != automation.StatePending {
			continue
		}
		pending++
		fmt.Fprintf(out, "\napproval %s  %s step %s (%s %s) on %s\n", r.ID, r.Plan.Playbook, r.Plan.Step, r.Plan.Action, r.Plan.Tier, r.Plan.Target)
		fmt.Fprintf(out, "  diff:      %s\n", r.Plan.Diff)
		fmt.Fprintf(out, "  requested: by %s; expires %s; needs %s\n", r.RequestedBy, r.ExpiresAt.Local().Format(time.RFC3339), r.Needs)
		for _, why := range r.Reasons {
			fmt.Fprintf(out, "  why:       %s\n", why)
		}
		fmt.Fprintf(out, "  plan hash: %s\n", r.Plan.Hash)
	}
	if pending == 0 {
		fmt.Fprintln(out, "approvals: none pending")
	}
}

func newAutomationSwitchCmd(verb string) *cobra.Command {
	var (
		f      apiFlags
		reason string
	)
	short := "Throw the kill switch: nothing runs until resumed"
	example := `  portpatrol automation pause -m "database migration in progress"`
	if verb == "resume" {
		short, example = "Lift the kill switch", "  portpatrol automation resume"
	}
	cmd := &cobra.Command{
		Use:     verb,
		Short:   short,
		Long:    short + ". Recorded in the audit chain under the token's name.\n" + apiExitHelp,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var body any
			if reason != "" {
				body = map[string]string{"reason": reason}
			}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/automation/"+verb, body, nil); err != nil {
				return c.fail(err, "automation")
			}
			if verb == "pause" {
				fmt.Fprintln(cmd.OutOrStdout(), "Automation paused: nothing runs until `portpatrol automation resume`.")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "Automation resumed.")
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	if verb == "pause" {
		cmd.Flags().StringVarP(&reason, "message", "m", "", "why (recorded)")
	}
	return cmd
}

func newAutomationRequestCmd() *cobra.Command {
	var (
		f        apiFlags
		playbook string
		step     int
	)
	cmd := &cobra.Command{
		Use:   "request ALERT_ID --playbook NAME",
		Short: "Ask for a playbook's step to run on an open alert",
		Long: `Ask for step --step (from 0) of playbook --playbook to run on an open alert. The request
is yours: it needs the approvals its tier asks for from someone else (see portpatrol
approve), and you can never approve it yourself.
` + apiExitHelp,
		Example: `  portpatrol automation request 78e8e59b77b2-dneo98b3a8rz --playbook failover --step 0`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if playbook == "" {
				return exitf(exitUnknown, "request needs --playbook NAME")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var r requestJSON
			body := map[string]any{"alert_id": args[0], "playbook": playbook, "step": step}
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/automation/approvals", body, &r); err != nil {
				return c.fail(err, "alert "+args[0])
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Requested %s: %s step %s (%s %s) on %s: %s\nNeeds %s; expires %s.\n", r.ID, r.Plan.Playbook, r.Plan.Step,
				r.Plan.Action, r.Plan.Tier, r.Plan.Target, r.Plan.Diff, r.Needs, r.ExpiresAt.Local().Format(time.RFC3339))
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().StringVar(&playbook, "playbook", "", "the playbook (required)")
	cmd.Flags().IntVar(&step, "step", 0, "the step's index, from 0")
	return cmd
}

func newApproveCmd() *cobra.Command { return newDecisionCmd("approve") }
func newDenyCmd() *cobra.Command    { return newDecisionCmd("deny") }

// newDecisionCmd builds approve and deny.
func newDecisionCmd(verb string) *cobra.Command {
	var (
		f    apiFlags
		text string
	)
	short := "Approve a pending remediation plan (on a running daemon)"
	example := `  portpatrol approve 9f2c41d07a3e55b1 -m "backup is warm"`
	if verb == "deny" {
		short, example = "Deny a pending remediation plan (on a running daemon)", `  portpatrol deny 9f2c41d07a3e55b1 -m "not during the sale"`
	}
	cmd := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long: short + `. The ID is an approval request's, as automation status lists them. An
approval binds to the plan's hash: it is refused (exit 1, with the reason) when the
request is unknown, expired, already decided, void because its alert resolved or was
acknowledged, when the target drifted from the plan, or when it is your own request.
` + apiExitHelp,
		Example: example,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if verb == "deny" && strings.TrimSpace(text) == "" {
				return exitf(exitUnknown, "deny needs a reason: -m REASON")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			key := "comment"
			if verb == "deny" {
				key = "reason"
			}
			var body any
			if text != "" {
				body = map[string]string{key: text}
			}
			id := args[0]
			var r requestJSON
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/automation/approvals/"+url.PathEscape(id)+"/"+verb, body, &r); err != nil {
				return c.fail(err, "approval request "+id)
			}
			out := cmd.OutOrStdout()
			switch {
			case verb == "deny":
				fmt.Fprintf(out, "Denied %s: %s step %s on %s.\n", r.ID, r.Plan.Playbook, r.Plan.Step, r.Plan.Target)
			case r.State == automation.StateApproved:
				fmt.Fprintf(out, "Approved %s: %s step %s on %s runs now (%s).\n", r.ID, r.Plan.Playbook, r.Plan.Step, r.Plan.Target, r.Plan.Diff)
			default:
				fmt.Fprintf(out, "Approval recorded on %s; still needs %s.\n", r.ID, r.Needs)
			}
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	help := "a comment, recorded with the approval"
	if verb == "deny" {
		help = "why (required)"
	}
	cmd.Flags().StringVarP(&text, "message", "m", "", help)
	return cmd
}

// parseSince reads 7d, 36h, 90m.
func parseSince(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		d, err := strconv.Atoi(n)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("%q: want a number of days such as 7d, or a duration such as 36h", s)
		}
		return time.Duration(d) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a number of days such as 7d, or a duration such as 36h", s)
	}
	return d, nil
}

func newSimulateCmd() *cobra.Command {
	var (
		f      apiFlags
		file   string
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Replay stored alerts against a config's playbooks",
		Long: `Replay the alerts the running daemon has stored (--since ago until now, oldest first)
against the playbooks of a configuration file, as if automation were on and every
playbook in mode auto: what would have run, what would have needed approval, which
breakers would have tripped and whether the fleet limit would have halted automation.
Nothing is run or checked: the sandbox before anything is enabled. A step that would
run is assumed to recover its alert.
` + apiExitHelp,
		Example: `  portpatrol automation simulate -c portpatrol.yaml --since 7d
  portpatrol automation simulate -c candidate.yaml --since 36h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return exitf(exitUnknown, "simulate needs the configuration whose playbooks to replay: -c FILE")
			}
			window, err := parseSince(since)
			if err != nil {
				return exitf(exitUnknown, "--since %v", err)
			}
			cfg, err := config.Load(file)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var list struct {
				Alerts []struct {
					ID          string            `json:"id"`
					Fingerprint string            `json:"fingerprint"`
					Rule        string            `json:"rule"`
					Class       string            `json:"class"`
					Severity    string            `json:"severity"`
					State       string            `json:"state"`
					Target      string            `json:"target"`
					Labels      map[string]string `json:"labels"`
					Summary     string            `json:"summary"`
					StartsAt    time.Time         `json:"starts_at"`
				} `json:"alerts"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/alerts?state=all", nil, &list); err != nil {
				return c.fail(err, "alerts")
			}
			from := time.Now().Add(-window)
			var alerts []patrol.Alert
			for _, s := range list.Alerts {
				if s.StartsAt.Before(from) {
					continue
				}
				sev, _ := patrol.ParseSeverity(s.Severity)
				alerts = append(alerts, patrol.Alert{ID: s.ID, Fingerprint: s.Fingerprint, Rule: s.Rule, Class: patrol.AlertClass(s.Class),
					Severity: sev, State: patrol.AlertState(s.State), Target: s.Target, Labels: s.Labels, Summary: s.Summary, StartsAt: s.StartsAt})
			}
			res, err := automation.Simulate(cfg.Automation, alerts)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			printSimulation(out, res, since)
			return nil
		},
	}
	addAPIFlags(cmd, &f)
	cmd.Flags().StringVarP(&file, "config", "c", "", "the configuration file whose playbooks to replay (required)")
	cmd.Flags().StringVar(&since, "since", "7d", "how far back to replay: 7d, 36h")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON")
	return cmd
}

func printSimulation(out io.Writer, res []automation.SimResult, since string) {
	counts := map[string]int{}
	matched := 0
	for _, r := range res {
		a := r.Alert
		fmt.Fprintf(out, "%s  %s %s %s  %s\n", a.StartsAt.Local().Format("2006-01-02 15:04:05"), a.Severity, a.Class, a.Target, oneLine(a.Summary))
		if r.Playbook == "" {
			fmt.Fprintf(out, "  no playbook: %s\n", strings.Join(r.Reasons[1:], "; "))
			continue
		}
		matched++
		fmt.Fprintf(out, "  playbook %s (configured mode %s)\n", r.Playbook, r.Mode)
		for _, s := range r.Steps {
			counts[s.Outcome]++
			fmt.Fprintf(out, "    step %s (%s %s): %s: %s — %s\n", s.Step, s.Action, s.Tier, s.Outcome, s.Diff, s.Detail)
		}
	}
	fmt.Fprintf(out, "\n%d alert(s) in the last %s, %d matched a playbook: %d step(s) would run, %d would need approval, %d breaker trip(s), %d stopped by the fleet limit\n",
		len(res), since, matched, counts[automation.SimRun], counts[automation.SimApproval], counts[automation.SimBreaker], counts[automation.SimFleet])
}
