package leftover

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a test that records its failures and cleanups instead of acting on them.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	errs     []string
	cleanups []func()
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) Cleanup(f func()) { r.cleanups = append(r.cleanups, f) }

// end runs the cleanups as the testing package does, last registered first.
func (r *recorder) end() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// holder holds something until it was asked polls times; never if polls < 0.
type holder struct {
	polls int
	asked atomic.Int32
}

func (h *holder) Leftover() error {
	n := int(h.asked.Add(1))
	if h.polls < 0 || n <= h.polls {
		return errors.New("2 slots not completed")
	}
	return nil
}

func TestCheck(t *testing.T) {
	cases := []struct {
		name string
		// run is the test's body; it returns what to do after the check (ending what it left).
		run  func(c *Checker) (after func())
		want string // "" when the check must pass
	}{
		{
			name: "nothing held",
			run:  func(c *Checker) func() { c.Add(&holder{}); return nil },
		},
		{
			name: "a holder that lets go late",
			run:  func(c *Checker) func() { c.Add(&holder{polls: 3}); return nil },
		},
		{
			name: "a holder that never lets go",
			run:  func(c *Checker) func() { c.Add(&holder{}, &holder{polls: -1}); return nil },
			want: "holder 1 (*leftover.holder): 2 slots not completed",
		},
		{
			name: "a goroutine the test started and did not stop",
			run: func(*Checker) func() {
				stop := make(chan struct{})
				done := make(chan struct{})
				go func() { parkedForever(stop); close(done) }()
				return func() { close(stop); <-done }
			},
			want: "parkedForever",
		},
		{
			name: "a goroutine that ends just after the test",
			run: func(*Checker) func() {
				go time.Sleep(20 * time.Millisecond)
				return nil
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A check that must fail waits little; one that must pass gets the whole wait,
			// and must not spend it (it would only if it ignored a holder letting go).
			limit := patience
			if tc.want != "" {
				limit = 200 * time.Millisecond
			}
			r := &recorder{TB: t}
			c := checkWithin(r, limit)
			after := tc.run(c)
			start := time.Now()
			r.end()
			if after != nil {
				after()
			}
			got := strings.Join(r.errs, "\n")
			switch {
			case tc.want == "" && got != "":
				t.Errorf("check failed a clean test: %s", got)
			case tc.want != "" && !strings.Contains(got, tc.want):
				t.Errorf("check reported %q, want it to say %q", got, tc.want)
			}
			if took := time.Since(start); tc.want == "" && took > limit/2 {
				t.Errorf("a clean check took %v of its %v", took, limit)
			}
		})
	}
}

// TestCheckIgnoresEarlierGoroutines: what ran before Check is not the test's.
func TestCheckIgnoresEarlierGoroutines(t *testing.T) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { parkedForever(stop); close(done) }()
	defer func() { close(stop); <-done }()
	r := &recorder{TB: t}
	Check(r)
	r.end()
	if len(r.errs) != 0 {
		t.Errorf("check reported a goroutine started before it: %v", r.errs)
	}
}

// parkedForever waits until stop is closed; its name is what a leak report shows.
func parkedForever(stop <-chan struct{}) { <-stop }
