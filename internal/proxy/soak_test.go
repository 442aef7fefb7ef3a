package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// The soak: three beacon nodes drive four ELs (one of them flapping) through one proxy in
// direct mode for SOAK_DURATION (default 60s, 15s with -short; `make soak` runs 10m), with accelerated slots:
// every soakSlot of real time the election clock moves one 12 s slot. Every newPayload the
// proxy accepted is accounted for on every lane: delivered, failed (with the error kind) or
// dropped (with the reason); none may be unexplained. Healthy ELs must have every block and
// the head; the flapping EL must be caught up after it is healed. Goroutines and memory must
// stay flat.

const (
	soakSlot       = 100 * time.Millisecond // real time per slot
	soakFlapEvery  = 40                     // the flapping EL is down for soakFlapDown slots every soakFlapEvery
	soakFlapDown   = 5
	soakSilentEach = 300 // every soakSilentEach slots one BN (in turn) is silent for 3 slots
	soakRecent     = 256 // blocks and heads each EL remembers (the replay ring is 64)
)

func soakDuration(t *testing.T) time.Duration {
	s := os.Getenv("SOAK_DURATION")
	if s == "" && testing.Short() {
		return 15 * time.Second
	}
	if s == "" {
		return 60 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("SOAK_DURATION=%q: want a positive Go duration", s)
	}
	return d
}

// ledger accounts for every accepted newPayload on every lane: the first outcome each lane
// reports for the block is counted; once every lane has reported, the block is forgotten,
// so memory stays flat.
type ledger struct {
	lanes int

	mu       sync.Mutex
	open     map[engine.Hash][]string // per lane: "" until the first outcome
	accepted uint64
	outcome  []map[string]uint64 // per lane: outcome → blocks
	late     uint64              // outcomes for blocks already resolved (resends)
}

func newLedger(lanes int) *ledger {
	l := &ledger{lanes: lanes, open: map[engine.Hash][]string{}}
	for range lanes {
		l.outcome = append(l.outcome, map[string]uint64{})
	}
	return l
}

func (l *ledger) accept(h engine.Hash) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.open[h]; !ok {
		l.open[h] = make([]string, l.lanes)
		l.accepted++
	}
}

func (l *ledger) report(lane int, h engine.Hash, outcome string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.open[h]
	if !ok {
		l.late++
		return
	}
	if e[lane] != "" {
		return
	}
	e[lane] = outcome
	l.outcome[lane][outcome]++
	for _, o := range e {
		if o == "" {
			return
		}
	}
	delete(l.open, h)
}

func (l *ledger) unexplained() map[int]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]uint64{}
	for _, e := range l.open {
		for i, o := range e {
			if o == "" {
				out[i]++
			}
		}
	}
	return out
}

func outcomeOf(res upstream.Result) string {
	if res.Err == nil {
		return "delivered"
	}
	if de, ok := res.Err.(*upstream.DeliveryError); ok {
		if de.Kind == upstream.KindDropped {
			return "dropped:" + string(de.Drop)
		}
		return "failed:" + string(de.Kind)
	}
	return "failed:other"
}

