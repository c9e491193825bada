package schedule

import (
	"time"
)

// Clock is the scheduler's source of time. The scheduler reads Now and sleeps on one
// Timer at a time, so a fake clock can drive it deterministically. Implementations
// must be safe for concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer armed to fire once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer. After Reset or Stop returns, no value from an earlier
// arming is received from C (the semantics of time.Timer since Go 1.23).
type Timer interface {
	C() <-chan time.Time
	// Reset arms the timer to fire d from now, replacing any earlier arming.
	Reset(d time.Duration)
	// Stop disarms the timer.
	Stop()
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time   { return t.t.C }
func (t systemTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t systemTimer) Stop()                 { t.t.Stop() }
