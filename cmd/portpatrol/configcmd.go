package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/portpatrol/portpatrol/internal/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Example: `  portpatrol config check /etc/portpatrol/portpatrol.yaml`,
		Short:   "Work with configuration files",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE...",
		Short: "Validate configuration files without running them",
		Long: `Validate configuration files without running them, with the checks serve and a
reload apply. Every problem of a file is printed, each on a line of its own as
FILE:LINE:COLUMN: FIELD: what is wrong and what would be valid. Settings that are
read but not acted on (fields of blackbox_exporter's module schema portpatrol does
not honour yet) are printed as FILE:LINE:COLUMN: warning: FIELD: why; they do not
make a file invalid.
Exit 0 when every file is valid, 3 otherwise.`,
		Example: `  portpatrol config check /etc/portpatrol/portpatrol.yaml
  portpatrol config check docs/examples/portpatrol.yaml && systemctl reload portpatrol`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bad := false
			for _, f := range args {
				c, err := config.Load(f)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					bad = true
					continue
				}
				for _, w := range c.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), w)
				}
				warned := ""
				if n := len(c.Warnings); n > 0 {
					warned = fmt.Sprintf(", %d warnings", n)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: OK (%d targets, %d modules%s)\n", f, len(c.Checks), len(c.Modules), warned)
			}
			if bad {
				return exitCode(exitUnknown)
			}
			return nil
		},
	})
	return cmd
}
