package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/config"
	"github.com/portpatrol/portpatrol/internal/daemon"
	"github.com/portpatrol/portpatrol/internal/store"
)

type tokenFlags struct {
	config  string
	dataDir string
}

// newTokenCmd manages API tokens in the store that serve uses.
func newTokenCmd() *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use: "token",
		Example: `  portpatrol token create --role operator --name alice
  portpatrol token list
  portpatrol token revoke b3e88bd876594700`,
		Short: "Create, list and revoke API tokens",
		Long: `Manage the bearer tokens of the HTTP API and the dashboard. Roles:

  viewer    read targets, history, alerts, silences, deliveries
  operator  also acknowledge and resolve alerts, create and expire silences
  admin     also manage tokens

Only a token's SHA-256 is stored: its secret is printed once, by create.`,
		Args: cobra.NoArgs,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.config, "config", "c", "", "configuration file (its storage: setting names the database)")
	pf.StringVar(&f.dataDir, "data-dir", "", "state directory of the SQLite store (as for serve)")

	var (
		name, role    string
		quiet, asJSON bool
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a token and print its secret once",
		Long: `Create a token in the store serve uses (the same --data-dir, or the storage: of -c)
and print its secret once. The store written to is named in the output (on stderr with
--quiet), so a token made for the wrong data directory is easy to spot.`,
		Example: `  portpatrol token create --role operator --name alice
  TOKEN=$(portpatrol token create --quiet --role operator --name ci)
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:9115/api/v1/alerts
  portpatrol token create --json --name grafana | jq -r .secret`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return exitf(exitUnknown, "--name is required: it is what writes made with the token are recorded under")
			}
			if quiet && asJSON {
				return exitf(exitUnknown, "--quiet and --json go separately: --quiet prints the secret alone, --json an object")
			}
			return withBackend(cmd.Context(), f, func(ctx context.Context, db daemon.Store, where string) error {
				t, secret, err := store.NewToken(name, store.Role(role), creator(), time.Now())
				if err != nil {
					return exitf(exitUnknown, "%v", err)
				}
				if err := db.CreateToken(ctx, t); err != nil {
					return exitf(exitUnknown, "create token: %v", err)
				}
				out := cmd.OutOrStdout()
				switch {
				case quiet:
					fmt.Fprintln(out, secret)
					fmt.Fprintf(cmd.ErrOrStderr(), "Created %s token %q (id %s) in %s.\n", t.Role, t.Name, t.ID, where)
				case asJSON:
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(struct {
						ID     string `json:"id"`
						Name   string `json:"name"`
						Role   string `json:"role"`
						Secret string `json:"secret"`
						Store  string `json:"store"`
					}{t.ID, t.Name, string(t.Role), secret, where})
				default:
					fmt.Fprintf(out, "Created %s token %q (id %s) in %s. Its secret, shown only now:\n\n%s\n\n", t.Role, t.Name, t.ID, where, secret)
					fmt.Fprintln(out, "Send it as: Authorization: Bearer <secret>")
				}
				return nil
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "who or what holds the token (recorded with every write)")
	create.Flags().StringVar(&role, "role", string(store.RoleViewer), "viewer, operator or admin")
	create.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the secret (for TOKEN=$(…)); the store goes to stderr")
	create.Flags().BoolVar(&asJSON, "json", false, "print id, name, role, secret and store as a JSON object")

	list := &cobra.Command{
		Use:     "list",
		Example: `  portpatrol token list --data-dir /var/lib/portpatrol`,
		Short:   "List tokens, revoked ones included",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBackend(cmd.Context(), f, func(ctx context.Context, db daemon.Store, _ string) error {
				ts, err := db.ListTokens(ctx)
				if err != nil {
					return exitf(exitUnknown, "list tokens: %v", err)
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tROLE\tCREATED\tLAST USED\tREVOKED")
				for _, t := range ts {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, stamp(t.CreatedAt), stamp(t.LastUsed), stamp(t.RevokedAt))
				}
				return w.Flush()
			})
		},
	}

	revoke := &cobra.Command{
		Use: "revoke ID",
		Example: `  portpatrol token list          # find the ID
  portpatrol token revoke b3e88bd876594700`,
		Short: "Revoke a token at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withBackend(cmd.Context(), f, func(ctx context.Context, db daemon.Store, _ string) error {
				if err := db.RevokeToken(ctx, args[0], time.Now()); err != nil {
					return exitf(exitUnknown, "revoke token %s: %v", args[0], err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Revoked token %s.\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// withBackend opens the store serve uses, runs fn with it and its description, and
// closes it.
func withBackend(ctx context.Context, f tokenFlags, fn func(ctx context.Context, db daemon.Store, where string) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg := config.Default()
	if f.config != "" {
		c, err := config.Load(f.config)
		if err != nil {
			return exitf(exitUnknown, "%v", err)
		}
		cfg = c
	}
	db, where, err := daemon.OpenStore(ctx, cfg, f.dataDir)
	if err != nil {
		return exitf(exitUnknown, "%v", err)
	}
	defer db.Close()
	return fn(ctx, db, where)
}

// creator names who ran the command, for the token's CreatedBy.
func creator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return fmt.Sprintf("cli:uid-%d", os.Getuid())
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}
