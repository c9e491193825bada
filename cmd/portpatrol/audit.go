package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/portpatrol/portpatrol/internal/audit"
	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/inventory"
	"github.com/portpatrol/portpatrol/internal/patrol"
	"github.com/portpatrol/portpatrol/internal/scan"
	"github.com/spf13/cobra"
)

type auditFlags struct {
	policy      string
	json        bool
	junit       string
	allow       []string
	at          string
	noInventory bool
	rate        float64
}

func newAuditCmd() *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "audit --policy FILE [TARGETS...]",
		Short: "Check hosts against a declared port policy",
		Long: `audit scans the hosts a port policy names (or the TARGETS given, which the policy must
name) and reports every open port no rule allows, every required port that is closed,
wrong owners, internal services bound beyond loopback, and expired exceptions. For this
host (local, localhost, 127.0.0.1) it also reads the local socket inventory, so owners
and bind addresses are checked and listeners on other addresses are seen.

Exit codes follow the Nagios plugin convention, as kube lint's and check's do: 0 no
findings, 1 findings of P2 or P3 only, 2 a P0 or P1 finding, 3 bad input (policy,
target, allow list).
See docs/security.md for the policy format.`,
		Example: `  # Audit everything the policy names; JUnit for the CI system
  portpatrol audit --policy ports.yaml --junit audit.xml

  # Only this host, as JSON
  portpatrol audit --policy ports.yaml local --json

  # Which exceptions will have run out by the end of the year?
  portpatrol audit --policy ports.yaml --at 2026-12-31`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAudit(cmd.Context(), cmd.OutOrStdout(), f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "the port policy (YAML)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
	fl.StringVar(&f.junit, "junit", "", "also write a JUnit XML report to FILE")
	fl.StringArrayVar(&f.allow, "allow", nil, "CIDR that may be scanned (repeatable; default 127.0.0.0/8 and ::1/128)")
	fl.StringVar(&f.at, "at", "", "judge exception expiry as of this date (2026-12-31) or RFC 3339 time instead of now")
	fl.BoolVar(&f.noInventory, "no-inventory", false, "do not read the local socket inventory; judge by the scan alone")
	fl.Float64Var(&f.rate, "rate", 0, "at most this many connects per second (0: no limit)")
	_ = cmd.MarkFlagRequired("policy")
	return cmd
}

func runAudit(ctx context.Context, out io.Writer, f auditFlags, targets []string) error {
	p, err := audit.Load(f.policy)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	allow, err := allowList(f.allow)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	now := time.Now()
	if f.at != "" {
		if now, err = parseAt(f.at); err != nil {
			return exitf(exitUnknown, "--at: %v", err)
		}
	}
	var inv audit.Inventory
	if !f.noInventory {
		inv = daemon.AuditInventory{Inventory: inventory.New(inventory.Config{})}
	}
	sc := daemon.AuditScanner{Scanner: &scan.Scanner{Allow: allow, Rate: f.rate}}
	rep, err := audit.Run(ctx, p, sc, inv, now, targets...)
	if err != nil {
		var te *audit.TargetError
		var na *scan.NotAllowedError
		var tg *scan.TargetError
		if errors.As(err, &te) || errors.As(err, &na) || errors.As(err, &tg) {
			return exitf(exitUnknown, "%v", err)
		}
		return exitf(exitUnknown, "audit: %v", err)
	}
	if f.junit != "" {
		if err := writeFile(f.junit, func(w io.Writer) error { return audit.WriteJUnit(w, rep) }); err != nil {
			return exitf(exitUnknown, "--junit: %v", err)
		}
	}
	if f.json {
		err = audit.WriteJSON(out, rep)
	} else {
		err = audit.WriteText(out, rep)
	}
	if err != nil {
		return exitf(exitUnknown, "write: %v", err)
	}
	return exitCode(findingsExit(rep.Findings, func(f audit.Finding) patrol.Severity { return f.Severity }))
}

// findingsExit is the one exit convention of every command that reports findings
// (audit, kube lint): 2 (CRITICAL) for a P0 or P1, 1 (WARNING) for P2 and P3 only, 0
// for none, as check's Nagios codes.
func findingsExit[F any](fs []F, severity func(F) patrol.Severity) int {
	code := exitOK
	for _, f := range fs {
		if severity(f) <= patrol.P1 {
			return exitCritical
		}
		code = exitWarning
	}
	return code
}

func parseAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2026-12-31) or an RFC 3339 time", s)
	}
	return t, nil
}

func writeFile(name string, write func(io.Writer) error) error {
	file, err := os.Create(name)
	if err != nil {
		return err
	}
	err = write(file)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return err
}
