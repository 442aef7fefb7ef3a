package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// TestProxyBuildsThroughPrimaryLoss: a beacon node whose only execution endpoint is
// sync-proxy (direct mode) builds every block through it — forkchoiceUpdated with payload
// attributes, getPayload, newPayload, forkchoiceUpdated — and the primary geth is stopped
// halfway: block production continues on a follower (the build goes to the followers, the
// getPayload to the follower that issued the payload id), and the surviving gethes follow.
func TestProxyBuildsThroughPrimaryLoss(t *testing.T) {
	const before, after = 6, 6
	syncProxyBinary(t)
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix())-(before+after+1)*slotSeconds)
	nodes := startGeths(t, chain, "primary", "follower1", "follower2")
	primary, survivors := nodes[0], nodes[1:]
	bn := newBeaconNode(t, "bn1")
	proxy := startSyncProxy(t, proxyConfig{
		els: []proxyEL{
			{node: primary, role: rolePrimary},
			{node: survivors[0], role: roleFollower},
			{node: survivors[1], role: roleFollower},
		},
		bns:  []*beaconNode{bn},
		slot: slotSeconds * time.Second,
	})
	// The driver reads genesis from a follower, which survives.
	driver := newProxyDriver(t, chain, proxy, bn, survivors[0])
	build := func(phase string) *cldriver.Block {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := driver.BuildBlock(ctx)
		if err != nil {
			t.Fatalf("%s: build block %d through sync-proxy: %v\nproxy log:\n%s", phase, driver.Head().Number+1, err, fileTail(proxy.logPath, 40))
		}
		return b
	}
	for range before {
		waitHeadsEqual(t, build("primary up").Head(), nodes...)
	}
	primary.Stop()
	t.Logf("primary stopped at block %d", driver.Head().Number)
	for range after {
		start := time.Now()
		b := build("primary down")
		waitHeadsEqual(t, b.Head(), survivors...)
		t.Logf("block %d built through sync-proxy without the primary in %v", b.Number, time.Since(start).Round(time.Millisecond))
	}
	st := proxy.mustStatus(t)
	for _, el := range st.ELs {
		if el.Name == primary.name && el.State != "down" {
			t.Errorf("status shows the stopped primary as %q, want down", el.State)
		}
	}
}
