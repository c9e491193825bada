package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/api"
)

func newBansCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use: "bans",
		Example: `  portpatrol bans ls
  portpatrol bans add 203.0.113.7 --for 24h -m "scanned every port at 03:00"
  portpatrol bans rm 203.0.113.7 -m "our new monitoring host"`,
		Short: "List, add and lift bans on a running daemon",
		Long: `Bans drop every packet from an address in portpatrol's nftables table
(inet portpatrol_bans) until they expire; the kernel lifts them on time even if the
daemon is gone. Intrusion detection bans scanners and password guessers by itself
(intrusion.enabled; in dry run unless intrusion.dry_run is false); these commands
show its bans and set or lift bans by hand. An allowlisted address is never banned:
the refusal names the rule that protects it. Every ban and unban is recorded in the
audit log with its reason. See docs/security.md.
` + apiExitHelp,
		Args: cobra.NoArgs,
	}
	addAPIFlags(cmd, &f)
	cmd.AddCommand(newBansLsCmd(&f), newBansAddCmd(&f), newBansRmCmd(&f))
	return cmd
}

func newBansLsCmd(f *apiFlags) *cobra.Command {
	var asJSON, all bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List bans in force (--all: ended ones and dry-run ones too)",
		Example: `  portpatrol bans ls
  portpatrol bans ls --all --json | jq '.[] | select(.kind == "bruteforce")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var list struct {
				Bans []json.RawMessage `json:"bans"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/bans", nil, &list); err != nil {
				return c.fail(err, "bans")
			}
			var show []json.RawMessage
			var bans []api.Ban
			for _, raw := range list.Bans {
				var b api.Ban
				if err := json.Unmarshal(raw, &b); err != nil {
					return exitf(exitUnknown, "unexpected ban in the answer: %v", err)
				}
				if all || b.Active {
					show, bans = append(show, raw), append(bans, b)
				}
			}
			out := cmd.OutOrStdout()
			empty := "No bans in force."
			if all {
				empty = "No bans."
			}
			if done, err := printRaw(out, asJSON, show, empty); done {
				return err
			}
			now := time.Now()
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ADDRESS\tSTATE\tENDS\tKIND\tCOUNT\tBY\tREASON")
			for _, b := range bans {
				state, ends := "banned", "in "+short(b.Expires.Sub(now))
				switch {
				case b.Lifted != nil:
					state, ends = "lifted by "+b.LiftedBy, short(now.Sub(*b.Lifted))+" ago"
				case b.DryRun:
					state = "dry run"
				case !b.Active:
					state, ends = "expired", short(now.Sub(b.Expires))+" ago"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", b.Addr, state, ends, b.Kind, b.Count, b.Actor, oneLine(b.Reason))
			}
			return w.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print the bans as the API returns them, as a JSON array")
	ls.Flags().BoolVar(&all, "all", false, "include bans that ended and dry-run bans")
	return ls
}

func newBansAddCmd(f *apiFlags) *cobra.Command {
	var (
		dur    time.Duration
		reason string
	)
	add := &cobra.Command{
		Use:   "add ADDRESS",
		Short: "Ban an address by hand",
		Long: `Ban an address for --for (default: the configured ban time, doubled when the address
was banned before). Needs an operator token. In dry run the ban is recorded, not
enforced.`,
		Example: `  portpatrol bans add 203.0.113.7 -m "brute force on ssh seen in the auth log"
  portpatrol bans add 2001:db8::66 --for 72h -m "abuse report 4711"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := netip.ParseAddr(args[0])
			if err != nil {
				return exitf(exitUnknown, "%q is not an IP address (want e.g. 203.0.113.7 or 2001:db8::7)", args[0])
			}
			if reason == "" {
				return exitf(exitUnknown, "-m is required: say why the address is banned")
			}
			req := api.BanRequest{Addr: addr.String(), Reason: reason}
			if cmd.Flags().Changed("for") {
				if dur <= 0 {
					return exitf(exitUnknown, "--for must be positive, got %s", dur)
				}
				req.Duration = dur.String()
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var b api.Ban
			if err := c.call(cmd.Context(), http.MethodPost, "/api/v1/bans", req, &b); err != nil {
				return c.fail(err, "ban "+addr.String())
			}
			what := "Banned"
			if b.DryRun {
				what = "Dry run: would ban"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s for %s, until %s (ban %d of this address).\n", what, b.Addr, b.Duration, stamp(b.Expires), b.Count)
			return nil
		},
	}
	add.Flags().DurationVar(&dur, "for", 0, "how long the ban lasts (default: the configured ban time, escalated)")
	add.Flags().StringVarP(&reason, "message", "m", "", "why (required; recorded in the audit log)")
	return add
}

func newBansRmCmd(f *apiFlags) *cobra.Command {
	var reason string
	rm := &cobra.Command{
		Use:     "rm ADDRESS",
		Aliases: []string{"lift"},
		Short:   "Lift a ban now",
		Example: `  portpatrol bans rm 203.0.113.7 -m "false positive: the new load balancer"`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := netip.ParseAddr(args[0])
			if err != nil {
				return exitf(exitUnknown, "%q is not an IP address", args[0])
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			path := "/api/v1/bans/" + url.PathEscape(addr.String())
			if reason != "" {
				path += "?reason=" + url.QueryEscape(reason)
			}
			if err := c.call(cmd.Context(), http.MethodDelete, path, nil, nil); err != nil {
				return c.fail(err, "ban of "+addr.String())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Lifted the ban of %s.\n", addr)
			return nil
		},
	}
	rm.Flags().StringVarP(&reason, "message", "m", "", "why (recorded in the audit log)")
	return rm
}
