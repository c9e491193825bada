package main

import (
	"context"
	"encoding/json"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/doctor"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/probe"
)

type doctorFlags struct {
	bind    string
	udp     bool
	timeout time.Duration
	json    bool
}

func newDoctorCmd() *cobra.Command {
	var f doctorFlags
	cmd := &cobra.Command{
		Use:   "doctor TARGET | --bind PORT|ADDR:PORT",
		Short: "Find out why a connection (or a bind) fails",
		Long: `Work from a failed connection to its cause, step by step, showing each step's
evidence: name resolution; the route and source address; the connect result (refused,
timeout, reset); for an address of this host, whether anything listens and on which
bind address (the classic "listens on 127.0.0.1 only"); the accept queue against the
backlog and the kernel's ListenOverflows; the owning process and its open files against
ulimit -n; and nftables rules that drop or reject the port.

With --bind, find out why a service cannot bind a port: who holds it, whether the
address belongs to this host, and whether the port is privileged (below
net.ipv4.ip_unprivileged_port_start) and so needs CAP_NET_BIND_SERVICE. When no
holder is visible, doctor binds the port itself for an instant to confirm.

The report ends with "Likely cause:" and "Next step:".
Exit status: 0 when all is well, 2 when a problem was found, 3 on bad input.`,
		Example: `  # Why is Redis refusing?
  portpatrol doctor 127.0.0.1:6379

  # A name, IPv6, or any target URL that check takes
  portpatrol doctor db.internal:5432
  portpatrol doctor '[::1]:8080'
  portpatrol doctor postgres://127.0.0.2:5432

  # Why does my service fail to bind port 80 / 127.0.0.1:8080 / UDP 53?
  portpatrol doctor --bind 80
  portpatrol doctor --bind 127.0.0.1:8080
  portpatrol doctor --bind 53 --udp

  # Machine-readable
  portpatrol doctor --json 127.0.0.1:3306 | jq -r .likely_cause`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.bind != "" && len(args) > 0 || f.bind == "" && len(args) != 1 {
				return exitf(exitUnknown, "give one TARGET, or --bind PORT without a target")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.bind, "bind", "", "diagnose a bind failure of PORT or ADDR:PORT instead of a connection")
	fl.BoolVar(&f.udp, "udp", false, "with --bind: the port is UDP")
	fl.DurationVar(&f.timeout, "timeout", 3*time.Second, "give up on the connection attempt after this long")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	return cmd
}

func runDoctor(ctx context.Context, out io.Writer, f doctorFlags, args []string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.timeout <= 0 {
		return exitf(exitUnknown, "--timeout must be positive, got %s", f.timeout)
	}
	d := doctor.New(doctor.Config{Timeout: f.timeout, Classify: probe.Classify})
	var r *doctor.Report
	if f.bind != "" {
		addr, port, err := parsePortSpec(f.bind)
		if err != nil {
			return exitf(exitUnknown, "--bind: %v", err)
		}
		proto := inventory.TCP
		if f.udp {
			proto = inventory.UDP
		}
		r = d.Bind(ctx, proto, addr, port)
	} else {
		t, err := patrol.ParseTarget(args[0])
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		r = d.Connect(ctx, t.Host, uint16(t.Port))
	}
	if f.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else if _, err := r.WriteTo(out); err != nil {
		return err
	}
	if r.Problem {
		return exitCode(exitCritical)
	}
	return nil
}
