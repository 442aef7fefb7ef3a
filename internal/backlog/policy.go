package backlog

import (
	"errors"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// Kind is what a queued request is, as far as shedding cares.
type Kind uint8

// Kinds.
const (
	KindOther      Kind = iota // anything else: never shed
	KindNewPayload             // a block
	KindForkchoice             // a head update, perhaps with a build
)

// Item describes one queued request.
type Item struct {
	Kind Kind
	// Hash and Parent are the block's, for KindNewPayload.
	Hash, Parent engine.Hash
	// Head is the new head, for KindForkchoice.
	Head engine.Hash
	// Build is set for a forkchoiceUpdated with payload attributes; BuildTime is the
	// attributes' timestamp (Unix seconds): the start of the slot the build is for.
	Build     bool
	BuildTime uint64
}

// Policy decides what a lane over its share of the budget sheds, and in which order.
type Policy struct {
	// Slot is the slot duration: a build whose slot began a whole slot ago is past.
	Slot time.Duration
}

// NewPolicy validates the slot duration.
func NewPolicy(slot time.Duration) (Policy, error) {
	if slot <= 0 {
		return Policy{}, errors.New("slot duration must be positive")
	}
	return Policy{Slot: slot}, nil
}

// Queue is a lane's queue as the policy reads it, oldest first.
type Queue interface {
	Len() int
	At(i int) Item
	// HasChild reports whether a queued newPayload names h as its parent. A lane answers
	// it from an index it keeps.
	HasChild(h engine.Hash) bool
	// Updates reports whether the queue may hold what steps 1 and 2 of Next shed: a build,
	// or a forkchoiceUpdated that another follows with no newPayload between. False skips
	// Next's forward pass, so a lane that keeps counts answers it without a look at its
	// queue.
	Updates() bool
}

// Items is a queue held as a slice; HasChild looks through it.
type Items []Item

// Len returns the number of items.
func (q Items) Len() int { return len(q) }

// At returns item i.
func (q Items) At(i int) Item { return q[i] }

// Updates is always true: a slice keeps no counts.
func (q Items) Updates() bool { return true }

// HasChild reports whether an item is a newPayload whose parent is h.
func (q Items) HasChild(h engine.Hash) bool {
	for _, it := range q {
		if it.Kind == KindNewPayload && it.Parent == h {
			return true
		}
	}
	return false
}

// Next returns the queue positions (ascending) that the lane sheds in its next step, or nil
// when nothing may be shed. The order of the steps:
//
//  1. a forkchoiceUpdated without attributes that a later one supersedes: another
//     forkchoiceUpdated follows it before any newPayload does. An update followed by a block
//     is never superseded: an EL that imports a burst of blocks without its head moving runs
//     out of state (geth's path scheme keeps 128 blocks of state above its head, then
//     refuses payloads as if snap syncing), so every block keeps the head update after it;
//  2. a build (forkchoiceUpdated with attributes) whose slot is past: no one will fetch it;
//     steps 1 and 2 take the oldest such update first;
//  3. the newest newPayload on which no queued newPayload builds, with every later
//     forkchoiceUpdated that names it as head (a head the EL cannot have once its block is
//     gone). Shedding from the newest end keeps what stays queued a chain the EL can import;
//     what was shed is sent again from the recent blocks once the queue has drained.
//
// Other requests are never shed. A step reads the queue once from the front for steps 1
// and 2 (unless q.Updates says there is nothing to find), and from the back for step 3, and
// allocates only what it returns.
func (p Policy) Next(q Queue, now time.Time) []int {
	if q.Updates() {
		if i := p.oldestUpdate(q, now); i >= 0 {
			return []int{i}
		}
	}
	for i := q.Len() - 1; i >= 0; i-- {
		it := q.At(i)
		if it.Kind != KindNewPayload || q.HasChild(it.Hash) {
			continue
		}
		shed := []int{i}
		for j := i + 1; j < q.Len(); j++ {
			if later := q.At(j); later.Kind == KindForkchoice && later.Head == it.Hash {
				shed = append(shed, j)
			}
		}
		return shed
	}
	return nil
}

// oldestUpdate is the position of the oldest forkchoiceUpdated that steps 1 and 2 shed, or
// -1.
func (p Policy) oldestUpdate(q Queue, now time.Time) int {
	pending := -1 // an update without attributes that no block has followed yet
	for i := range q.Len() {
		it := q.At(i)
		switch it.Kind {
		case KindNewPayload:
			pending = -1
		case KindForkchoice:
			if pending >= 0 {
				return pending // superseded by this one
			}
			if it.Build && p.past(it.BuildTime, now) {
				return i
			}
			if !it.Build {
				pending = i
			}
		}
	}
	return -1
}

// past reports whether the slot that starts at ts (Unix seconds) has ended.
func (p Policy) past(ts uint64, now time.Time) bool {
	end := time.Unix(int64(min(ts, 1<<62)), 0).Add(p.Slot)
	return !now.Before(end)
}
