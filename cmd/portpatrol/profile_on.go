//go:build benchprofile

package main

import (
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
)

// startProfiler serves net/http/pprof on $PORTPATROL_BENCH_PPROF (a loopback
// address) in a binary built with -tags benchprofile, which bench/daemon -profile
// builds to take heap profiles of a running serve. Release builds have no such
// listener: profile_off.go is compiled instead.
func startProfiler(logger *slog.Logger) {
	addr := os.Getenv("PORTPATROL_BENCH_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			logger.Error("bench profiler", "addr", addr, "err", err)
		}
	}()
}
