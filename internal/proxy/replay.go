package proxy

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// replayRing keeps the newest newPayloads, bounded in bytes (a body counts at its capacity:
// that is the memory it holds), and the writer's
// newest forkchoiceUpdated, so that an EL that comes back (or answers SYNCING because it
// lacks a parent) can be given, in order, exactly what it missed. It implements
// upstream.Replay.
type replayRing struct {
	maxBytes int64

	mu     sync.Mutex
	order  []*upstream.Delivery // oldest first
	byHash map[engine.Hash]*upstream.Delivery
	bytes  int64
	fcu    *upstream.Delivery // the writer's newest update, without payload attributes
}

var _ upstream.Replay = (*replayRing)(nil)

func newReplayRing(maxBytes int64) *replayRing {
	return &replayRing{maxBytes: maxBytes, byHash: make(map[engine.Hash]*upstream.Delivery)}
}

// add keeps a newPayload the proxy has just accepted for the first time.
func (r *replayRing) add(d *upstream.Delivery) {
	if r.maxBytes <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byHash[d.Req.Block.Hash]; ok {
		return
	}
	d.Retain() // released when the ring forgets the block
	r.order = append(r.order, d)
	r.byHash[d.Req.Block.Hash] = d
	r.bytes += int64(cap(d.Body))
	r.trim()
}

// trim forgets the oldest blocks while the ring is over its bytes; the newest block stays
// whatever its size. Called with r.mu held.
func (r *replayRing) trim() {
	for len(r.order) > 1 && r.bytes > r.maxBytes {
		old := r.order[0]
		r.order[0] = nil
		r.order = r.order[1:]
		delete(r.byHash, old.Req.Block.Hash)
		r.bytes -= int64(cap(old.Body))
		old.Release()
	}
}

// prefer makes d the copy of its block that the ring replays, when the ring holds another
// copy of the block (other bytes claiming the same hash): d was just found VALID, and the
// copy kept first may be a bad one.
func (r *replayRing) prefer(d *upstream.Delivery) {
	if r.maxBytes <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.byHash[d.Req.Block.Hash]
	if !ok || old == d || old.Copy == d.Copy {
		return
	}
	i := slices.Index(r.order, old)
	if i < 0 {
		return
	}
	d.Retain() // released when the ring forgets the block
	r.order[i] = d
	r.byHash[d.Req.Block.Hash] = d
	r.bytes += int64(cap(d.Body)) - int64(cap(old.Body))
	old.Release()
	r.trim() // the good copy may be the larger
}

// printOf fingerprints the copy of block h that the ring holds when it is the delivery
// numbered seq (see copies.go); false when the ring does not hold that copy.
func (r *replayRing) printOf(h engine.Hash, seq uint64, seed maphash.Seed) (uint64, bool) {
	r.mu.Lock()
	d, ok := r.byHash[h]
	ok = ok && d.Seq == seq
	if ok {
		d.Retain() // the hash is taken outside the lock
	}
	r.mu.Unlock()
	if !ok {
		return 0, false
	}
	defer d.Release()
	return copyPrint(seed, &d.Req), true
}

// setForkchoice keeps the writer's newest update. Payload attributes are stripped: a replay
// must move the head, never start a build.
func (r *replayRing) setForkchoice(d *upstream.Delivery) {
	if d.Req.HasAttributes {
		body, err := engine.WithoutAttributes(d.Body)
		if err != nil {
			return
		}
		req, err := engine.Inspect(body)
		if err != nil {
			return
		}
		d = d.WithBody(body, req)
	}
	d.Retain() // released when a newer update replaces it
	r.mu.Lock()
	old := r.fcu
	r.fcu = d
	r.mu.Unlock()
	if old != nil {
		old.Release()
	}
}

// close lets go of everything the ring holds. The ring is empty afterwards.
func (r *replayRing) close() {
	r.mu.Lock()
	order, fcu := r.order, r.fcu
	r.order, r.fcu, r.bytes = nil, nil, 0
	clear(r.byHash)
	r.mu.Unlock()
	for _, d := range order {
		d.Release()
	}
	if fcu != nil {
		fcu.Release()
	}
}

// Since walks back through the ring's parent links from the newest block that extends the
// writer's newest head (a newPayload arrives before the update that makes it the head, and
// an EL that answered it SYNCING needs it too), or else from that head, and returns the
// blocks after head, oldest first. When the walk reaches head, or a block whose parent is
// head, the EL is connected; when the ring runs out first, gap is true and only the update
// is returned: the EL must sync the rest over p2p. An EL on another branch gets the whole
// canonical path the ring holds: it imports what it can.
func (r *replayRing) Since(head upstream.Block) ([]*upstream.Delivery, *upstream.Delivery, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fcu == nil {
		return nil, nil, false
	}
	var path []*upstream.Delivery
	tip := r.fcu.Req.Forkchoice.Head
	if len(r.order) > 0 && r.descends(r.order[len(r.order)-1], tip) {
		tip = r.order[len(r.order)-1].Req.Block.Hash
	}
	cur, ok := r.byHash[tip]
	connected := tip == head.Hash
	for ok && !connected {
		if cur.Req.Block.Hash == head.Hash || cur.Req.Block.Number <= head.Number {
			connected = cur.Req.Block.Hash == head.Hash
			break
		}
		path = append(path, cur)
		if cur.Req.Block.Parent == head.Hash {
			connected = true
			break
		}
		cur, ok = r.byHash[cur.Req.Block.Parent]
	}
	// path is newest first.
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	gap := !connected && len(path) > 0 && path[0].Req.Block.Number > head.Number+1 && !ok
	if gap {
		path = nil // the ring does not reach back to the EL's head
	}
	// Otherwise: connected, or the walk reached the EL's height on another branch (send the
	// branch: the EL imports what it can), or the EL is level with the newest head.
	for _, d := range path {
		d.Retain() // for the caller, who releases each
	}
	r.fcu.Retain()
	return path, r.fcu, gap
}

// descends reports whether d is a descendant of the block ancestor, through blocks the ring
// holds. Called with r.mu held.
func (r *replayRing) descends(d *upstream.Delivery, ancestor engine.Hash) bool {
	for hops := 0; d != nil && hops < len(r.order); hops++ {
		if d.Req.Block.Parent == ancestor {
			return true
		}
		d = r.byHash[d.Req.Block.Parent]
	}
	return false
}

// stats reports the ring's size.
func (r *replayRing) stats() (blocks int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order), r.bytes
}
