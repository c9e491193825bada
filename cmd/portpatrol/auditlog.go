package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/store"
)

type auditLogFlags struct {
	config  string
	dataDir string
	db      string
}

// newAuditLogCmd verifies and exports the hash-chained log of automation decisions.
func newAuditLogCmd() *cobra.Command {
	var f auditLogFlags
	cmd := &cobra.Command{
		Use:   "audit-log",
		Short: "Verify and export the tamper-evident log of automation decisions",
		Long: `Every decision portpatrol's automation makes — including doing nothing, approvals,
denials, expiries, executions, verifications, rollbacks and bans — is an entry in an
append-only chain in the store. Each entry's hash covers its sequence number, its time,
its record and the previous entry's hash, so an entry edited, deleted, inserted or
reordered afterwards breaks the chain where it was done (see docs/auditlog.md).

The store is the one serve uses: the same --data-dir, the storage: of -c, or --db.`,
		Example: `  portpatrol audit-log verify
  portpatrol audit-log verify -c /etc/portpatrol/portpatrol.yaml
  portpatrol audit-log export --since 24h > decisions.jsonl`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.config, "config", "c", "", "configuration file (its storage: setting names the database)")
	pf.StringVar(&f.dataDir, "data-dir", "", "state directory of the SQLite store (as for serve)")
	pf.StringVar(&f.db, "db", "", "the database itself: a SQLite file, or a postgres:// DSN")
	cmd.AddCommand(newAuditLogVerifyCmd(&f), newAuditLogExportCmd(&f))
	return cmd
}

