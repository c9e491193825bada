// Command portpatrol keeps watch over every door of a fleet: it checks ports with
// protocol-aware probes, serves Prometheus metrics and a blackbox-compatible /probe, and
// answers "who listens where" on the local host.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes follow the Nagios plugin convention, so Icinga, Zabbix, Nagios and shell
// scripts can use portpatrol's verdicts as they are.
const (
	exitOK       = 0
	exitWarning  = 1
	exitCritical = 2
	exitUnknown  = 3 // bad input, or the check could not be run
)

// exitError carries a process exit code. An empty msg prints nothing (the command has
// already said what it had to).
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exitf returns an error that makes portpatrol exit with code after printing the message.
func exitf(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// exitCode returns an error that sets the exit code without a message.
func exitCode(code int) error { return &exitError{code: code} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, "portpatrol:", ee.msg)
		}
		return ee.code
	}
	// Flag and argument errors from cobra: bad input.
	fmt.Fprintln(stderr, "portpatrol:", err)
	return exitUnknown
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "portpatrol",
		Short: "Keep watch over every door (port) of a fleet",
		Long: `portpatrol keeps watch over every door of a fleet: it knows which ports should be
open, checks them with protocol-aware probes, serves Prometheus metrics and a
blackbox_exporter-compatible /probe endpoint, and tells you who listens where.`,
		Example: `  # Is it open? One line per target; Nagios exit codes (0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN)
  portpatrol check 127.0.0.1:6379 https://example.internal/healthz

  # Run the daemon on its defaults: API, dashboard and /metrics on 127.0.0.1:9115
  portpatrol serve

  # Validate a config file without running it
  portpatrol config check portpatrol.yaml`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version, as blackbox_exporter and most daemons take it, prints what the
	// version command prints. The text is the template: escape what could read as one.
	b := buildInfo()
	root.Version = b.Version
	root.SetVersionTemplate(strings.NewReplacer("{{", "{{`{{`}}").Replace(b.String()))
	root.AddCommand(
		newCheckCmd(),
		newServeCmd(),
		newConfigCmd(),
		newLsCmd(),
		newWhoCmd(),
		newDoctorCmd(),
		newScanCmd(),
		newAuditCmd(),
		newKubeCmd(),
		newTokenCmd(),
		newAlertsCmd(),
		newAckCmd(),
		newResolveCmd(),
		newLearnedCmd(),
		newSilenceCmd(),
		newBansCmd(),
		newClusterCmd(),
		newAgentCmd(),
		newNotifyCmd(),
		newAnomalyCmd(),
		newReportCmd(),
		newAuditLogCmd(),
		newVersionCmd(),
		newManCmd(),
	)
	root.AddCommand(automationCmds()...)
	return root
}
