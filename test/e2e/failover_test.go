package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// TestProxyWriterFailover is scenario (c), in direct mode on a wall-clock chain with 2 s
// slots and a 3 s silence timeout:
//
//  1. two BNs send every block; bn1 (seen first) is the writer;
//  2. bn1 stops sending: bn2 takes over once bn1 has been silent for 3 s, every block is
//     imported by every driven geth, and the heads lag by at most the silence timeout plus a
//     slot;
//  3. stale heads: bn1 comes back like a restarting BN, sending old blocks and old heads.
//     They never reach a geth (bn1 is not the writer): no geth's head may ever move back,
//     checked by sampling each geth's head over its own JSON-RPC and by reading each geth's
//     log. (The writer's own re-orgs are forwarded: see the head guard in the README.)
//
// Finally a stale head sent straight to the builder proves both detectors see a real
// regression.
func TestProxyWriterFailover(t *testing.T) {
	const (
		slot    = 2 * time.Second
		silence = 3 * time.Second
		phase1  = 4 // blocks both BNs send
		phase2  = 6 // blocks only bn2 sends
		phase3  = 6 // blocks with stale heads
	)
	syncProxyBinary(t)
	chain := newWallClockChain(t, slot, 6*time.Second)
	nodes := startGeths(t, chain, "builder", "primary", "follower")
	builder, driven := nodes[0], nodes[1:]
	bn1, bn2 := newBeaconNode(t, "bn1"), newBeaconNode(t, "bn2")
	proxy := startSyncProxy(t, proxyConfig{
		els:   []proxyEL{{node: nodes[1], role: rolePrimary}, {node: nodes[2], role: roleFollower}},
		bns:   []*beaconNode{bn1, bn2},
		slot:  slot,
		extra: []string{"--silence-timeout", silence.String()},
	})
	driver := newDriver(t, chain, builder)
	ep1, ep2 := proxy.engine(bn1), proxy.engine(bn2)
	watch := watchHeads(t, 100*time.Millisecond, nodes...)
	start := time.Now()

	next := func() *cldriver.Block {
		waitForSlot(t, chain.genesisTime, slot, driver.Head().Number+1)
		return buildBlock(t, driver)
	}
	send := func(ep *cldriver.Endpoint, who string, b *cldriver.Block) (fcu cldriver.PayloadStatus) {
		requireStatus(t, fmt.Sprintf("block %d newPayload from %s", b.Number, who),
			sendNewPayload(t, ep, b, cldriver.StringID(fmt.Sprintf("np%d", b.Number))), cldriver.StatusValid)
		return sendForkchoice(t, ep, b, cldriver.StringID(fmt.Sprintf("fcu%d", b.Number)))
	}

	// 1. Both BNs send; bn1 first.
	for range phase1 {
		b := next()
		requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated from bn1", b.Number), send(ep1, "bn1", b), cldriver.StatusValid)
		send(ep2, "bn2", b)
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	if st := proxy.mustStatus(t); st.Writer != "bn1" {
		t.Fatalf("writer %q after phase 1, want bn1: %s", st.Writer, st)
	}
	bn1Last := time.Now()

	// 2. bn1 goes silent. Each block: how long until every driven geth has it as head.
	var lagged []uint64
	var takeover time.Duration
	var maxLag time.Duration
	for range phase2 {
		b := next()
		sent := time.Now()
		st := send(ep2, "bn2", b)
		took, ok := awaitHeads(b.Head(), slot-200*time.Millisecond, driven...)
		t.Logf("block %d: bn2's head update answered %s; driven heads there after %v (reached %v)", b.Number, st.Status, took.Round(time.Millisecond), ok)
		if !ok {
			lagged = append(lagged, b.Number)
			continue
		}
		if takeover == 0 {
			takeover = sent.Sub(bn1Last)
		}
		if lag := time.Since(sent); lag > maxLag {
			maxLag = lag
		}
	}
	st := proxy.mustStatus(t)
	if st.Writer != "bn2" {
		t.Fatalf("writer %q after bn1 went silent, want bn2: %s", st.Writer, st)
	}
	// bn1 is silent after 3 s: the head update of the first block after that moves the
	// ELs again. With 2 s slots that is the second block; allow one more for jitter.
	if maxLagged := int(silence/slot) + 1; len(lagged) > maxLagged {
		t.Fatalf("the driven gethes did not follow blocks %v (more than %d): bn2 did not take over", lagged, maxLagged)
	}
	for i, n := range lagged {
		if n != lagged[0]+uint64(i) || n > uint64(phase1)+uint64(len(lagged)) {
			t.Fatalf("blocks %v lagged: only the first blocks after bn1 went silent may", lagged)
		}
	}
	if takeover > silence+2*slot {
		t.Fatalf("bn2's updates moved the ELs %v after bn1's last request, want ≤ %v", takeover, silence+2*slot)
	}
	waitHeadsEqual(t, driver.Head(), nodes...)
	requireNonce(t, chain, driver.Sent(), nodes...)
	t.Logf("failover: bn2's head updates moved the ELs %v after bn1's last request; head updates of blocks %v were filtered while bn1 still held the role", takeover.Round(time.Millisecond), lagged)

	// 3. Stale heads from a returning BN.
	var staleAnswers []string
	for range phase3 {
		b := next()
		requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated from bn2", b.Number), send(ep2, "bn2", b), cldriver.StatusValid, cldriver.StatusSyncing)
		// bn1 restarts from an old head: an old block, then that block as head.
		old := driver.Blocks()[b.Number-4]
		requireStatus(t, fmt.Sprintf("old block %d newPayload from bn1", old.Number),
			sendNewPayload(t, ep1, old, cldriver.NumberID(old.Number)), cldriver.StatusValid, cldriver.StatusSyncing)
		st := sendForkchoice(t, ep1, old, cldriver.NumberID(1000+old.Number))
		staleAnswers = append(staleAnswers, fmt.Sprintf("bn1 #%d→%s", old.Number, st.Status))
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	t.Logf("answers to stale head updates: %s", strings.Join(staleAnswers, ", "))
	final := proxy.mustStatus(t)
	t.Logf("status: %s", final)
	if final.Writer != "bn2" {
		t.Errorf("writer %q after bn1 came back with old heads, want bn2", final.Writer)
	}
	watch.Stop()
	if back, samples := watch.Backwards(); len(back) > 0 {
		t.Fatalf("a geth's head went backwards (%d samples):\n%s", samples, strings.Join(back, "\n"))
	} else {
		t.Logf("%d head samples over JSON-RPC, none backwards", samples)
	}
	requireNoHeadRegression(t, nodes...)

	// The control: the same kind of stale update, sent straight to the builder, moves it back,
	// and both detectors see it.
	head := driver.Head()
	control := watchHeads(t, 20*time.Millisecond, builder)
	time.Sleep(100 * time.Millisecond) // let the sampler see the current head first
	stale, err := driver.ForkchoiceUpdated(head.Number - 1)
	if err != nil {
		t.Fatal(err)
	}
	requireStatus(t, "stale head update straight to the builder", sendForkchoiceRequest(t, builder.engine("control"), stale, cldriver.StringID("control")), cldriver.StatusValid)
	if h, err := headOf(builder); err != nil || h.Number != head.Number-1 {
		t.Fatalf("control: builder head %v (%v) after a head update to #%d: geth did not obey, so the checks above prove nothing", h, err, head.Number-1)
	}
	time.Sleep(100 * time.Millisecond)
	control.Stop()
	if back, _ := control.Backwards(); len(back) == 0 {
		t.Fatalf("control: the JSON-RPC sampler did not see the builder's head go back")
	}
	if bad, _, err := gethLogRegressions(builder.LogPath); err != nil || len(bad) == 0 {
		t.Fatalf("control: the log check did not see the builder's head go back (%v)", err)
	} else {
		t.Logf("control: the builder's log shows the regression: %s", bad[0])
	}
	t.Logf("scenario (c): %d blocks in %v", driver.Head().Number, time.Since(start).Round(time.Second))
}
