// Package bodies owns the buffers that large request bodies are read into: a [Pool] that
// hands them out and takes them back for reuse, and [Ref], the one type that counts who
// holds a buffer. A buffer goes back to the pool when its last holder lets go; nothing may
// read it after that.
//
// Misuse is made loud rather than silent. Taking a buffer after it went back, or letting
// go of it more often than it was taken, panics (like a negative sync.WaitGroup counter).
// In debug mode, which every -race build turns on, the pool also overwrites a buffer that
// comes back with [Poison] and panics on a buffer it did not hand out or already has: a
// holder that forgot to Retain then reads poison (and the race detector sees the write)
// instead of silently sending another request's bytes.
package bodies

import (
	"context"
	"fmt"
	"math/bits"
	"sync"
	"sync/atomic"
)

// MinSize is the smallest body the pool holds: smaller ones are cheap to allocate. A
// newPayload runs from 300 KB to 16 MB, and a fresh buffer for each costs a page fault per
// 4 KiB once the runtime has handed freed memory back to the system (measured: ~80 faults
// and ~2 ms for a 300 KB body on a 2-core VM).
const MinSize = 1 << minClass

const minClass = 16 // log2 of MinSize

// KeepBytes bounds the free buffers the pool keeps for reuse, in bytes of capacity: enough
// for a burst's worth of typical blocks (200 of 256 KiB) or two of the largest bodies, and
// never more idle memory than that, whatever the sizes seen.
const KeepBytes = 64 << 20

// Poison is the byte a debug pool fills a returned buffer with. It is not valid UTF-8, so
// a body read after it went back fails to parse.
const Poison byte = 0xDB

// Pooled reports whether a body of n bytes comes from the pool.
func Pooled(n int64) bool { return n >= MinSize }

// class returns the smallest class whose buffers hold n bytes.
func class(n int) int { return bits.Len(uint(n - 1)) }

// Pool keeps large request bodies for reuse. Buffers are grouped in power-of-two classes
// from MinSize; the free ones kept add up to at most KeepBytes (a buffer that would go
// over is left to the garbage collector), so the pool never holds much more than what is
// in use. It is safe for concurrent use.
type Pool struct {
	debug bool
	out   atomic.Int64 // buffers handed out and not back

	mu   sync.Mutex
	free map[int][][]byte // class → free buffers
	// freeBytes is the capacity of the free buffers, at most KeepBytes.
	freeBytes int
	held      map[*byte]bool // debug: buffers handed out and not back, by their first byte
	// returned is closed when the last buffer handed out comes back (nil: nobody waits).
	returned chan struct{}
}

// NewPool returns an empty pool; debug turns on the checks described in the package doc.
func NewPool(debug bool) *Pool {
	p := &Pool{debug: debug, free: make(map[int][][]byte)}
	if debug {
		p.held = make(map[*byte]bool)
	}
	return p
}

// Get returns a buffer of length n, at least MinSize, which the caller owns until it Puts
// it back (usually through a [Ref]).
func (p *Pool) Get(n int) []byte {
	if !Pooled(int64(n)) {
		panic(fmt.Sprintf("bodies: Get(%d): below the pool's %d-byte minimum", n, MinSize))
	}
	c := class(n)
	var b []byte
	p.mu.Lock()
	if list := p.free[c]; len(list) > 0 {
		b = list[len(list)-1][:n]
		list[len(list)-1] = nil
		p.free[c] = list[:len(list)-1]
		p.freeBytes -= cap(b)
	}
	if b == nil {
		b = make([]byte, n, 1<<c)
	}
	if p.debug {
		p.held[first(b)] = true
	}
	p.mu.Unlock()
	p.out.Add(1)
	return b
}

