package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/agent"
	"github.com/portpatrol/portpatrol/internal/api"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
)

func newClusterCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Show the cluster a running daemon belongs to",
		Example: `  portpatrol cluster status
  portpatrol cluster status --json`,
		Long: `In cluster mode (serve --cluster, or cluster.url) serve processes and agents share the
targets through NATS JetStream. "cluster status" asks the local daemon for the cluster as
it sees it: the live members by location with the targets each owns, the alerting leader
and its fencing token, and the results waiting for the leader. See docs/scale-out.md.
` + apiExitHelp,
		Args: cobra.NoArgs,
	}
	addAPIFlags(cmd, &f)
	var asJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Members, locations, owned targets, leader and lag",
		Example: `  portpatrol cluster status
  portpatrol cluster status --json | jq '.members[] | select(.location == "eu-1")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := c.call(cmd.Context(), http.MethodGet, "/api/v1/cluster", nil, &raw); err != nil {
				return c.fail(err, "cluster status")
			}
			out := cmd.OutOrStdout()
			if asJSON {
				_, err := fmt.Fprintln(out, string(raw))
				return err
			}
			var st api.ClusterStatus
			if err := json.Unmarshal(raw, &st); err != nil {
				return exitf(exitUnknown, "unexpected answer: %v", err)
			}
			return printClusterStatus(out, st, time.Now())
		},
	}
	status.Flags().BoolVar(&asJSON, "json", false, "print the daemon's JSON answer")
	cmd.AddCommand(status)
	return cmd
}

func printClusterStatus(out interface{ Write([]byte) (int, error) }, st api.ClusterStatus, now time.Time) error {
	conn := "connected"
	if !st.Connected {
		conn = "NOT CONNECTED to NATS (probing its last share, buffering results)"
	}
	leader := st.Leader
	if leader == "" {
		leader = "none (no member holds the alerting lease)"
	} else {
		leader = fmt.Sprintf("%s (token %d)", leader, st.Token)
	}
	fmt.Fprintf(out, "member    %s in %s, %s\n", st.Self, st.Location, conn)
	fmt.Fprintf(out, "leader    %s\n", leader)
	fmt.Fprintf(out, "targets   %d known, epoch %d, lag %d results\n", st.Targets, st.Epoch, st.Lag)
	fmt.Fprintf(out, "results   %d published, %d buffered, %d dropped, %d fenced\n\n", st.Published, st.Buffered, st.Dropped, st.Fenced)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "MEMBER\tLOCATION\tROLE\tOWNED\tUP\tVERSION")
	for _, m := range st.Members {
		id := m.ID
		if m.Leader {
			id += " *"
		}
		up := "-"
		if !m.Started.IsZero() {
			up = now.Sub(m.Started).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\n", id, m.Location, m.Role, m.Owned, up, m.Version)
	}
	return w.Flush()
}

func newAgentCmd() *cobra.Command {
	var cl config.Cluster
	var listen, logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Probe from a remote location for a cluster: no store, no dashboard",
		Long: `Run a probe-only member of a cluster. An agent joins the cluster over NATS, takes the
targets the alerting leader publishes (the defaults, scheduler, modules and targets
sections of its configuration, nothing else), probes the share it owns in its location
and sends every result to the cluster's stream; the leader judges it with the other
locations' results. While NATS is unreachable it keeps probing its last share and
buffers the results (--buffer, oldest dropped first, counted in
portpatrol_cluster_results_dropped_total). See docs/scale-out.md.`,
		Example: `  # A probe location of its own, next to serve processes elsewhere
  portpatrol agent --cluster nats://nats.example.net:4222 --location ap-1

  # With its metrics on a local port
  portpatrol agent --cluster nats://127.0.0.1:4222 --location eu-2 --listen 127.0.0.1:9116`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			if cl.URL == "" {
				return exitf(exitUnknown, "--cluster is required: the NATS servers, e.g. --cluster nats://127.0.0.1:4222")
			}
			for _, f := range []struct{ flag, v string }{{"--name", cl.Name}, {"--location", cl.Location}, {"--prefix", cl.Prefix}} {
				if f.v != "" {
					if msg := config.CheckClusterName(f.v); msg != "" {
						return exitf(exitUnknown, "%s %s", f.flag, msg)
					}
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			a, err := agent.New(ctx, agent.Config{Cluster: daemon.ClusterConfig(cl, "agent", buildInfo().Version), Listen: listen, Logger: logger})
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			return a.Run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&cl.URL, "cluster", "", "the NATS servers (nats://HOST:4222[,nats://HOST2:4222]); required")
	fl.StringVar(&cl.Location, "location", "", "where this agent probes from (default \"default\")")
	fl.StringVar(&cl.Name, "name", "", "this member's ID (default the host name and a random suffix)")
	fl.StringVar(&cl.Prefix, "prefix", "", "the cluster's names in NATS, as its serve members' cluster.prefix (default portpatrol)")
	fl.DurationVar(&cl.Heartbeat, "heartbeat", 0, "how often it announces itself (default 2s; as the cluster's serve members)")
	fl.DurationVar(&cl.TTL, "ttl", 0, "how long a silent member stays a member (default 10s; as the cluster's serve members)")
	fl.IntVar(&cl.Buffer, "buffer", 0, "results kept while NATS is unreachable (default 100000)")
	fl.StringVar(&listen, "listen", "", "serve /metrics and /-/ready on this address (default: none)")
	fl.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}
