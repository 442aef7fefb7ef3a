package throttle

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEvery(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	e := NewEvery(time.Minute)
	for i, c := range []struct {
		at   time.Duration // after t0
		want bool
	}{
		{0, true},                   // the first
		{time.Second, false},        // within the interval
		{59 * time.Second, false},   // still within
		{time.Minute, true},         // an interval after the last let through
		{90 * time.Second, false},   // 30 s after it
		{-time.Hour, false},         // a clock stepped back: not a new interval
		{10 * time.Minute, true},    // long after
		{10*time.Minute + 1, false}, // just after that
	} {
		if got := e.Allow(t0.Add(c.at)); got != c.want {
			t.Errorf("event %d at +%v: Allow %v, want %v", i, c.at, got, c.want)
		}
	}
	if e.Interval() != time.Minute {
		t.Errorf("Interval %v", e.Interval())
	}
}

func TestEveryConcurrent(t *testing.T) {
	e := NewEvery(time.Minute)
	now := time.Unix(1_700_000_000, 0)
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if e.Allow(now) {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 1 {
		t.Fatalf("%d of 64 events at the same moment let through, want 1", n)
	}
}

func TestNewEveryPanicsOnABadInterval(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewEvery(%v) did not panic", d)
				}
			}()
			NewEvery(d)
		}()
	}
}