func newAuditLogVerifyCmd(f *auditLogFlags) *cobra.Command {
	var (
		pin, file string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the whole chain; exit non-zero naming the first bad entry",
		Long: `Walk the whole chain in sequence order and check every entry: its sequence number
follows the previous one, its hash matches its content, it links to the previous
entry's hash, its time does not go back, and its record is in canonical form.

Exit 0 prints "chain intact: N entries, head SEQ HASH". A broken chain exits 2 and names
the first bad entry and what was done to it: edited, deleted, inserted or reordered.
Exit 3 when the store cannot be read.

The chain alone cannot show that its last entries were deleted, or that it was
rewritten whole. --pin SEQ:HASH checks against a head recorded earlier (from the
portpatrol_audit_chain_head_info metric, serve's hourly log line, or an earlier
verify): the chain must still hold entry SEQ with that hash.

--file checks an export of the whole chain (audit-log export with no --since) instead of
the store, such as a copy kept elsewhere.`,
		Example: `  portpatrol audit-log verify
  portpatrol audit-log verify --db /var/lib/portpatrol/portpatrol.db
  portpatrol audit-log verify --db postgres://portpatrol@db.internal/portpatrol
  portpatrol audit-log verify --pin 1042:5be0a3c2d6f1e8a79c0b4d2e6f8a1c3b5d7e9f0a2c4e6b8d0f1a3c5e7b9d1f3a
  portpatrol audit-log verify --json | jq .problem
  portpatrol audit-log verify --file decisions.jsonl --pin 1042:5be0a3c2d6f1e8a79c0b4d2e6f8a1c3b5d7e9f0a2c4e6b8d0f1a3c5e7b9d1f3a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v auditlog.Verifier
			if pin != "" {
				seq, hash, ok := strings.Cut(pin, ":")
				n, err := strconv.ParseInt(seq, 10, 64)
				if !ok || err != nil || n < 1 || len(hash) != 64 {
					return exitf(exitUnknown, "--pin %q: want SEQ:HASH, a sequence number and the 64 hex digits of its hash", pin)
				}
				v.Pin = auditlog.Head{Seq: n, Hash: strings.ToLower(hash)}
			}
			report := func(ctx context.Context, s auditlog.Pages, where string) error {
				rep, err := v.Verify(ctx, s)
				if err != nil {
					return exitf(exitUnknown, "verify %s: %v", where, err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					if err := enc.Encode(verifyJSON(rep)); err != nil {
						return err
					}
				} else if rep.Intact() {
					fmt.Fprintf(out, "chain intact: %d entries, head %s\n", rep.Entries, rep.Head)
				} else {
					fmt.Fprintf(out, "chain broken at entry %d (%s): %s\n", rep.Problem.Seq, rep.Problem.What, rep.Problem.Detail)
					fmt.Fprintf(out, "%s; checked %s\n", goodBefore(rep.Entries), where)
				}
				if !rep.Intact() {
					return exitCode(exitCritical)
				}
				return nil
			}
			if file != "" {
				if f.db != "" || f.config != "" || f.dataDir != "" {
					return exitf(exitUnknown, "--file verifies an export: give it without -c, --data-dir or --db")
				}
				in := cmd.InOrStdin()
				if file != "-" {
					fh, err := os.Open(file)
					if err != nil {
						return exitf(exitUnknown, "%v", err)
					}
					defer fh.Close()
					in = fh
				}
				ctx := cmd.Context()
				if ctx == nil {
					ctx = context.Background()
				}
				return report(ctx, auditlog.NewExportReader(in), file)
			}
			return withAuditChain(cmd.Context(), *f, func(ctx context.Context, s store.AuditChainStore, where string) error {
				return report(ctx, s, where)
			})
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "verify an export of the whole chain (JSON Lines; - for standard input) instead of the store")
	cmd.Flags().StringVar(&pin, "pin", "", "a head recorded earlier, SEQ:HASH, that the chain must still hold")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// goodBefore says how many entries before the first bad one are intact.
func goodBefore(n int64) string {
	switch n {
	case 0:
		return "no entry before it"
	case 1:
		return "entry 1 before it is intact"
	}
	return fmt.Sprintf("entries 1 to %d before it are intact", n)
}

// verifyJSON is the report of verify --json.
func verifyJSON(rep auditlog.Report) any {
	type problem struct {
		Seq    int64  `json:"seq"`
		What   string `json:"what"`
		Detail string `json:"detail"`
	}
	v := struct {
		Intact  bool          `json:"intact"`
		Entries int64         `json:"entries"`
		Head    auditlog.Head `json:"head"`
		Problem *problem      `json:"problem,omitempty"`
	}{Intact: rep.Intact(), Entries: rep.Entries, Head: rep.Head}
	if p := rep.Problem; p != nil {
		v.Problem = &problem{Seq: p.Seq, What: string(p.What), Detail: p.Detail}
	}
	return v
}

func newAuditLogExportCmd(f *auditLogFlags) *cobra.Command {
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the chain as JSON Lines, one entry per line",
		Long: `Write the chain to standard output as JSON Lines, one entry per line in sequence order:
{"seq":…,"time":…,"record":{…},"prev":…,"hash":…}. The record is written exactly as
stored, so each line's hash can be recomputed from the line alone (docs/auditlog.md
shows how). --since keeps the entries of the last DURATION. Export does not verify:
run verify for that.`,
		Example: `  portpatrol audit-log export > decisions.jsonl
  portpatrol audit-log export --since 24h | jq -c 'select(.record.kind == "approval")'
  portpatrol audit-log export --since 720h --db /var/lib/portpatrol/portpatrol.db > last-30-days.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since < 0 {
				return exitf(exitUnknown, "--since %s: want a positive duration such as 24h", since)
			}
			return withAuditChain(cmd.Context(), *f, func(ctx context.Context, s store.AuditChainStore, where string) error {
				l, err := auditlog.New(auditlog.Config{Store: s})
				if err != nil {
					return err
				}
				var from time.Time
				if since > 0 {
					from = time.Now().Add(-since)
				}
				w := bufio.NewWriter(cmd.OutOrStdout())
				if err := l.ExportSince(ctx, w, from); err != nil {
					return exitf(exitUnknown, "export %s: %v", where, err)
				}
				return w.Flush()
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only the entries of the last DURATION, such as 24h (default: all)")
	return cmd
}

// withAuditChain opens the store the flags name and runs fn with its audit chain.
func withAuditChain(ctx context.Context, f auditLogFlags, fn func(ctx context.Context, s store.AuditChainStore, where string) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.db != "" && (f.config != "" || f.dataDir != "") {
		return exitf(exitUnknown, "--db names the database itself: give it without -c or --data-dir")
	}
	cfg := config.Default()
	if f.config != "" {
		c, err := config.Load(f.config)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		cfg = c
	}
	if f.db != "" {
		if !strings.HasPrefix(f.db, "postgres://") && !strings.HasPrefix(f.db, "postgresql://") {
			// Opening a file that is not there would create an empty, intact chain.
			if _, err := os.Stat(f.db); errors.Is(err, fs.ErrNotExist) {
				return exitf(exitUnknown, "--db %s: no such file", f.db)
			}
		}
		cfg.Storage = f.db
	}
	db, where, err := daemon.OpenStore(ctx, cfg, f.dataDir)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	defer db.Close()
	s, ok := db.(store.AuditChainStore)
	if !ok {
		return exitf(exitUnknown, "the store %s keeps no audit chain", where)
	}
	return fn(ctx, s, where)
}
