package proxy

import (
	"hash/maphash"
	"sync/atomic"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// Deduplication of newPayload, and why it cannot be poisoned.
//
// Beacon nodes send the same block, so a block goes to each EL once and a second beacon
// node gets the answer the first copy earned. But the block hash is only what a copy claims:
// expectedBlobVersionedHashes (and, before it is checked, the whole body) are not covered by
// it, so one beacon node's bad copy can claim a good block's hash. An answer is therefore
// reused only for the same bytes: a copy is known by a fingerprint of its method and params
// (the id and the whitespace around the params aside), and a copy whose fingerprint differs
// is sent to every EL in its own right and answered from its own results. No beacon node is
// answered INVALID for bytes it did not send.
//
// The fingerprint is a second pass over the body (about twice what engine.Inspect costs), so
// a block that arrives once, as in a range-syncing beacon node's burst, is never
// fingerprinted: the first copy's fingerprint is taken when a second copy arrives, from the
// copy the recent blocks (replayRing) hold. Only when there is no ring is the first copy
// fingerprinted at once. A first copy that can no longer be fingerprinted (the ring has
// forgotten it) cannot be matched: a later copy is then sent again, which is safe.

// maxCopies bounds the different copies of one block hash whose answers are kept for reuse;
// beyond it, the oldest but the first is forgotten (a copy not kept is sent again).
const maxCopies = 4

// copyPrint fingerprints a newPayload's bytes: its method and params. seed is the proxy's
// own, so no one can make two different copies collide on purpose. Never 0 (not known).
func copyPrint(seed maphash.Seed, req *engine.Request) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(req.Method)
	h.WriteByte(0)
	h.Write(req.Params)
	return h.Sum64() | 1
}

// blockCopies is what the proxy sent for one claimed block hash: each different copy, the
// first one first, with its slot on each lane. Its copies are guarded by the proxy's enqMu.
type blockCopies struct {
	firstSeq uint64        // Delivery.Seq of the first copy; never changes
	firstFP  atomic.Uint64 // the first copy's fingerprint, 0 until a later copy needed it
	copies   []blockCopy   // copies[0] is the first copy (its fp is firstFP)
}

type blockCopy struct {
	fp    uint64
	slots []*upstream.Slot
}

// plan decides, for a later copy with fingerprint fp, which slots it may reuse (reuse[i]
// for lane i; nil where it must be sent). i is the copy it matches (-1: none). different
// is true for a copy whose bytes differ from every known copy, the first included; a copy
// that matches none while the first copy's fingerprint is unknown is sent, but is not
// known to differ. resend reports whether a lane's earlier slot for the same bytes must be
// sent again (see needsResend).
func (b *blockCopies) plan(fp uint64, lanes int, resend func(*upstream.Slot) bool) (i int, reuse []*upstream.Slot, different bool) {
	reuse = make([]*upstream.Slot, lanes)
	i = b.find(fp)
	if i < 0 {
		return i, reuse, b.firstFP.Load() != 0
	}
	for l, s := range b.copies[i].slots {
		if l < lanes && s != nil && !resend(s) {
			reuse[l] = s
		}
	}
	return i, reuse, false
}

// record keeps slots as copy i's, or, for i < 0, as a new copy with fingerprint fp.
func (b *blockCopies) record(i int, fp uint64, slots []*upstream.Slot) {
	if i >= 0 {
		b.copies[i].slots = slots
		return
	}
	if len(b.copies) >= maxCopies {
		// Keep the first copy: most beacon nodes send it.
		copy(b.copies[1:], b.copies[2:])
		b.copies = b.copies[:len(b.copies)-1]
	}
	b.copies = append(b.copies, blockCopy{fp: fp, slots: slots})
}

// find returns the index of the copy with fingerprint fp, or -1.
func (b *blockCopies) find(fp uint64) int {
	for i, c := range b.copies {
		if i == 0 {
			c.fp = b.firstFP.Load()
		}
		if c.fp == fp && fp != 0 {
			return i
		}
	}
	return -1
}
