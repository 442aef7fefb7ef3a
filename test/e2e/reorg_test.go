package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// TestProxyFollowsTheWritersReorgs: a beacon node whose only execution endpoint is
// sync-proxy (direct mode: a primary and two followers) does what consensus clients do
// around a late block, and every geth behind the proxy follows each step:
//
//  1. B1 and B2 are built and made head.
//  2. Proposer's re-org build: B2 came late, so the next proposer builds on B1:
//     forkchoiceUpdated(head = B1, attributes). The BN gets a payload id, getPayload returns
//     a block on B1 (the driver checks the parent), and every geth has B1 as head.
//  3. Re-org to that block (another geth-built branch), and back to B2: every geth follows.
//  4. A block on each branch, and a two-block re-org between them: every geth follows.
//
// A proxy stricter than the ELs (dropping the writer's step back as a stale head) fails
// step 2: the BN gets SYNCING without a payload id, a missed proposal.
func TestProxyFollowsTheWritersReorgs(t *testing.T) {
	syncProxyBinary(t)
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix()))
	nodes := startGeths(t, chain, "primary", "follower1", "follower2")
	bn := newBeaconNode(t, "bn1")
	proxy := startSyncProxy(t, proxyConfig{
		els: []proxyEL{
			{node: nodes[0], role: rolePrimary},
			{node: nodes[1], role: roleFollower},
			{node: nodes[2], role: roleFollower},
		},
		bns:  []*beaconNode{bn},
		slot: slotSeconds * time.Second,
	})
	driver := newProxyDriver(t, chain, proxy, bn, nodes[1])
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(step string, err error) {
		t.Helper()
		t.Fatalf("%s: %v\nproxy: %s\nproxy log:\n%s", step, err, proxy.mustStatus(t), fileTail(proxy.logPath, 40))
	}
	build := func(step string) *cldriver.Block {
		t.Helper()
		b, err := driver.BuildBlock(ctx)
		if err != nil {
			fail(step, err)
		}
		waitHeadsEqual(t, b.Head(), nodes...)
		return b
	}
	setHead := func(step string, b *cldriver.Block) {
		t.Helper()
		if err := driver.SetHead(ctx, b); err != nil {
			fail(step, err)
		}
		waitHeadsEqual(t, b.Head(), nodes...)
	}

	// 1.
	b1 := build("B1")
	b2 := build("B2")

	// 2. The build on B1 goes through the proxy to every geth; each re-orgs to B1.
	r2, err := driver.BuildOnParent(ctx)
	if err != nil {
		fail("proposer's re-org build on B1", err)
	}
	if r2.ParentHash != b1.Hash || r2.Number != b2.Number || r2.Hash == b2.Hash {
		t.Fatalf("re-org build %s on %s, want a second block 2 on B1 %s", r2.Head(), r2.ParentHash.TerminalString(), b1.Head())
	}
	waitHeadsEqual(t, b1.Head(), nodes...)
	t.Logf("proposer's re-org build: payload %s on B1 %s; every geth's head is B1", r2.Head(), b1.Head())

	// 3.
	setHead("re-org to R2", r2)
	setHead("re-org back to B2", b2)
	setHead("re-org to R2 again", r2)

	// 4. R3 on R2, then back to B2's branch: B3 on B2, a re-org of depth 2 (R2, R3 out).
	r3 := build("R3 on R2")
	setHead("re-org back to B2 (depth 2)", b2)
	b3 := build("B3 on B2")
	setHead("re-org to R3 (depth 2)", r3)
	setHead("re-org to B3 (depth 2)", b3)
	build("B4 on B3")

	st := proxy.mustStatus(t)
	for _, el := range st.ELs {
		if el.Drops["stale_head"] != 0 {
			t.Errorf("%s dropped %d of the writer's head updates as stale: %s", el.Name, el.Drops["stale_head"], st)
		}
	}
}

// TestProxyBadCopyThenGoodCopy: two beacon nodes send one block. bn1's copy is bad: its
// expectedBlobVersionedHashes (which the block hash does not cover) name a blob the block
// does not carry, so every geth answers INVALID, as it should. bn2's copy is good: it must be
// forwarded and answered VALID (not the INVALID that bn1's bytes earned under the same
// claimed block hash), and every geth imports the block and follows it as head.
func TestProxyBadCopyThenGoodCopy(t *testing.T) {
	const blocks = 3
	syncProxyBinary(t)
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix()))
	nodes := startGeths(t, chain, "builder", "primary", "follower")
	builder, driven := nodes[0], nodes[1:]
	bn1, bn2 := newBeaconNode(t, "bn1"), newBeaconNode(t, "bn2")
	proxy := startSyncProxy(t, proxyConfig{
		els:  []proxyEL{{node: driven[0], role: rolePrimary}, {node: driven[1], role: roleFollower}},
		bns:  []*beaconNode{bn1, bn2},
		slot: slotSeconds * time.Second,
	})
	driver := newDriver(t, chain, builder)
	ep1, ep2 := proxy.engine(bn1), proxy.engine(bn2)
	for range blocks {
		b := buildBlock(t, driver)
		bad := withBlobHashes(t, b.NewPayload, common.HexToHash("0x01"+fmt.Sprintf("%062x", b.Number)))
		st := sendNewPayloadRequest(t, ep1, bad, cldriver.StringID(fmt.Sprintf("bad%d", b.Number)))
		requireStatus(t, fmt.Sprintf("block %d: bn1's bad copy", b.Number), st, cldriver.StatusInvalid)
		requireStatus(t, fmt.Sprintf("block %d: bn2's good copy after bn1's bad one", b.Number),
			sendNewPayload(t, ep2, b, cldriver.StringID(fmt.Sprintf("np%d", b.Number))), cldriver.StatusValid)
		// bn1 then gets the good copy too (from gossip, say): VALID for it as well.
		requireStatus(t, fmt.Sprintf("block %d: bn1's good copy", b.Number),
			sendNewPayload(t, ep1, b, cldriver.StringID(fmt.Sprintf("np%d", b.Number))), cldriver.StatusValid)
		for _, ep := range []*cldriver.Endpoint{ep1, ep2} {
			requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated", b.Number),
				sendForkchoice(t, ep, b, cldriver.StringID(fmt.Sprintf("fcu%d", b.Number))), cldriver.StatusValid)
		}
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	requireNonce(t, chain, driver.Sent(), nodes...)
}

// withBlobHashes returns a copy of a newPayload request whose expectedBlobVersionedHashes
// (the second parameter) are hashes.
func withBlobHashes(t *testing.T, req cldriver.Request, hashes ...common.Hash) cldriver.Request {
	t.Helper()
	var params []json.RawMessage
	if err := json.Unmarshal(req.Params, &params); err != nil || len(params) < 2 {
		t.Fatalf("%s params: %v (%d of them)", req.Method, err, len(params))
	}
	raw, err := json.Marshal(hashes)
	if err != nil {
		t.Fatal(err)
	}
	params[1] = raw
	out, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	return cldriver.Request{Method: req.Method, Params: out}
}
