package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
)

type serveFlags struct {
	config    string
	dataDir   string
	listen    string
	logLevel  string
	logFormat string
	cluster   config.Cluster // --cluster, --name, --location
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the daemon: watch this host, probe targets, alert, serve the dashboard and API",
		Long: `Run the daemon. With no config it watches this host's own listeners (a vanished one
is a P0 within a second); with -c it also probes the configured targets on the
scheduler, turns results into P0–P3 incidents, notifies through a durable outbox, and
runs scheduled exposure audits. State is kept in SQLite under --data-dir (or in
PostgreSQL, storage: postgres://…). On 127.0.0.1:9115 unless told otherwise it serves:

  /              the dashboard
  /api/v1/       the JSON API (bearer tokens; see portpatrol token create)
  /metrics       the daemon's own metrics (portpatrol_*)
  /probe         blackbox_exporter-compatible: /probe?target=HOST:PORT&module=tcp_connect
  /-/healthy     200 while the process runs
  /-/ready       200 once the configuration is loaded and the scheduler runs
  /-/reload      POST with an admin token: reload the configuration (as does SIGHUP)
  /api/v1/chatops/slack, /api/v1/chatops/mattermost
                 chat commands (ack, resolve, silence, status, who) once chatops: is
                 configured; see docs/chatops.md

Requests must name this server in their Host header: the listen address, localhost,
127.0.0.1, [::1], or a name under api.hosts (on 0.0.0.0 or [::] also any IP address
and this machine's host name); others get 421. Browsers' cross-site writes are refused.
See docs/security.md, "Securing portpatrol itself".

The same is served on a Unix socket, portpatrol.sock in --data-dir (api.socket: PATH or
off), mode 0600: root and the daemon's own user are admin there without a token (the
peer's uid is checked), so "portpatrol alerts" as root on this host needs no token.

A reload is applied whole or not at all: a bad file keeps the old configuration
running and says why in the log and in portpatrol_config_last_reload_successful.
Targets, modules, labels, alerting, notify and audits change on reload (open incidents
carry over); storage, retention, host_watch, kubernetes, api, scheduler and listen take
effect at the next start (a reload that changes them says so in the log).

blackbox_exporter's flag names are accepted for a drop-in start: --config.file
(--config), --web.listen-address (--listen), --log.level and --log.format (logfmt is
text). A blackbox.yml is a valid config file; config check lists the settings in it
that portpatrol reads but does not act on.

With --cluster (or cluster.url in the file) several serve processes and agents share the
targets through NATS JetStream: each probes its share in its location, one holds the
alerting lease, and a target is down when a quorum of its locations agree. See
docs/scale-out.md and portpatrol cluster status.`,
		Example: `  # On its defaults: watch this host; dashboard, API and /metrics on 127.0.0.1:9115
  portpatrol serve

  # With targets, on all interfaces (list the names clients use under api.hosts)
  portpatrol serve -c /etc/portpatrol/portpatrol.yaml --listen 0.0.0.0:9115

  # Cluster mode: share the targets with the other members over NATS JetStream
  portpatrol serve -c /etc/portpatrol/portpatrol.yaml --cluster nats://127.0.0.1:4222 --location eu-1

  # Reload after editing the file
  kill -HUP $(pidof portpatrol)
  curl -X POST -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:9115/-/reload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
			if err != nil {
				return exitf(exitUnknown, "%v", err)
			}
			return serve(f, logger)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "configuration file (YAML); see docs/config.md")
	fl.StringVar(&f.dataDir, "data-dir", "", "state directory for the SQLite store (default $PORTPATROL_DATA_DIR, /var/lib/portpatrol as root, else $XDG_STATE_HOME/portpatrol)")
	fl.StringVar(&f.listen, "listen", "", "address to serve on (default from config, else "+config.DefaultListen+")")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fl.StringVar(&f.cluster.URL, "cluster", "", "cluster mode: the NATS servers (nats://HOST:4222[,nats://HOST2:4222]); overrides cluster.url")
	fl.StringVar(&f.cluster.Location, "location", "", "cluster mode: where this member probes from (overrides cluster.location; default \"default\")")
	fl.StringVar(&f.cluster.Name, "name", "", "cluster mode: this member's ID (overrides cluster.name; default the host name and a random suffix)")
	fl.SetNormalizeFunc(blackboxFlagNames)
	return cmd
}

// blackboxAliases are blackbox_exporter's flag names for serve's flags, so that a
// unit file or container command written for blackbox_exporter runs portpatrol as it
// is. They are accepted, not listed in --help.
var blackboxAliases = map[string]string{
	"config.file":        "config",
	"web.listen-address": "listen",
	"log.level":          "log-level",
	"log.format":         "log-format",
}

func blackboxFlagNames(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if n, ok := blackboxAliases[name]; ok {
		return pflag.NormalizedName(n)
	}
	return pflag.NormalizedName(name)
}

// serve runs the daemon until SIGINT or SIGTERM; SIGHUP reloads its file.
func serve(f serveFlags, logger *slog.Logger) error {
	startProfiler(logger)
	d, err := daemon.New(daemon.Config{Path: f.config, DataDir: f.dataDir, Logger: logger, Cluster: f.cluster, Version: buildInfo().Version})
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	// Loading a large configuration leaves garbage several times the size of what is
	// kept (the YAML tree, the positions error messages quote): hand it back to the
	// system now rather than over the scavenger's minutes, so the resident size the
	// fleet's monitoring sees from the start is what the daemon holds.
	debug.FreeOSMemory()
	defer func() {
		if err := d.Close(); err != nil {
			logger.Error("close", "err", err)
		}
	}()
	addr := d.Listen()
	if f.listen != "" {
		addr = f.listen
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return exitf(exitUnknown, "listen on %s: %v (is another portpatrol or blackbox_exporter running? try --listen 127.0.0.1:PORT)", addr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	followLiveHeap(ctx, logger)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = d.ReloadFile() // logged and counted by the daemon
			}
		}
	}()
	return d.Run(ctx, ln)
}

func newLogger(w interface{ Write([]byte) (int, error) }, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text", "logfmt": // logfmt is blackbox_exporter's name for it
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
