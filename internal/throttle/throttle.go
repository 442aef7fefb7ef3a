// Package throttle spaces out a repeated report, such as a warning every request of a
// misconfigured client would log: the first is let through, then at most one per interval.
package throttle

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Every lets through the first event and then at most one per interval. It is safe for
// concurrent use; the time comes from the caller (an injected clock).
type Every struct {
	interval time.Duration
	last     atomic.Int64 // Unix ns of the last event let through; 0 = none yet
}

// NewEvery returns an Every of the given interval. Like time.NewTicker, it panics when the
// interval is not positive: the intervals are constants of the program.
func NewEvery(interval time.Duration) *Every {
	if interval <= 0 {
		panic(fmt.Sprintf("throttle: interval must be positive, got %s", interval))
	}
	return &Every{interval: interval}
}

// Interval returns the least time between two events let through.
func (e *Every) Interval() time.Duration { return e.interval }

// Allow reports whether an event at now is let through: the first one, and then the first
// at least an interval after the last one let through. Of events at the same moment on
// several goroutines, one is.
func (e *Every) Allow(now time.Time) bool {
	n := now.UnixNano()
	last := e.last.Load()
	if last != 0 && time.Duration(n-last) < e.interval {
		return false
	}
	return e.last.CompareAndSwap(last, n)
}
