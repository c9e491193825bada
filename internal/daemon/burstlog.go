package daemon

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// changesLoggedPerMinute is how many target state changes a minute are logged at INFO;
// beyond it they go to DEBUG, and the next minute's first line says how many did.
const changesLoggedPerMinute = 20

// burstLog logs at INFO up to limit records a minute and at DEBUG beyond, so a network
// outage that takes down thousands of targets leaves a readable log: the first changes,
// then one INFO line a minute counting the rest. It is safe for concurrent use.
type burstLog struct {
	logger *slog.Logger
	limit  int

	mu     sync.Mutex
	window time.Time // start of the current minute
	n      int       // records in the current minute
}

// log records msg at INFO, or at DEBUG once this minute's limit is spent.
func (b *burstLog) log(now time.Time, msg string, args ...any) {
	b.mu.Lock()
	suppressed := b.roll(now)
	b.n++
	level := slog.LevelInfo
	if b.n > b.limit {
		level = slog.LevelDebug
	}
	b.mu.Unlock()
	b.summarise(suppressed)
	b.logger.Log(context.Background(), level, msg, args...)
}

// flush logs the count of the last minute's records that went to DEBUG once that
// minute is over, even when nothing is logged after it; the daemon calls it every
// minute.
func (b *burstLog) flush(now time.Time) {
	b.mu.Lock()
	suppressed := b.roll(now)
	b.mu.Unlock()
	b.summarise(suppressed)
}

// roll starts a new minute when the current one is over and returns how many records
// of the one it ends went to DEBUG; the caller holds mu.
func (b *burstLog) roll(now time.Time) int {
	if now.Sub(b.window) < time.Minute {
		return 0
	}
	over := max(b.n-b.limit, 0)
	b.window, b.n = now, 0
	return over
}

func (b *burstLog) summarise(suppressed int) {
	if suppressed > 0 {
		b.logger.Info("more target state changes in the previous minute were logged at DEBUG only", "count", suppressed, "limit_per_minute", b.limit)
	}
}
