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

// Next returns the queue positions (ascending) that the lane sheds in its next step, or nil
// when nothing may be shed. The order of the steps:
//
//  1. a forkchoiceUpdated without attributes that a later one supersedes (see Superseded);
//  2. a build (forkchoiceUpdated with attributes) whose slot is past: no one will fetch it;
//  3. the newest newPayload on which no queued newPayload builds, with every later
//     forkchoiceUpdated that names it as head (a head the EL cannot have once its block is
//     gone). Shedding from the newest end keeps what stays queued a chain the EL can import;
//     what was shed is sent again from the recent blocks once the queue has drained.
//
// Other requests are never shed.
func (p Policy) Next(queue []Item, now time.Time) []int {
	superseded := Superseded(queue)
	for i, it := range queue {
		if it.Kind != KindForkchoice {
			continue
		}
		if superseded[i] || (it.Build && p.past(it.BuildTime, now)) {
			return []int{i}
		}
	}
	// The newest newPayload that no queued newPayload names as parent.
	parents := make(map[engine.Hash]bool)
	for _, it := range queue {
		if it.Kind == KindNewPayload {
			parents[it.Parent] = true
		}
	}
	for i := len(queue) - 1; i >= 0; i-- {
		it := queue[i]
		if it.Kind != KindNewPayload || parents[it.Hash] {
			continue
		}
		shed := []int{i}
		for j := i + 1; j < len(queue); j++ {
			if queue[j].Kind == KindForkchoice && queue[j].Head == it.Hash {
				shed = append(shed, j)
			}
		}
		return shed
	}
	return nil
}

// Superseded marks the head updates (forkchoiceUpdated without attributes) that a later head
// update makes redundant: one follows before any newPayload does. An update followed by a
// block is never superseded: an EL that imports a burst of blocks without its head moving
// runs out of state (geth's path scheme keeps 128 blocks of state above its head, then
// refuses payloads as if snap syncing), so every block keeps the head update after it.
func Superseded(queue []Item) []bool {
	out := make([]bool, len(queue))
	later := false // a head update follows, before any newPayload
	for i := len(queue) - 1; i >= 0; i-- {
		switch queue[i].Kind {
		case KindNewPayload:
			later = false
		case KindForkchoice:
			if !queue[i].Build && later {
				out[i] = true
			}
			later = true
		}
	}
	return out
}

// past reports whether the slot that starts at ts (Unix seconds) has ended.
func (p Policy) past(ts uint64, now time.Time) bool {
	end := time.Unix(int64(min(ts, 1<<62)), 0).Add(p.Slot)
	return !now.Before(end)
}
