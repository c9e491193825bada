package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A burst of changes is logged at INFO up to the limit, the rest at DEBUG, and the
// next minute's first record is preceded by one INFO line counting what went to DEBUG.
func TestBurstLog(t *testing.T) {
	var buf bytes.Buffer
	b := &burstLog{logger: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), limit: 3}
	t0 := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	for i := range 10 {
		b.log(t0.Add(time.Duration(i)*time.Second), "target state changed", "i", i)
	}
	if got := strings.Count(buf.String(), "target state changed"); got != 3 {
		t.Errorf("INFO lines in the burst: got %d, want 3\n%s", got, buf.String())
	}
	b.log(t0.Add(61*time.Second), "target state changed", "i", 10)
	out := buf.String()
	if !strings.Contains(out, "logged at DEBUG only") || !strings.Contains(out, "count=7") {
		t.Errorf("no summary of the 7 records sent to DEBUG:\n%s", out)
	}
	if got := strings.Count(out, "target state changed"); got != 4 {
		t.Errorf("INFO lines after the minute: got %d, want 4\n%s", got, out)
	}

	// A burst followed by silence is summarised by the minute's flush.
	buf.Reset()
	for i := range 5 {
		b.log(t0.Add(3*time.Minute+time.Duration(i)*time.Second), "target state changed", "i", i)
	}
	b.flush(t0.Add(3*time.Minute + 30*time.Second))
	if strings.Contains(buf.String(), "DEBUG only") {
		t.Errorf("summary before the minute is over:\n%s", buf.String())
	}
	b.flush(t0.Add(4*time.Minute + 5*time.Second))
	if !strings.Contains(buf.String(), "count=2") {
		t.Errorf("the flush did not count the 2 records sent to DEBUG:\n%s", buf.String())
	}
}
