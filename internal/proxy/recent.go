package proxy

import "sync"

// recent is a bounded map that forgets its oldest entries first. The proxy keeps two: the
// lanes' slots per newPayload block hash (deduplication across beacon nodes) and the writer's
// forkchoiceUpdated answers per head (answers for the other beacon nodes).
type recent[K comparable, V any] struct {
	mu    sync.Mutex
	items map[K]V
	order []K // ring of keys in insertion order
	next  int
}

func newRecent[K comparable, V any](capacity int) *recent[K, V] {
	return &recent[K, V]{items: make(map[K]V, capacity), order: make([]K, 0, capacity)}
}

// get returns the value stored for k.
func (r *recent[K, V]) get(k K) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.items[k]
	return v, ok
}

// put stores v for k, evicting the oldest key when full.
func (r *recent[K, V]) put(k K, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.putLocked(k, v)
}

func (r *recent[K, V]) putLocked(k K, v V) {
	if _, ok := r.items[k]; ok {
		r.items[k] = v
		return
	}
	if len(r.order) < cap(r.order) {
		r.order = append(r.order, k)
	} else {
		delete(r.items, r.order[r.next])
		r.order[r.next] = k
		r.next = (r.next + 1) % len(r.order)
	}
	r.items[k] = v
}

// update applies f to the value stored for k (ok is false when absent) and stores the
// result, all under the lock: two beacon nodes sending the same block at the same moment
// see one decision. f must not block.
func (r *recent[K, V]) update(k K, f func(v V, ok bool) V) V {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.items[k]
	nv := f(v, ok)
	r.putLocked(k, nv)
	return nv
}