// Put takes back a buffer that Get handed out. Nothing may use b afterwards.
func (p *Pool) Put(b []byte) {
	c := class(cap(b))
	if cap(b) != 1<<c || c < minClass {
		panic(fmt.Sprintf("bodies: Put of a %d-byte buffer the pool never hands out", cap(b)))
	}
	b = b[:cap(b)]
	if p.debug {
		p.mu.Lock()
		held := p.held[first(b)]
		delete(p.held, first(b))
		p.mu.Unlock()
		if !held {
			panic("bodies: Put of a buffer the pool did not hand out, or already has back")
		}
		for i := range b { // outside the lock: up to 16 MiB
			b[i] = Poison
		}
	}
	back := p.out.Add(-1) == 0
	p.mu.Lock()
	if p.freeBytes+cap(b) <= KeepBytes {
		p.free[c] = append(p.free[c], b[:0])
		p.freeBytes += cap(b)
	}
	if back && p.returned != nil {
		close(p.returned)
		p.returned = nil
	}
	p.mu.Unlock()
}

// WaitReturned waits until no buffer is handed out, or ctx is done. A holder may let go
// after the work it was part of has ended (the HTTP transport closes a request body when it
// has stopped writing it, with no signal of its own): this is how a test waits for that.
func (p *Pool) WaitReturned(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.out.Load() == 0 {
			p.mu.Unlock()
			return nil
		}
		if p.returned == nil {
			p.returned = make(chan struct{})
		}
		ch := p.returned
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("bodies: %d buffers still handed out: %w", p.out.Load(), ctx.Err())
		}
	}
}

// Outstanding returns how many buffers are handed out and not back: once every request
// is done and every holder has let go, it is zero.
func (p *Pool) Outstanding() int64 { return p.out.Load() }

// Leftover returns nil when every buffer the pool handed out is back, else an error saying
// how many are still out: a holder that never let go. Tests call it once the work is done.
func (p *Pool) Leftover() error {
	if n := p.out.Load(); n != 0 {
		return fmt.Errorf("bodies: %d pooled buffers still handed out", n)
	}
	return nil
}

// Free returns how many buffers the pool keeps for reuse, and their capacity in bytes.
func (p *Pool) Free() (buffers, bytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range p.free {
		buffers += len(list)
	}
	return buffers, p.freeBytes
}

// first identifies a buffer by its first byte.
func first(b []byte) *byte { return &b[:1][0] }

// Ref owns one pooled buffer on behalf of everything that holds it: the request's handler,
// each lane until the EL has it, the HTTP transport until it has stopped writing it, the
// replay ring until it forgets the block, a catch-up while it replays, a hedged call while
// it runs. Every holder calls Retain before it keeps
// the buffer (while a holder it knows of still holds it) and Release when it lets go; the
// last Release gives the buffer back. The zero Ref owns nothing (an unpooled body): Retain
// and Release do nothing. A Ref must not be copied once it owns a buffer.
type Ref struct {
	pool *Pool
	buf  []byte
	refs atomic.Int32
}

// Own makes the caller the first holder of buf, which p handed out.
func (r *Ref) Own(p *Pool, buf []byte) {
	if r.pool != nil {
		panic("bodies: Own on a Ref that already owns a buffer")
	}
	r.pool, r.buf = p, buf
	r.refs.Store(1)
}

// Holders returns how many holders the buffer has; 0 once it went back.
func (r *Ref) Holders() int32 { return r.refs.Load() }

// Retain adds a holder. It panics when the buffer already went back: the caller kept a
// body it no longer had a claim on.
func (r *Ref) Retain() {
	if r.pool == nil {
		return
	}
	if r.refs.Add(1) <= 1 {
		panic("bodies: Retain of a body that already went back to the pool")
	}
}

// Release drops a holder; the last one gives the buffer back and gets true. It panics when
// there was no holder left.
func (r *Ref) Release() bool {
	if r.pool == nil {
		return false
	}
	switch n := r.refs.Add(-1); {
	case n < 0:
		panic("bodies: Release of a body with no holder left")
	case n > 0:
		return false
	}
	b := r.buf
	r.buf = nil
	r.pool.Put(b)
	return true
}
