package e2e

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// outage is one follower taken down for a few blocks and brought back.
type outage struct {
	node *gethNode
	how  string // "SIGTERM" or "SIGKILL"
	// assertCatchUp: the geth must be back on the builder's head within two slots of being
	// ready again. Off for the path-scheme geth killed with SIGKILL, which may lose its state.
	assertCatchUp bool

	mu       sync.Mutex
	downAt   time.Time
	readyAt  time.Time
	backHead cldriver.Head // its own head right after the restart
	caughtAt time.Time     // when its head first equalled the builder's again
	done     chan struct{} // closed when the restart and the catch-up watch are over
}

// TestProxyELOutage is scenario (d), in direct mode on a wall-clock chain with 2 s slots:
// a primary and three followers; one follower at a time is taken down for three blocks and
// restarted while one BN keeps sending a block every slot.
//
//   - follower-term (geth defaults, path scheme) is stopped with SIGTERM, which keeps its head;
//   - follower-kill (geth defaults, path scheme) is killed with SIGKILL: what it does when it
//     comes back is recorded, not asserted (it may lose its state; see the harness notes);
//     only "no crash, the lane still delivers, the others are unaffected" is asserted;
//   - follower-archive (--state.scheme hash --gcmode archive, every block's state written
//     through) is killed with SIGKILL.
//
// For SIGTERM and the archive geth, the proxy must replay what they missed: each must be back
// on the builder's head within two slots of answering again. Throughout, the BN's answers and
// the other gethes' heads must not slow down: per-block latencies during the outages are
// compared with those before.
func TestProxyELOutage(t *testing.T) {
	const (
		slot     = 2 * time.Second
		warmup   = 4 // blocks before the first outage
		downFor  = 3 // blocks an EL misses
		recovery = 3 // blocks after each restart
	)
	syncProxyBinary(t)
	chain := newWallClockChain(t, slot, 8*time.Second)
	builder := newGethNode(t, chain, "builder")
	primary := newGethNode(t, chain, "primary")
	term := newGethNode(t, chain, "follower-term")
	kill := newGethNode(t, chain, "follower-kill")
	archive := newGethNode(t, chain, "follower-archive", "--state.scheme", "hash", "--gcmode", "archive")
	all := []*gethNode{builder, primary, term, kill, archive}
	launchGeths(t, all...)
	bn := newBeaconNode(t, "bn1")
	proxy := startSyncProxy(t, proxyConfig{
		els: []proxyEL{
			{node: primary, role: rolePrimary},
			{node: term, role: roleFollower},
			{node: kill, role: roleFollower},
			{node: archive, role: roleFollower},
		},
		bns:   []*beaconNode{bn},
		slot:  slot,
		extra: []string{"--silence-timeout", "3s"},
	})
	driver := newDriver(t, chain, builder)
	ep := proxy.engine(bn)
	start := time.Now()

	var latestMu sync.Mutex
	var latest cldriver.Head
	setLatest := func(h cldriver.Head) { latestMu.Lock(); latest = h; latestMu.Unlock() }
	getLatest := func() cldriver.Head { latestMu.Lock(); defer latestMu.Unlock(); return latest }

	// down holds the followers whose heads are not expected to follow right now.
	var downMu sync.Mutex
	down := map[*gethNode]bool{}
	others := func() []*gethNode {
		downMu.Lock()
		defer downMu.Unlock()
		out := []*gethNode{primary}
		for _, n := range []*gethNode{term, kill, archive} {
			if !down[n] {
				out = append(out, n)
			}
		}
		return out
	}

	takeDown := func(o *outage) {
		downMu.Lock()
		down[o.node] = true
		downMu.Unlock()
		o.mu.Lock()
		o.downAt = time.Now()
		o.mu.Unlock()
		if o.how == "SIGKILL" {
			o.node.Kill()
		} else {
			o.node.Stop()
		}
		t.Logf("%s: %s at head %s", o.node.name, o.how, getLatest())
	}
	// bringBack restarts the geth in the background, so the BN's cadence does not wait for it,
	// then watches its head until it equals the builder's (for at most three slots).
	bringBack := func(o *outage) {
		o.done = make(chan struct{})
		if err := o.node.Node.Start(); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer close(o.done)
			deadline := time.Now().Add(gethStartTimeout)
			for o.node.Ping(t.Context()) != nil {
				if time.Now().After(deadline) || !o.node.Running() {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			ready := time.Now()
			h, _ := headOf(o.node)
			o.mu.Lock()
			o.readyAt, o.backHead = ready, h
			o.mu.Unlock()
			for time.Since(ready) < 3*slot {
				if h, err := headOf(o.node); err == nil && h == getLatest() && h.Number > o.backHead.Number {
					o.mu.Lock()
					o.caughtAt = time.Now()
					o.mu.Unlock()
					downMu.Lock()
					delete(down, o.node)
					downMu.Unlock()
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	type sample struct {
		block   uint64
		phase   string
		np, fcu time.Duration // the BN's answer times
		heads   time.Duration // until the primary and every follower not down have the block as head
	}
	var samples []sample
	outages := []*outage{
		{node: term, how: "SIGTERM", assertCatchUp: true},
		{node: kill, how: "SIGKILL"},
		{node: archive, how: "SIGKILL", assertCatchUp: true},
	}
	type event struct {
		at  uint64 // before building this block
		run func()
	}
	var events []event
	n := uint64(warmup)
	for _, o := range outages {
		o := o
		events = append(events, event{n + 1, func() { takeDown(o) }}, event{n + 1 + downFor, func() { bringBack(o) }})
		n += downFor + recovery
	}
	total := n
	phase := "before"
	for blockNo := uint64(1); blockNo <= total; blockNo++ {
		for _, e := range events {
			if e.at == blockNo {
				e.run()
				phase = "outage"
			}
		}
		waitForSlot(t, chain.genesisTime, slot, blockNo)
		b := buildBlock(t, driver)
		s := sample{block: b.Number, phase: phase}
		t0 := time.Now()
		requireStatus(t, fmt.Sprintf("block %d newPayload", b.Number), sendNewPayload(t, ep, b, cldriver.StringID(fmt.Sprintf("np%d", b.Number))), cldriver.StatusValid)
		s.np = time.Since(t0)
		t1 := time.Now()
		requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated", b.Number), sendForkchoice(t, ep, b, cldriver.StringID(fmt.Sprintf("fcu%d", b.Number))), cldriver.StatusValid)
		s.fcu = time.Since(t1)
		setLatest(b.Head())
		_, ok := awaitHeads(b.Head(), slot, others()...)
		if !ok {
			report, _ := headsReport(b.Head(), others())
			t.Fatalf("block %d: the running gethes did not reach it within a slot:\n%s", b.Number, report)
		}
		s.heads = time.Since(t0)
		samples = append(samples, s)
	}
	for _, o := range outages {
		select {
		case <-o.done:
		case <-time.After(gethStartTimeout):
			t.Fatalf("%s: restart watch did not finish", o.node.name)
		}
	}

	// Latency: the outages must not slow the BN or the other gethes down.
	var before, during struct{ np, fcu, heads durations }
	for _, s := range samples {
		t.Logf("block %2d %-6s newPayload %6v  forkchoiceUpdated %6v  others' heads %6v", s.block, s.phase,
			s.np.Round(time.Millisecond), s.fcu.Round(time.Millisecond), s.heads.Round(time.Millisecond))
		switch {
		case s.phase == "before" && s.block > 1: // block 1 warms connections up
			before.np, before.fcu, before.heads = append(before.np, s.np), append(before.fcu, s.fcu), append(before.heads, s.heads)
		case s.phase == "outage":
			during.np, during.fcu, during.heads = append(during.np, s.np), append(during.fcu, s.fcu), append(during.heads, s.heads)
		}
	}
	t.Logf("before the outages: newPayload %s; forkchoiceUpdated %s; others' heads %s", before.np, before.fcu, before.heads)
	t.Logf("from the first outage on: newPayload %s; forkchoiceUpdated %s; others' heads %s", during.np, during.fcu, during.heads)
	for _, c := range []struct {
		what           string
		before, during durations
	}{{"newPayload answer", before.np, during.np}, {"forkchoiceUpdated answer", before.fcu, during.fcu}, {"others' heads", before.heads, during.heads}} {
		if limit := 2*c.before.median() + 50*time.Millisecond; c.during.median() > limit {
			t.Errorf("%s slowed down during the outages: median %v, before %v (limit %v)", c.what, c.during.median(), c.before.median(), limit)
		}
		if c.during.max() > slot/2 {
			t.Errorf("%s took %v during the outages (limit half a slot, %v)", c.what, c.during.max(), slot/2)
		}
	}

	// Catch-up.
	st := proxy.mustStatus(t)
	t.Logf("status: %s", st)
	for _, o := range outages {
		o.mu.Lock()
		ready, caught, back := o.readyAt, o.caughtAt, o.backHead
		o.mu.Unlock()
		line := fmt.Sprintf("%s (%s, %v down): head %s when it answered again", o.node.name, o.how, ready.Sub(o.downAt).Round(100*time.Millisecond), back)
		if caught.IsZero() {
			line += "; NOT back on the builder's head within 3 slots"
		} else {
			line += fmt.Sprintf("; back on the builder's head %v after answering", caught.Sub(ready).Round(time.Millisecond))
		}
		t.Log(line)
		if ready.IsZero() {
			t.Errorf("%s never answered after its restart", o.node.name)
			continue
		}
		if o.assertCatchUp && (caught.IsZero() || caught.Sub(ready) > 2*slot) {
			t.Errorf("%s was not back on the builder's head within two slots of its restart", o.node.name)
		}
	}

	// The SIGKILLed path-scheme geth: what it did, and that nothing broke.
	if !kill.Running() {
		t.Errorf("%s exited after its restart: %v\n%s", kill.name, kill.Process().ExitErr(), kill.logTail())
	}
	for _, el := range st.ELs {
		if el.State != "up" {
			t.Errorf("el %s is %s after the run (last error %q)", el.Name, el.State, el.LastError)
		}
	}
	if err := proxy.healthz(); err != nil || proxy.proc.ExitedNow() {
		t.Errorf("sync-proxy unhealthy after the outages: %v", err)
	}
	h, err := headOf(kill)
	t.Logf("%s at the end: head %v (%v), builder %s; restart log: %s", kill.name, h, err, driver.Head(), strings.Join(restartLines(t, kill.LogPath), " | "))
	t.Logf("scenario (d): %d blocks in %v", driver.Head().Number, time.Since(start).Round(time.Second))
}

// restartRE matches what geth says about its state when it starts and how it treats the
// first updates after that.
var restartRE = regexp.MustCompile(`(?i)rewind|state missing|repair|snap|Loaded most recent local block|Forkchoice requested sync|Ignoring|Skipping|missing parent|State not available|unclean`)

// gethMessageRE splits a geth log line into its message and its key=value context.
var gethMessageRE = regexp.MustCompile(`^\w+ \[[^\]]*\] (.*?)\s{2,}(.*)$`)

// restartLines summarises a geth log from its last start on: each matching message once,
// with how often it came and its first context.
func restartLines(t *testing.T, path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var order []string
	count := map[string]int{}
	first := map[string]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "Maximum peer count") { // printed once per start
			order, count, first = nil, map[string]int{}, map[string]string{}
		}
		if !restartRE.MatchString(line) {
			continue
		}
		msg, ctx := line, ""
		if m := gethMessageRE.FindStringSubmatch(line); m != nil {
			msg, ctx = m[1], m[2]
		}
		if count[msg] == 0 {
			order = append(order, msg)
			first[msg] = ctx
		}
		count[msg]++
	}
	out := make([]string, 0, len(order))
	for _, m := range order {
		out = append(out, fmt.Sprintf("%q ×%d (first: %s)", m, count[m], first[m]))
	}
	return out
}
