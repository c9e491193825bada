package main

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain lets the test binary serve as the benchmark's child processes.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "engine child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// BenchmarkEngine runs the whole engine benchmark once per iteration (use
// -benchtime 1x; one iteration takes about 40 seconds) and reports its headline
// figures as metrics.
func BenchmarkEngine(b *testing.B) {
	for range b.N {
		sum, err := run(os.Stdout, defaults)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(sum.probesPerSec, "probes/s")
		b.ReportMetric(float64(sum.cpuPerProbe.Nanoseconds())/1e3, "cpu-µs/probe")
		b.ReportMetric(float64(sum.lagP99.Nanoseconds())/1e6, "lag-p99-ms")
		b.ReportMetric(sum.bytesPerTarget, "rss-B/target")
	}
}

// BenchmarkEngineHTTP runs the http phase once per iteration (use -benchtime 1x) and
// reports CPU per http probe in the engine.
func BenchmarkEngineHTTP(b *testing.B) {
	p := defaults
	p.duration = 10 * time.Second
	for range b.N {
		cpu, err := httpThroughput(os.Stdout, p)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3, "cpu-µs/probe")
	}
}

// BenchmarkEngineTLS runs the tls phase once per iteration (use -benchtime 1x) and
// reports CPU per tls probe in the engine.
func BenchmarkEngineTLS(b *testing.B) {
	p := defaults
	p.duration = 10 * time.Second
	for range b.N {
		cpu, err := tlsThroughput(os.Stdout, p)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/1e3, "cpu-µs/probe")
	}
}
