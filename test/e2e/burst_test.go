package e2e

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// burstTxs is the transfers in each burst block: enough that a block is ~9 KB of request,
// so the stalled geth's backlog outgrows a 1 MiB budget within the burst.
const burstTxs = 40

// maxBlocksWithoutHead is a few more blocks than sync-proxy lets pass without a head update
// when it replays (32): a heal of more than geth's 128-block state window needs those.
const maxBlocksWithoutHead = 128

// TestProxyMirrorBurst: a beacon node that range-syncs sends a few hundred real blocks as fast
// as they are accepted. 300 blocks are built by a real geth, then sent unpaced (newPayload
// then forkchoiceUpdated, each block) through sync-proxy in mirror mode into three gethes:
//
//   - unpaced: every geth reaches the head, nothing is shed (the default budget holds it all);
//   - stalled: the same with --backlog-bytes 1MiB (the burst is 3 MB) and one geth stopped
//     (SIGSTOP) for 10 s from block 100. A geth imports ~30 of these blocks a second, so the
//     running gethes trail the unpaced sender too and the budget binds for all three: each
//     sheds and heals from the recent blocks (over 128 blocks at a time, so the replay must
//     move the head as it goes); every geth reaches the head.
func TestProxyMirrorBurst(t *testing.T) {
	const blocks, stallAt, stallFor = 300, 100, 10 * time.Second
	syncProxyBinary(t)
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix())-(blocks+1)*slotSeconds)
	builder := startGeths(t, chain, "builder")[0]
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	driver, err := cldriver.New(ctx, cldriver.Config{
		Fork: chain.fork, Engine: builder.engine("builder-cl"), RPC: builder.rpc(), ChainID: chain.chainID,
		Funder: chain.funder, Recipient: common.HexToAddress("0x000000000000000000000000000000000000beef"),
		TxsPerBlock: burstTxs, GenesisTime: chain.genesisTime, SlotSeconds: chain.slotSeconds,
		FeeRecipient: feeRecipient, TargetGasLimit: genesisGasLimit,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var chainBlocks []*cldriver.Block
	for range blocks {
		bctx, bcancel := context.WithTimeout(context.Background(), blockTimeout)
		b, err := driver.BuildBlock(bctx)
		bcancel()
		if err != nil {
			t.Fatalf("build: %v", err)
		}
		if len(b.Transactions) != burstTxs {
			t.Fatalf("block %d carries %d transfers, want %d", b.Number, len(b.Transactions), burstTxs)
		}
		chainBlocks = append(chainBlocks, b)
	}
	head := chainBlocks[blocks-1].Head()
	t.Logf("built %d blocks of %d transfers in %v; a newPayload is %d bytes", blocks, burstTxs, time.Since(start).Round(time.Millisecond), len(chainBlocks[0].NewPayload.Body(cldriver.NumberID(1))))

	run := func(t *testing.T, extra []string, stall bool) *syncProxy {
		nodes := startGeths(t, chain, "el1", "el2", "el3")
		bn := newBeaconNode(t, "bn1")
		proxy := startSyncProxy(t, proxyConfig{
			els:   []proxyEL{{node: nodes[0], role: roleFollower}, {node: nodes[1], role: roleFollower}, {node: nodes[2], role: roleFollower}},
			bns:   []*beaconNode{bn},
			slot:  slotSeconds * time.Second,
			extra: extra,
		})
		ep := proxy.engine(bn)
		var stoppedAt time.Time
		sendStart := time.Now()
		for _, b := range chainBlocks {
			if stall && b.Number == stallAt {
				if err := nodes[2].Process().Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				stoppedAt = time.Now()
			}
			np, fcu := blockIDs(b.Number, 0)
			requireStatus(t, fmt.Sprintf("block %d newPayload", b.Number), sendNewPayload(t, ep, b, np), cldriver.StatusSyncing)
			requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated", b.Number), sendForkchoice(t, ep, b, fcu), cldriver.StatusSyncing)
		}
		t.Logf("sent %d blocks unpaced in %v", blocks, time.Since(sendStart).Round(time.Millisecond))
		if stall {
			waitHeadsEqual(t, head, nodes[0], nodes[1])
			time.Sleep(time.Until(stoppedAt.Add(stallFor))) // a stalled process: wall time is the point
			if err := nodes[2].Process().Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			t.Logf("el3 continued after %v", time.Since(stoppedAt).Round(time.Millisecond))
		}
		took, ok := awaitHeads(head, 60*time.Second, nodes...)
		if !ok {
			report, _ := headsReport(head, nodes)
			t.Fatalf("heads did not reach %s:\n%s\n%s", head, report, proxy.mustStatus(t))
		}
		t.Logf("every geth at %s %v after the last block was sent (or el3 continued)", head, took.Round(time.Millisecond))
		requireNonce(t, chain, driver.Sent(), nodes...)
		return proxy
	}

	t.Run("unpaced", func(t *testing.T) {
		proxy := run(t, nil, false)
		for _, e := range proxy.mustStatus(t).ELs {
			if e.ShedBlocks != 0 || e.Behind {
				t.Errorf("%s shed %d blocks with the default budget", e.Name, e.ShedBlocks)
			}
		}
	})
	t.Run("stalled", func(t *testing.T) {
		proxy := run(t, []string{"--max-body", "1MiB", "--backlog-bytes", "1MiB"}, true)
		els := proxy.mustStatus(t).ELs
		for _, e := range els {
			t.Logf("%s: shed %d blocks (%d bytes), heals %d, drops %v", e.Name, e.ShedBlocks, e.ShedBytes, e.Heals, e.Drops)
			if e.Behind {
				t.Errorf("%s still behind", e.Name)
			}
		}
		if stalled := els[2]; stalled.ShedBlocks <= maxBlocksWithoutHead || stalled.Heals == 0 {
			t.Errorf("el3 shed %d blocks and healed %d times: the heal was not exercised past geth's state window", stalled.ShedBlocks, stalled.Heals)
		}
	})
}
