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

func newLearnedCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "learned",
		Short: "List and forget the listeners serve's host watch has learned (on a running daemon)",
		Long: `With no configuration, serve watches this host's own listeners. Each one is probed from the
moment it is seen and learned once it has lived host_watch.learn_after (2m): from then on
its loss pages P0. A learned listener that is gone, whose process exited and was not
restarted, is retired after host_watch.forget_after (24h): no longer probed, never paged
again. Resolving its alert by hand keeps a gone listener quiet until it listens again;
forgetting it removes it for good. host_watch.ignore keeps ports, programs and cgroups
from being learned at all (see docs/hostwatch.md).
` + apiExitHelp,
		Example: `  portpatrol learned ls
  portpatrol learned ls --json
  portpatrol learned forget 127.0.0.1:1883
  portpatrol learned forget --all-gone`,
	}
	addAPIFlags(cmd, &f)
	cmd.AddCommand(newLearnedLsCmd(&f), newLearnedForgetCmd(&f))
	return cmd
}

func newLearnedLsCmd(f *apiFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the listeners being learned, learned, gone and retired",
		Long: `List the host watch's listeners: ADDR, PROCESS (pid), STATE and WHEN — when a listener being
learned will be learned, since when a learned one has listened, since when a gone one is
gone and when it will be retired (once its process exited and was not restarted).`,
		Example: `  portpatrol learned ls
  portpatrol learned ls --json | jq '.listeners[] | select(.state == "gone") | .addr'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var v struct {
				Listeners []api.LearnedListener `json:"listeners"`
			}
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/learned", nil, &v); err != nil {
				return c.fail(err, "host watch")
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			if len(v.Listeners) == 0 {
				fmt.Fprintln(out, "No listeners learned yet.")
				return nil
			}
			now := time.Now()
			var t table
			t.add("ADDR", "PROCESS", "STATE", "WHEN")
			for _, l := range v.Listeners {
				proc := l.Process
				if proc == "" {
					proc = "?"
				}
				if l.PID != 0 {
					proc += " (" + strconv.Itoa(l.PID) + ")"
				}
				t.add(l.Addr, proc, l.State, learnedWhen(l, now))
			}
			return t.write(out)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	return cmd
}

// learnedWhen says where a listener is in its life cycle, in words.
func learnedWhen(l api.LearnedListener, now time.Time) string {
	in := func(t *time.Time) string {
		if t == nil {
			return "?"
		}
		d := t.Sub(now).Round(time.Second)
		if d <= 0 {
			return "now"
		}
		return "in " + d.String()
	}
	ago := func(t *time.Time) string {
		if t == nil {
			return "?"
		}
		return now.Sub(*t).Round(time.Second).String() + " ago"
	}
	switch l.State {
	case "learning":
		return "learned " + in(l.LearnAt)
	case "learned":
		return "since " + ago(l.LearnedAt)
	case "gone":
		s := "gone " + ago(l.GoneSince)
		switch {
		case l.Muted:
			s += ", resolved by hand: quiet until it listens again"
		case l.ForgetAt != nil:
			s += ", process exited: retired " + in(l.ForgetAt)
		case l.Fate == "restarting":
			s += ", its program is being restarted"
		case l.Fate == "running":
			s += ", its process runs on without it"
		}
		return s
	case "retired":
		return "gone " + ago(l.GoneSince) + ", retired"
	}
	return ""
}

func newLearnedForgetCmd(f *apiFlags) *cobra.Command {
	var allGone bool
	cmd := &cobra.Command{
		Use:   "forget ADDR | --all-gone",
		Short: "Forget a learned listener, or every one that is gone or retired",
		Long: `Forget a learned listener: its alert is cleared, it is no longer probed, and a listener on
the same address later is learned afresh. ADDR is the bind address as learned ls shows
it (127.0.0.1:1883, [::1]:53, udp://127.0.0.1:53). --all-gone forgets every learned
listener that is gone or retired. Needs an operator token.
` + apiExitHelp,
		Example: `  portpatrol learned forget 127.0.0.1:1883
  portpatrol learned forget 0.0.0.0:9222
  portpatrol learned forget --all-gone`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case allGone && len(args) > 0:
				return exitf(exitUnknown, "give an address or --all-gone, not both")
			case !allGone && len(args) != 1:
				return exitf(exitUnknown, "give one address to forget (see portpatrol learned ls), or --all-gone")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var v struct {
				Forgotten []string `json:"forgotten"`
			}
			what := "learned listeners"
			if allGone {
				err = c.call(cmd.Context(), http.MethodPost, "/api/v1/learned/forget?gone=true", nil, &v)
			} else {
				what = "learned listener " + args[0]
				err = c.call(cmd.Context(), http.MethodDelete, "/api/v1/learned/"+url.PathEscape(args[0]), nil, &v)
			}
			if err != nil {
				return c.fail(err, what)
			}
			out := cmd.OutOrStdout()
			if len(v.Forgotten) == 0 {
				fmt.Fprintln(out, "No learned listener is gone; nothing forgotten.")
				return nil
			}
			for _, a := range v.Forgotten {
				fmt.Fprintf(out, "Forgot %s\n", a)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&allGone, "all-gone", false, "forget every learned listener that is gone or retired")
	return cmd
}
