//go:build !benchprofile

package main

import "log/slog"

// startProfiler does nothing in a release build; see profile_on.go.
func startProfiler(*slog.Logger) {}
