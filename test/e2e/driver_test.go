package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

const (
	txsPerBlock  = 3
	blockTimeout = 30 * time.Second
)

// feeRecipient receives the priority fees of every test block.
var feeRecipient = common.HexToAddress("0x00000000000000000000000000000000000fee01")

// newDriver returns a CL driver that builds on builder.
func newDriver(t *testing.T, chain *testChain, builder *gethNode) *cldriver.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := cldriver.New(ctx, cldriver.Config{
		Fork:           chain.fork,
		Engine:         builder.engine("builder-cl"),
		RPC:            builder.rpc(),
		ChainID:        chain.chainID,
		Funder:         chain.funder,
		Recipient:      common.HexToAddress("0x000000000000000000000000000000000000beef"),
		TxsPerBlock:    txsPerBlock,
		GenesisTime:    chain.genesisTime,
		SlotSeconds:    chain.slotSeconds,
		FeeRecipient:   feeRecipient,
		TargetGasLimit: genesisGasLimit,
	})
	if err != nil {
		t.Fatalf("start driver on %s: %v", builder.name, err)
	}
	return d
}

// newProxyDriver returns a CL driver for a beacon node whose engine endpoint is sync-proxy:
// its builds go through the proxy to the ELs. It reads genesis from rpcNode and sends no
// transactions (they would have to reach the EL that builds).
func newProxyDriver(t *testing.T, chain *testChain, proxy *syncProxy, bn *beaconNode, rpcNode *gethNode) *cldriver.Driver {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := cldriver.New(ctx, cldriver.Config{
		Fork:           chain.fork,
		Engine:         proxy.engine(bn),
		RPC:            rpcNode.rpc(),
		ChainID:        chain.chainID,
		Recipient:      common.HexToAddress("0x000000000000000000000000000000000000beef"),
		GenesisTime:    chain.genesisTime,
		SlotSeconds:    chain.slotSeconds,
		FeeRecipient:   feeRecipient,
		TargetGasLimit: genesisGasLimit,
	})
	if err != nil {
		t.Fatalf("start driver for %s through sync-proxy: %v", bn.name, err)
	}
	return d
}

// buildBlock builds the next block on the driver's builder, with its transactions.
func buildBlock(t *testing.T, d *cldriver.Driver) *cldriver.Block {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	b, err := d.BuildBlock(ctx)
	if err != nil {
		t.Fatalf("build block %d: %v", d.Head().Number+1, err)
	}
	if len(b.Transactions) != txsPerBlock {
		t.Fatalf("block %d carries %d driver transactions, want %d", b.Number, len(b.Transactions), txsPerBlock)
	}
	return b
}

// sendNewPayload sends the block's newPayload to ep with id and returns the payload status.
func sendNewPayload(t *testing.T, ep *cldriver.Endpoint, b *cldriver.Block, id cldriver.ID) cldriver.PayloadStatus {
	t.Helper()
	return sendNewPayloadRequest(t, ep, b.NewPayload, id)
}

// sendForkchoice sends the block's head update to ep with id and returns the payload status.
func sendForkchoice(t *testing.T, ep *cldriver.Endpoint, b *cldriver.Block, id cldriver.ID) cldriver.PayloadStatus {
	t.Helper()
	return sendForkchoiceRequest(t, ep, b.ForkchoiceUpdated, id)
}

// sendNewPayloadRequest sends any newPayload request (e.g. a bad copy from withBlobHashes) to
// ep and returns the payload status.
func sendNewPayloadRequest(t *testing.T, ep *cldriver.Endpoint, req cldriver.Request, id cldriver.ID) cldriver.PayloadStatus {
	t.Helper()
	var st cldriver.PayloadStatus
	sendRequest(t, ep, req, id, &st)
	return st
}

// sendForkchoiceRequest sends any head update (e.g. a stale one from Driver.ForkchoiceUpdated)
// to ep and returns the payload status.
func sendForkchoiceRequest(t *testing.T, ep *cldriver.Endpoint, req cldriver.Request, id cldriver.ID) cldriver.PayloadStatus {
	t.Helper()
	var resp cldriver.ForkchoiceResponse
	sendRequest(t, ep, req, id, &resp)
	return resp.PayloadStatus
}

// sendRequest sends req to ep with id, decodes the result into result, and fails the test on any
// transport, HTTP or JSON-RPC error.
func sendRequest(t *testing.T, ep *cldriver.Endpoint, req cldriver.Request, id cldriver.ID, result any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
	defer cancel()
	if err := ep.Send(ctx, req, id, result); err != nil {
		t.Fatalf("%s (id %s) to %s: %v", req.Method, id, ep.URL, err)
	}
}

// requireStatus fails unless st is one of want.
func requireStatus(t *testing.T, what string, st cldriver.PayloadStatus, want ...string) {
	t.Helper()
	for _, w := range want {
		if st.Status == w {
			return
		}
	}
	t.Fatalf("%s: status %s, want one of %v", what, st, want)
}

