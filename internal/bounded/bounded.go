// Package bounded is a map that holds at most a fixed number of keys and forgets the oldest
// first. sync-proxy keeps several (block index, deduplication, payload ids, divergences):
// anything learned from traffic must have a bound, or a long run grows without limit.
package bounded

import "iter"

// Map holds at most its capacity of keys; inserting a new key into a full map evicts the key
// inserted longest ago. Updating a key's value does not change its age. A Map is not safe
// for concurrent use: its owner locks around it.
type Map[K comparable, V any] struct {
	items map[K]V
	order []K // insertion order, used as a ring once full
	next  int // the ring slot the next new key overwrites, once full
}

// New returns an empty map holding at most capacity keys (at least one).
func New[K comparable, V any](capacity int) *Map[K, V] {
	capacity = max(capacity, 1)
	return &Map[K, V]{items: make(map[K]V, capacity), order: make([]K, 0, capacity)}
}

// Get returns the value stored for k.
func (m *Map[K, V]) Get(k K) (V, bool) {
	v, ok := m.items[k]
	return v, ok
}

// Put stores v for k. A new key evicts the oldest one when the map is full; evicted reports
// whether that happened and which key went.
func (m *Map[K, V]) Put(k K, v V) (old K, evicted bool) {
	if _, ok := m.items[k]; ok {
		m.items[k] = v
		return old, false
	}
	if len(m.order) < cap(m.order) {
		m.order = append(m.order, k)
	} else {
		old, evicted = m.order[m.next], true
		delete(m.items, old)
		m.order[m.next] = k
		m.next = (m.next + 1) % len(m.order)
	}
	m.items[k] = v
	return old, evicted
}

// All yields the keys and their values, oldest first.
func (m *Map[K, V]) All() iter.Seq2[K, V] {
	return func(yield func(K, V) bool) {
		n := len(m.order)
		for i := range n {
			k := m.order[(m.next+i)%n]
			if !yield(k, m.items[k]) {
				return
			}
		}
	}
}

// Len returns the number of keys held.
func (m *Map[K, V]) Len() int { return len(m.items) }

// Cap returns the most keys the map holds.
func (m *Map[K, V]) Cap() int { return cap(m.order) }
