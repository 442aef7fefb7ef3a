// Package backlog bounds, in bytes, what the lanes hold for their execution clients, and
// decides what a lane gives up when that bound is reached.
//
// Every lane queues the same request bodies: a body is held once, whatever the number of
// lanes that queue it. [Budget] counts each body once for as long as any lane holds it, and
// what each lane holds. When the total is over the limit, a lane that is behind (it shed
// before and heals from the recent blocks once drained) sheds first; otherwise the lane with
// the most queued sheds (max-min fairness: a lane that holds less than another never sheds,
// so a slow or hung EL never costs a healthy one a block). Only what is queued counts here:
// what a lane is sending cannot be shed, and a lane with nothing it may shed (Stuck) makes no
// one wait. [Policy] says what it sheds, in which order.
package backlog

import (
	"errors"
	"fmt"
	"sync"
)

// DefaultBytes is the default budget: two epochs (64 blocks) of 2 MB blocks and then some.
const DefaultBytes int64 = 512 << 20

// DefaultRecentBytes is the default size of the recent blocks a lane heals from (the proxy's
// replay ring): 512 blocks of 300 KB (each held in a 512 KiB pooled buffer), 870 of them
// counted at their length. It is the other half of the memory the lanes may take.
const DefaultRecentBytes int64 = 256 << 20

// Charge is what a Budget keeps in each held item: how many holders hold it. Embed it in the
// item (zero value ready); only the Budget reads or writes it.
type Charge struct {
	holders int32
}

// Budget counts the bytes held by a fixed set of holders (the lanes). It is safe for
// concurrent use.
type Budget struct {
	limit int64

	mu      sync.Mutex
	total   int64   // bytes of the items held by at least one holder, each counted once
	held    []int64 // per holder: bytes of the items it holds
	sending []int64 // per holder: bytes of those it is sending, which it cannot shed
	behind  []bool  // per holder: see SetBehind
	stuck   []bool  // per holder: see Stuck
	peak    int64
}

// New returns a budget of limit bytes shared by holders holders, numbered from 0.
func New(limit int64, holders int) (*Budget, error) {
	if limit <= 0 {
		return nil, errors.New("backlog budget must be positive")
	}
	if holders <= 0 {
		return nil, errors.New("backlog needs at least one holder")
	}
	return &Budget{limit: limit, held: make([]int64, holders), sending: make([]int64, holders),
		behind: make([]bool, holders), stuck: make([]bool, holders)}, nil
}

// Limit returns the budget in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Holders returns the number of holders.
func (b *Budget) Holders() int { return len(b.held) }

// Hold records that holder h keeps an item of n bytes. An item counts towards the total
// from its first holder to its last.
func (b *Budget) Hold(h int, c *Charge, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.holders == 0 {
		b.total += n
		b.peak = max(b.peak, b.total)
	}
	c.holders++
	b.held[h] += n
	b.stuck[h] = false
}

// Send records that holder h is sending an item of n bytes that it holds: it can no longer
// shed it.
func (b *Budget) Send(h int, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sending[h] += n
}

// Let records that holder h no longer keeps the item (sent: it was sending it); the last
// holder frees its bytes.
func (b *Budget) Let(h int, c *Charge, n int64, sent bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.holders--
	if c.holders == 0 {
		b.total -= n
	}
	b.held[h] -= n
	if sent {
		b.sending[h] -= n
	}
}

// SetBehind records whether holder h is behind: it shed a block and will be sent what it
// misses from the recent blocks once its queue has drained, so what it still has queued is
// the first to go.
func (b *Budget) SetBehind(h int, behind bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.behind[h] = behind
}

// Stuck records that holder h found nothing it may shed in what it has queued: until it
// queues something new, the others no longer wait for it to go first.
func (b *Budget) Stuck(h int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stuck[h] = true
}

// MustShed reports whether holder h must shed: the total is over the limit, h has something
// queued, and no other holder goes first. Holders that are behind go before those that are
// not: what they hold is sent again by their heal, and what they alone hold (blocks the
// others have delivered) frees memory at once. Among the rest, the one with the most queued
// goes first (max-min). Shedding what others also hold frees nothing now, but it brings h
// down to the others' level, so the next holder in line sheds too and the bytes are freed.
// A holder that is stuck goes before no one, but may try again itself (a build's slot may
// have passed since).
func (b *Budget) MustShed(h int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	mine := b.held[h] - b.sending[h]
	if b.total <= b.limit || mine <= 0 {
		return false
	}
	for o := range b.held {
		theirs := b.held[o] - b.sending[o]
		if o == h || theirs <= 0 || b.stuck[o] {
			continue
		}
		if b.behind[o] && !b.behind[h] || b.behind[o] == b.behind[h] && theirs > mine {
			return false
		}
	}
	return true
}

// Usage is a snapshot of a budget.
type Usage struct {
	Limit int64
	Total int64 // bytes held, each item counted once
	Peak  int64 // the largest Total so far
	Held  []int64
}

// Usage returns a snapshot.
func (b *Budget) Usage() Usage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Usage{Limit: b.limit, Total: b.total, Peak: b.peak, Held: append([]int64(nil), b.held...)}
}

// Held returns what holder h holds, in bytes.
func (b *Budget) Held(h int) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held[h]
}

// Leftover returns nil when nothing is held: no bytes counted, by any holder, queued or being
// sent. Otherwise the error says who holds what: a charge never let go. Tests call it once
// the lanes have drained or stopped.
func (b *Budget) Leftover() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	if b.total != 0 {
		errs = append(errs, fmt.Errorf("backlog: %d bytes still counted", b.total))
	}
	for h := range b.held {
		if b.held[h] != 0 || b.sending[h] != 0 {
			errs = append(errs, fmt.Errorf("backlog: holder %d still holds %d bytes (%d being sent)", h, b.held[h], b.sending[h]))
		}
	}
	return errors.Join(errs...)
}
