// Package backlog bounds, in bytes, what the lanes hold for their execution clients, and
// decides what a lane gives up when that bound is reached.
//
// Every lane queues the same request bodies: a body is held once, whatever the number of
// lanes that queue it. [Budget] counts each body once for as long as any lane holds it, and
// what each lane holds. When the total is over the limit, the lane that holds the most sheds
// (max-min fairness: a lane that holds less than another never sheds, so a slow or hung EL
// never costs a healthy one a block). [Policy] says what it sheds, in which order.
package backlog

import (
	"errors"
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

	mu    sync.Mutex
	total int64   // bytes of the items held by at least one holder, each counted once
	held  []int64 // per holder: bytes of the items it holds
	peak  int64
}

// New returns a budget of limit bytes shared by holders holders, numbered from 0.
func New(limit int64, holders int) (*Budget, error) {
	if limit <= 0 {
		return nil, errors.New("backlog budget must be positive")
	}
	if holders <= 0 {
		return nil, errors.New("backlog needs at least one holder")
	}
	return &Budget{limit: limit, held: make([]int64, holders)}, nil
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
}

// Let records that holder h no longer keeps the item; the last holder frees its bytes.
func (b *Budget) Let(h int, c *Charge, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.holders--
	if c.holders == 0 {
		b.total -= n
	}
	b.held[h] -= n
}

// MustShed reports whether holder h must shed: the total is over the limit and no holder
// holds more than h does. Shedding what others also hold frees nothing now, but it brings h
// down to the others' level, so the next holder in line sheds too and the bytes are freed.
func (b *Budget) MustShed(h int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total <= b.limit || b.held[h] == 0 {
		return false
	}
	for _, o := range b.held {
		if o > b.held[h] {
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
