package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd writes one man page per command (section 1) for packagers and for readers
// who want `man portpatrol-serve` instead of --help.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "man DIR",
		Short: "Write portpatrol's man pages (section 1) into DIR",
		Long: `Write one man page per command into DIR: portpatrol.1, portpatrol-serve.1,
portpatrol-config-check.1 and so on. DIR is created if it does not exist. The pages are
built from the same text as --help, so they never disagree with the binary.`,
		Example: `  # Write the pages and read one
  portpatrol man /tmp/portpatrol-man && man /tmp/portpatrol-man/portpatrol-serve.1

  # Install them system-wide
  sudo portpatrol man /usr/local/share/man/man1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := args[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return exitf(exitUnknown, "man: %v", err)
			}
			root := cmd.Root()
			// Man pages carry no generation date, so two builds of one version write
			// the same bytes (reproducible packages).
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{
				Title:   "PORTPATROL",
				Section: "1",
				Source:  "portpatrol " + buildInfo().Version,
				Manual:  "portpatrol manual",
			}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return exitf(exitUnknown, "man: %v", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote man pages to %s\n", dir)
			return nil
		},
	}
}
