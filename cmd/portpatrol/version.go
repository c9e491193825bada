package main

import (
	"cmp"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set by release builds (the Makefile) with -ldflags "-X main.version=… -X main.commit=…
// -X main.date=…". A plain `go build` leaves them empty and buildInfo falls back to what
// the Go toolchain recorded from the checkout.
var (
	version = "dev"
	commit  string
	date    string
)

// build describes the running binary.
type build struct {
	Version, Commit, Date, Go string
}

// buildInfo returns the -ldflags values, filling the empty ones from the vcs settings
// that `go build` stamps into the binary.
func buildInfo() build {
	b := build{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	fromVCS, dirty := b.Commit == "", false
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && fromVCS:
			b.Commit = s.Value
		case s.Key == "vcs.time" && b.Date == "":
			b.Date = s.Value
		case s.Key == "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if fromVCS && dirty && b.Commit != "" {
		b.Commit += "-dirty"
	}
	if b.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version // go install …@vX.Y.Z
	}
	return b
}

func (b build) String() string {
	commit, date := cmp.Or(b.Commit, "unknown"), cmp.Or(b.Date, "unknown")
	return fmt.Sprintf("portpatrol %s\n  commit:  %s\n  built:   %s\n  go:      %s %s/%s\n",
		b.Version, commit, date, b.Go, runtime.GOOS, runtime.GOARCH)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print portpatrol's version, commit, build date and Go version",
		Example: "  portpatrol version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), buildInfo())
			return err
		},
	}
}
