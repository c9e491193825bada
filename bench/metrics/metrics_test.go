package main

import (
	"os"
	"testing"
)

// BenchmarkMetrics runs the whole /metrics benchmark once per iteration (use
// -benchtime 1x) and reports the default mode's headline figures as metrics.
func BenchmarkMetrics(b *testing.B) {
	for range b.N {
		sum, err := run(os.Stdout, defaults)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(sum.mb, "MB/scrape")
		b.ReportMetric(float64(sum.p50.Nanoseconds())/1e6, "ms/scrape")
		b.ReportMetric(sum.perTarget, "series/target")
		b.ReportMetric(sum.heapPerTarget, "heap-B/target")
	}
}
