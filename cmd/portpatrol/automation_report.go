package main

import (
	"bufio"
	"context"
	"encoding/json"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/store"
)

func newAutomationReportCmd() *cobra.Command {
	var (
		f      auditLogFlags
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "The permission review: what playbooks may do and what automation did",
		Long: `Print the permission review from the configuration and the store's audit chain: which
playbooks could do what (actions, tiers, modes, rollout, who must approve), and, from
the chain entries of the last --since, what ran, who approved and denied, what was
rolled back, which breakers and limits stopped automation, and every break-glass,
flagged for review. The chain is verified first and the review says whether it is
intact. It reads the store directly, so it needs no running daemon: the same -c,
--data-dir or --db as audit-log. A running daemon serves the same review at
GET /api/v1/automation/report?since=30d.`,
		Example: `  portpatrol automation report -c /etc/portpatrol/portpatrol.yaml --since 30d
  portpatrol automation report -c portpatrol.yaml --data-dir /var/lib/portpatrol --since 7d --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := parseSince(since)
			if err != nil {
				return exitf(exitUnknown, "--since %v", err)
			}
			cfg := config.Default()
			if f.config != "" {
				if cfg, err = config.Load(f.config); err != nil {
					return exitf(exitUnknown, "%v", err)
				}
			}
			return withAuditChain(cmd.Context(), f, func(ctx context.Context, s store.AuditChainStore, where string) error {
				l, err := auditlog.New(auditlog.Config{Store: s})
				if err != nil {
					return err
				}
				now := time.Now()
				rv := automation.NewReview(cfg.Automation, now.Add(-window), now)
				rep, err := l.Verify(ctx)
				if err != nil {
					return exitf(exitUnknown, "verify %s: %v", where, err)
				}
				rv.SetChain(rep)
				if err := l.Entries(ctx, now.Add(-window), func(e auditlog.Entry) error { rv.Add(e); return nil }); err != nil {
					return exitf(exitUnknown, "read %s: %v", where, err)
				}
				rv.Finish()
				w := bufio.NewWriter(cmd.OutOrStdout())
				if asJSON {
					enc := json.NewEncoder(w)
					enc.SetIndent("", "  ")
					err = enc.Encode(rv)
				} else {
					err = rv.WriteText(w)
				}
				if err != nil {
					return err
				}
				return w.Flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.config, "config", "c", "", "configuration file: its playbooks, and its storage: setting names the database")
	fl.StringVar(&f.dataDir, "data-dir", "", "state directory of the SQLite store (as for serve)")
	fl.StringVar(&f.db, "db", "", "the database itself: a SQLite file, or a postgres:// DSN")
	fl.StringVar(&since, "since", "30d", "how far back to review: 30d, 36h")
	fl.BoolVar(&asJSON, "json", false, "print the review as JSON")
	return cmd
}
