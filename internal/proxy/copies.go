package proxy

import (
	"hash/maphash"

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

// maxCopies bounds the different copies of one block hash whose answers are kept for reuse;
// beyond it, the oldest but the first is forgotten (a copy not kept is sent again).
const maxCopies = 4

// copyPrint fingerprints a newPayload's bytes: its method and params. seed is the proxy's
// own, so no one can make two different copies collide on purpose. Never 0 (which
// divergence reads as "the only copy").
func copyPrint(seed maphash.Seed, req *engine.Request) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(req.Method)
	h.WriteByte(0)
	h.Write(req.Params)
	return h.Sum64() | 1
}

// blockCopies is what the proxy sent for one claimed block hash: each different copy, the
// first one first, with its slot on each lane.
type blockCopies struct {
	copies []blockCopy
}

type blockCopy struct {
	fp    uint64
	slots []*upstream.Slot
}

// plan decides, for a copy with fingerprint fp arriving for a block hash that has the
// copies b (nil: the first), on which lanes it must be sent (send[i]) and which slots it
// may reuse instead (reuse[i], nil where it is sent). resend reports whether a lane's earlier
// slot for the same bytes must be sent again (see needsResend). different is true for a
// copy whose bytes no earlier copy had.
func (b *blockCopies) plan(fp uint64, lanes int, resend func(*upstream.Slot) bool) (reuse []*upstream.Slot, different bool) {
	reuse = make([]*upstream.Slot, lanes)
	if b == nil || len(b.copies) == 0 {
		return reuse, false
	}
	i := b.find(fp)
	if i < 0 {
		return reuse, true
	}
	for l, s := range b.copies[i].slots {
		if l < lanes && s != nil && !resend(s) {
			reuse[l] = s
		}
	}
	return reuse, false
}

// record keeps slots as the copy fp's (replacing what it had).
func (b *blockCopies) record(fp uint64, slots []*upstream.Slot) {
	if i := b.find(fp); i >= 0 {
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

func (b *blockCopies) find(fp uint64) int {
	for i, c := range b.copies {
		if c.fp == fp {
			return i
		}
	}
	return -1
}