// TestDriverDirect proves the harness: one builder geth and three geths driven directly by the
// driver, each with its own JWT secret, 20 blocks with transfers, heads equal after each block.
func TestDriverDirect(t *testing.T) {
	for _, fork := range []cldriver.Fork{cldriver.Osaka, cldriver.Amsterdam} {
		t.Run(fork.String(), func(t *testing.T) { testDriverDirect(t, fork, 20) })
	}
}

func testDriverDirect(t *testing.T, fork cldriver.Fork, blocks int) {
	// Virtual slots from "now": the later blocks carry future timestamps, which geth accepts.
	chain := newTestChain(t, fork, uint64(time.Now().Unix()))
	nodes := startGeths(t, chain, "builder", "geth1", "geth2", "geth3")
	for _, n := range nodes {
		requireLoopbackOnly(t, n.name, n.pid())
	}
	driver := newDriver(t, chain, nodes[0])
	driven := nodes[1:]
	for range blocks {
		b := buildBlock(t, driver)
		importBlock(t, b, driven...)
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	requireNonce(t, chain, driver.Sent(), nodes...)

	// The restart helpers. A clean restart keeps the head. A stopped geth that missed blocks
	// catches up once the missed payloads are replayed (it has no peers to sync from).
	driven[0].Restart()
	waitHeadsEqual(t, driver.Head(), nodes...)
	driven[1].Stop()
	b := buildBlock(t, driver)
	importBlock(t, b, driven[0], driven[2])
	driven[1].Start()
	catchUp(t, driver, driven[1])
	waitHeadsEqual(t, b.Head(), nodes...)
	requireNonce(t, chain, driver.Sent(), nodes...)

	// Kill is a crash: geth comes back with whatever it had persisted (often only genesis),
	// so only "back up, on the driver's chain" is asserted.
	driven[2].Kill()
	driven[2].Start()
	requireOnDriverChain(t, driver, driven[2])
}

// importBlock sends the block's newPayload and head update straight to each node, with the
// node's own secret, and requires VALID for both. Ids alternate between "np7" and numeric style.
func importBlock(t *testing.T, b *cldriver.Block, nodes ...*gethNode) {
	t.Helper()
	for i, n := range nodes {
		ep := n.engine("cl-" + n.name)
		npID, fcuID := blockIDs(b.Number, i)
		requireStatus(t, fmt.Sprintf("block %d newPayload to %s", b.Number, n.name),
			sendNewPayload(t, ep, b, npID), cldriver.StatusValid)
		requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated to %s", b.Number, n.name),
			sendForkchoice(t, ep, b, fcuID), cldriver.StatusValid)
	}
}

// catchUp replays to n every driver block above n's head, then the driver's head update.
func catchUp(t *testing.T, d *cldriver.Driver, n *gethNode) {
	t.Helper()
	head := requireOnDriverChain(t, d, n)
	blocks := d.Blocks()
	t.Logf("%s: head %s after restart, replaying %d blocks", n.name, head, uint64(len(blocks))-head.Number)
	ep := n.engine("cl-" + n.name)
	for _, b := range blocks[head.Number:] {
		requireStatus(t, fmt.Sprintf("replay block %d newPayload to %s", b.Number, n.name),
			sendNewPayload(t, ep, b, cldriver.StringID(fmt.Sprintf("np%d", b.Number))), cldriver.StatusValid)
	}
	last := blocks[len(blocks)-1]
	requireStatus(t, fmt.Sprintf("replay head update to %s", n.name),
		sendForkchoice(t, ep, last, cldriver.StringID(fmt.Sprintf("fcu%d", last.Number))), cldriver.StatusValid)
}

// requireOnDriverChain reads n's head and fails unless it is a block of the driver's chain.
func requireOnDriverChain(t *testing.T, d *cldriver.Driver, n *gethNode) cldriver.Head {
	t.Helper()
	head, err := headOf(n)
	if err != nil {
		t.Fatalf("%s: read head: %v", n.name, err)
	}
	blocks := d.Blocks()
	switch {
	case head.Number == 0 && head.Hash == d.Genesis():
	case head.Number > 0 && head.Number <= uint64(len(blocks)) && blocks[head.Number-1].Hash == head.Hash:
	default:
		t.Fatalf("%s: head %s is not on the driver's chain (driver head %s)", n.name, head, d.Head())
	}
	return head
}

// blockIDs alternates JSON-RPC id styles between senders: "np7"/"fcu7" for even senders,
// numbers for odd ones.
func blockIDs(number uint64, sender int) (newPayload, forkchoice cldriver.ID) {
	if sender%2 == 0 {
		return cldriver.StringID(fmt.Sprintf("np%d", number)), cldriver.StringID(fmt.Sprintf("fcu%d", number))
	}
	return cldriver.NumberID(2 * number), cldriver.NumberID(2*number + 1)
}
