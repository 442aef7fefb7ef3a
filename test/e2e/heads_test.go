package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// headTimeout bounds how long a block may take to reach every geth.
const headTimeout = 15 * time.Second

// headOf reads a geth's head over its own HTTP JSON-RPC.
func headOf(n *gethNode) (cldriver.Head, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cldriver.LatestHead(ctx, n.rpc())
}

// waitHeadsEqual polls every pollInterval until every node's head is want, and fails with
// each node's head (and, through cleanup, the log tails) after headTimeout.
func waitHeadsEqual(t *testing.T, want cldriver.Head, nodes ...*gethNode) {
	t.Helper()
	deadline := time.Now().Add(headTimeout)
	for {
		report, ok := headsReport(want, nodes)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("heads did not reach %s within %v:\n%s", want, headTimeout, report)
		}
		time.Sleep(pollInterval)
	}
}

// headsReport says where each node's head is and whether all of them are at want.
func headsReport(want cldriver.Head, nodes []*gethNode) (string, bool) {
	var b strings.Builder
	ok := true
	for _, n := range nodes {
		h, err := headOf(n)
		switch {
		case err != nil:
			ok = false
			fmt.Fprintf(&b, "  %s: %v\n", n.name, err)
		case h != want:
			ok = false
			fmt.Fprintf(&b, "  %s: head %s\n", n.name, h)
		default:
			fmt.Fprintf(&b, "  %s: ok\n", n.name)
		}
	}
	return b.String(), ok
}

// requireNonce checks that every node has executed exactly want transactions from addr.
func requireNonce(t *testing.T, chain *testChain, want uint64, nodes ...*gethNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range nodes {
		got, err := cldriver.Nonce(ctx, n.rpc(), chain.funderAddress(), "latest")
		if err != nil {
			t.Fatalf("%s: read funder nonce: %v", n.name, err)
		}
		if got != want {
			t.Fatalf("%s: funder nonce %d, want %d (transactions not executed)", n.name, got, want)
		}
	}
}

// awaitHeads polls until every node's head is want or timeout passes, and returns how long
// it took and whether it happened; it does not fail the test.
func awaitHeads(want cldriver.Head, timeout time.Duration, nodes ...*gethNode) (time.Duration, bool) {
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		if _, ok := headsReport(want, nodes); ok {
			return time.Since(start), true
		}
		if time.Now().After(deadline) {
			return time.Since(start), false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
