package proxy

import (
	"sync"

	"github.com/sync-proxy/sync-proxy/internal/bounded"
)

// recent is a bounded map, safe for concurrent use, that forgets its oldest entries first.
// The proxy keeps two: the lanes' slots per newPayload block hash (deduplication across
// beacon nodes) and the writer's forkchoiceUpdated answers per head (answers for the other
// beacon nodes).
type recent[K comparable, V any] struct {
	mu sync.Mutex
	m  *bounded.Map[K, V]
}

func newRecent[K comparable, V any](capacity int) *recent[K, V] {
	return &recent[K, V]{m: bounded.New[K, V](capacity)}
}

// get returns the value stored for k.
func (r *recent[K, V]) get(k K) (V, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m.Get(k)
}

// put stores v for k, evicting the oldest key when full.
func (r *recent[K, V]) put(k K, v V) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m.Put(k, v)
}

// update applies f to the value stored for k (ok is false when absent) and stores the
// result, all under the lock: two beacon nodes sending the same block at the same moment
// see one decision. f must not block.
func (r *recent[K, V]) update(k K, f func(v V, ok bool) V) V {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m.Get(k)
	nv := f(v, ok)
	r.m.Put(k, nv)
	return nv
}