func rssBytes() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func TestSoak(t *testing.T) {
	dur := soakDuration(t)
	const nBN, nEL, flapping = 3, 4, 3
	var els []*chainEL
	led := newLedger(nEL)
	cfg := Config{Instance: "soak", Election: testElection()}
	for i := range nEL {
		e := newBoundedChainEL(t, soakRecent)
		els = append(els, e)
		role := upstream.RoleFollower
		if i == 0 {
			role = upstream.RolePrimary
		}
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: fmt.Sprintf("el%d", i+1), URL: e.srv.URL, Role: role, CatchUpInterval: 50 * time.Millisecond})
	}
	laneIndex := func(l *upstream.Lane) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(l.Name(), "el"))
		return n - 1
	}
	cfg.Hooks.Lane.OnResult = func(l *upstream.Lane, s *upstream.Slot) {
		if d := s.Delivery(); d.Req.Class == engine.ClassNewPayload {
			led.report(laneIndex(l), d.Req.Block.Hash, outcomeOf(s.Result()))
		}
	}
	cfg.Hooks.Lane.OnDrop = func(l *upstream.Lane, d *upstream.Delivery, reason upstream.DropReason) {
		if d.Req.Class == engine.ClassNewPayload {
			led.report(laneIndex(l), d.Req.Block.Hash, "dropped:"+string(reason))
		}
	}
	r := &rig{t: t, clk: clock.NewManual(time.Unix(int64(blockTS(1)), 0)), done: make(chan struct{})}
	r.start(cfg)

	var answers timings
	var rejected atomic.Int64
	post := func(bn string, body []byte) {
		start := time.Now()
		resp, err := r.srv.Client().Post(r.srv.URL+"/bn/"+bn, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Errorf("%s: %v", bn, err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		answers.add(time.Since(start))
		if resp.StatusCode != http.StatusOK {
			rejected.Add(1)
		}
	}

	type sample struct {
		at         time.Duration
		goroutines int
		rss, heap  uint64
	}
	var samples []sample
	take := func(at time.Duration) sample {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		s := sample{at: at, goroutines: runtime.NumGoroutine(), rss: rssBytes(), heap: m.HeapAlloc}
		samples = append(samples, s)
		return s
	}

	start := time.Now()
	tick := time.NewTicker(soakSlot)
	defer tick.Stop()
	nextSample := dur / 10
	n := uint64(0)
	writerChanges := 0
	lastWriter := ""
	for time.Since(start) < dur {
		n++
		r.clk.Set(time.Unix(int64(blockTS(n)), 0))
		els[flapping].setDown(n%soakFlapEvery >= soakFlapEvery-soakFlapDown)
		silent := -1
		if n%soakSilentEach < 3 && n > soakSilentEach {
			silent = int(n/soakSilentEach) % nBN
		}
		led.accept(blockHash(n))
		concurrently(nBN, func(i int) {
			if i == silent {
				return
			}
			bn := fmt.Sprintf("bn%d", i)
			post(bn, newPayloadBody(fmt.Sprintf(`"%s-np%d"`, bn, n), n))
			post(bn, forkchoiceBody(fmt.Sprintf(`"%s-fcu%d"`, bn, n), n, i == 0 && n%8 == 0))
		})
		if w, _ := r.p.Tracker().Writer(); w != lastWriter {
			writerChanges++
			lastWriter = w
		}
		if el := time.Since(start); el >= nextSample {
			s := take(el)
			t.Logf("SOAK t=%v slot=%d goroutines=%d rss=%dMiB heap=%dMiB", el.Round(time.Second), n, s.goroutines, s.rss>>20, s.heap>>20)
			nextSample += dur / 10
		}
		<-tick.C
	}

	// Heal the flapping EL and have the writer (whichever beacon node won the race for block
	// 1, or took over since) send one more block; then everyone must be on the head.
	els[flapping].setDown(false)
	n++
	r.clk.Set(time.Unix(int64(blockTS(n)), 0))
	led.accept(blockHash(n))
	writer, _ := r.p.Tracker().Writer()
	post(writer, newPayloadBody(`"last-np"`, n))
	post(writer, forkchoiceBody(`"last-fcu"`, n, false))
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.waitIdle()
		done := true
		for _, e := range els {
			if h, _, _, _ := e.snapshot(); h.Hash != blockHash(n) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // a catch-up may still be due (CatchUpInterval)
		post(writer, forkchoiceBody(`"again-fcu"`, n, false))
	}
	final := take(time.Since(start))

	// Accounting.
	unexplained := led.unexplained()
	led.mu.Lock()
	accepted, late := led.accepted, led.late
	outcomes := make([]map[string]uint64, nEL)
	for i := range outcomes {
		outcomes[i] = maps(led.outcome[i])
	}
	led.mu.Unlock()
	var perEL []string
	for i, e := range els {
		head, imported, back, reqs := e.snapshot()
		st := r.p.Lanes()[i].Stats()
		perEL = append(perEL, fmt.Sprintf("el%d{%s imported=%d head=%d back=%d requests=%d catchups=%d replayed_last=%d}",
			i+1, formatOutcomes(outcomes[i]), imported, head.Number, back, reqs, st.CatchUps, st.CatchUp.Replayed))
		if u := unexplained[i]; u != 0 {
			t.Errorf("el%d: %d accepted newPayloads unexplained (neither delivered, failed nor dropped)", i+1, u)
		}
		if back != 0 {
			t.Errorf("el%d: head moved back %d times", i+1, back)
		}
		if head.Hash != blockHash(n) || imported != n {
			t.Errorf("el%d: head %d, %d blocks imported; want head %d and every block", i+1, head.Number, imported, n)
		}
		if i != flapping && outcomes[i]["delivered"] != accepted {
			t.Errorf("el%d (healthy): outcomes %v, want every block delivered", i+1, outcomes[i])
		}
	}
	if rejected.Load() != 0 {
		t.Errorf("%d requests were not answered 200", rejected.Load())
	}
	base := samples[0]
	for _, s := range samples {
		if s.at >= dur/5 { // after the warm-up: queues, pools and rings are full
			base = s
			break
		}
	}
	if final.goroutines > base.goroutines+10 {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, final.goroutines)
	}
	if final.heap > base.heap+16<<20 {
		t.Errorf("heap grew from %d to %d MiB", base.heap>>20, final.heap>>20)
	}
	if final.rss > base.rss+base.rss/2+32<<20 {
		t.Errorf("RSS grew from %d to %d MiB", base.rss>>20, final.rss>>20)
	}
	p50, worst := answers.stats()
	answers.mu.Lock()
	sorted := slices.Clone(answers.d)
	answers.mu.Unlock()
	slices.Sort(sorted)
	p99 := sorted[len(sorted)*99/100]
	t.Logf("SOAK duration=%v slots=%d accepted=%d unexplained=%v late_outcomes=%d writer_changes=%d bn_requests=%d bn_answer_p50=%v p99=%v max=%v goroutines=%d→%d rss=%dMiB→%dMiB heap=%dMiB→%dMiB %s",
		dur, n, accepted, unexplained, late, writerChanges, len(sorted), p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), worst.Round(10*time.Microsecond),
		base.goroutines, final.goroutines, base.rss>>20, final.rss>>20, base.heap>>20, final.heap>>20, strings.Join(perEL, " "))
}

func maps(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func formatOutcomes(m map[string]uint64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}
