// Package cldriver is a minimal consensus-layer stand-in for tests and devnets: it builds
// blocks on one "builder" execution client through the Engine API and hands out the exact
// newPayload and forkchoiceUpdated request bodies so that callers can replay them as beacon
// nodes, directly to other execution clients or through sync-proxy.
//
// One block is built as a beacon node would build it:
//
//	forkchoiceUpdated(head, attributes) → getPayload → newPayload → forkchoiceUpdated(new head)
//
// with forkchoiceUpdatedV3 / getPayloadV5 / newPayloadV4 for Osaka and forkchoiceUpdatedV4 /
// getPayloadV6 / newPayloadV5 for Amsterdam (reference/engine-api.md §2). Before each build the
// driver sends signed EIP-1559 transfers to the builder's public JSON-RPC and checks that they
// land in the block.
//
// Re-orgs: BuildOnParent builds a second block on the head's parent (a proposer's re-org
// build, or another branch), and SetHead moves the head to any block the driver built, so a
// test can switch between branches and build on either.
//
// Time is virtual: a block in slot s has timestamp genesisTime + s·slot whatever the wall
// clock says. Without re-orgs block n is in slot n; a block built on the head's parent takes
// the slot after the head's, as a proposer's would.
// geth v1.17.10 accepts timestamps in the past and in the future (post-merge it no longer
// checks for future blocks), so callers pick the genesis time that suits them.
//
// Payload building in geth is asynchronous: forkchoiceUpdated returns as soon as an empty
// block is ready and the block with transactions follows a few milliseconds later, and
// getPayload stops the build. No Engine API call tells when the full block is ready, so the
// driver retries: if getPayload returns a block without the submitted transactions it starts a
// fresh build (another prevRandao) and waits twice as long before asking again.
package cldriver
