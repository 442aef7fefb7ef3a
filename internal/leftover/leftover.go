// Package leftover checks, at the end of a test, that the test left nothing behind: no
// goroutine it started still runs, and nothing a [Holder] was given is still held (a pooled
// body buffer, a lane slot, a backlog charge). A holder that forgets to let go passes every
// functional test and leaks in production, a burst at a time; this is the check that fails
// on it. The proxy's and the lanes' tests run it for every test.
package leftover

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// patience is how long Check waits for holders to let go and goroutines to
// end. Some let go just after the work that used them (the HTTP transport closes a request
// body when it has stopped writing it, with no signal of its own): the check waits for
// them, and a test that passes spends no time here.
const patience = 5 * time.Second

// Holder is anything that can tell whether it still holds something: upstream.Lane (slots,
// backlog bytes), bodies.Pool (buffers handed out), backlog.Budget (bytes counted),
// proxy.Proxy (all of those it owns).
type Holder interface {
	// Leftover returns nil when nothing is held, else an error that says what is.
	Leftover() error
}

// Checker is the check Check registered for one test.
type Checker struct {
	t      testing.TB
	ignore goleak.Option // the goroutines that ran when the check was registered
	wait   time.Duration

	mu      sync.Mutex
	holders []Holder
}

// Check registers with t.Cleanup a check that fails t for anything left behind, and returns
// it so that holders made later can be added. Cleanups run last-registered first, so the
// check runs after every cleanup registered after it (servers closed, lanes stopped, the
// proxy closed): call Check before starting what the test runs. The goroutines running
// when Check is called are not the test's and are ignored.
func Check(t testing.TB, holders ...Holder) *Checker {
	t.Helper()
	return checkWithin(t, patience, holders...)
}

// checkWithin is Check waiting at most wait for holders to let go, and as long again (at
// least about half a second) for goroutines to end.
func checkWithin(t testing.TB, wait time.Duration, holders ...Holder) *Checker {
	t.Helper()
	c := &Checker{t: t, ignore: goleak.IgnoreCurrent(), wait: wait, holders: holders}
	t.Cleanup(c.run)
	return c
}

// Add adds holders to check.
func (c *Checker) Add(holders ...Holder) {
	c.mu.Lock()
	c.holders = append(c.holders, holders...)
	c.mu.Unlock()
}

// run waits for every holder to let go, then for every goroutine the test started to end,
// and reports what is left.
func (c *Checker) run() {
	c.t.Helper()
	c.mu.Lock()
	holders := append([]Holder(nil), c.holders...)
	c.mu.Unlock()
	if err := settle(holders, c.wait); err != nil {
		c.t.Errorf("left behind after the test, %v later:\n%v", c.wait, err)
	}
	// goleak.Find itself retries for about half a second; a loaded machine may need more.
	deadline := time.Now().Add(c.wait)
	for {
		err := goleak.Find(c.ignore)
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			c.t.Errorf("goroutines left behind after the test: %v", err)
			return
		}
	}
}

// settle polls the holders until none holds anything or wait has passed, and returns what
// is still held.
func settle(holders []Holder, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		var errs []error
		for i, h := range holders {
			if err := h.Leftover(); err != nil {
				errs = append(errs, fmt.Errorf("holder %d (%T): %w", i, h, err))
			}
		}
		if len(errs) == 0 || !time.Now().Before(deadline) {
			return errors.Join(errs...)
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, 50*time.Millisecond)
	}
}
