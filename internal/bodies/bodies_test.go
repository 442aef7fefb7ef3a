package bodies

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestPoolClasses(t *testing.T) {
	p := NewPool(false)
	b := p.Get(100 << 10)
	if len(b) != 100<<10 || cap(b) != 128<<10 {
		t.Fatalf("len %d cap %d, want 100 KiB in a 128 KiB buffer", len(b), cap(b))
	}
	if p.Outstanding() != 1 {
		t.Fatalf("outstanding %d, want 1", p.Outstanding())
	}
	p.Put(b)
	if n, bytes := p.Free(); p.Outstanding() != 0 || n != 1 || bytes != 128<<10 {
		t.Fatalf("outstanding %d, free %d buffers of %d bytes; want 0, and one of 128 KiB", p.Outstanding(), n, bytes)
	}
	if c := p.Get(70 << 10); cap(c) != 128<<10 || first(c) != first(b) {
		t.Fatalf("a freed buffer of the class was not reused")
	}
	if Pooled(MinSize-1) || !Pooled(MinSize) {
		t.Fatal("pooling threshold")
	}
}

// TestPoolKeepsAtMostKeepBytes: the free buffers kept add up to at most KeepBytes, whatever
// their sizes: many small ones are all kept (a burst's worth), large ones only while they fit.
func TestPoolKeepsAtMostKeepBytes(t *testing.T) {
	p := NewPool(false)
	put := func(n, size int) {
		bufs := make([][]byte, n)
		for i := range bufs {
			bufs[i] = p.Get(size)
		}
		for _, b := range bufs {
			p.Put(b)
		}
	}
	put(200, 256<<10) // 50 MiB of typical blocks: every one kept
	if n, bytes := p.Free(); n != 200 || bytes != 50<<20 {
		t.Fatalf("free %d buffers of %d bytes, want all 200 (50 MiB)", n, bytes)
	}
	put(8, 32<<20) // 256 MiB of the largest: none fits beside the 50 MiB
	if _, bytes := p.Free(); bytes != 50<<20 {
		t.Fatalf("free %d bytes, want still 50 MiB", bytes)
	}
	put(200, 256<<10) // reused from the free list, nothing new kept
	put(1, 8<<20)     // 8 MiB fits: 58 MiB
	put(3, 4<<20)     // one 4 MiB fits: 62 MiB
	if n, bytes := p.Free(); n != 202 || bytes != 62<<20 || bytes > KeepBytes {
		t.Fatalf("free %d buffers of %d bytes, want 202 of 62 MiB, at most %d", n, bytes, KeepBytes)
	}
	if p.Outstanding() != 0 {
		t.Fatalf("outstanding %d", p.Outstanding())
	}
}

// TestMisuse: each way of getting ownership wrong panics, with a message that says which.
func TestMisuse(t *testing.T) {
	cases := []struct {
		name  string
		debug bool // only a debug pool catches it
		do    func(p *Pool)
		want  string
	}{
		{"get below the minimum", false, func(p *Pool) { p.Get(MinSize - 1) }, "below the pool's"},
		{"put a foreign size", false, func(p *Pool) { p.Put(make([]byte, 10)) }, "never hands out"},
		{"put twice", true, func(p *Pool) { b := p.Get(MinSize); p.Put(b); p.Put(b) }, "already has back"},
		{"put a buffer not handed out", true, func(p *Pool) { p.Put(make([]byte, MinSize)) }, "did not hand out"},
		{"retain after the last release", false, func(p *Pool) {
			var r Ref
			r.Own(p, p.Get(MinSize))
			r.Release()
			r.Retain()
		}, "already went back"},
		{"release once too often", false, func(p *Pool) {
			var r Ref
			r.Own(p, p.Get(MinSize))
			r.Retain()
			r.Release()
			r.Release()
			r.Release()
		}, "no holder left"},
		{"own twice", false, func(p *Pool) {
			var r Ref
			r.Own(p, p.Get(MinSize))
			r.Own(p, p.Get(MinSize))
		}, "already owns"},
	}
	for _, c := range cases {
		for _, debug := range []bool{false, true} {
			if c.debug && !debug {
				continue
			}
			t.Run(c.name, func(t *testing.T) {
				defer func() {
					msg, _ := recover().(string)
					if !strings.Contains(msg, c.want) {
						t.Fatalf("debug %v: panic %q, want one saying %q", debug, msg, c.want)
					}
				}()
				c.do(NewPool(debug))
			})
		}
	}
}

// TestRefHolders: the buffer goes back at the last Release, not before; a debug pool
// poisons it, so a holder that read it afterwards would see Poison, not its request.
func TestRefHolders(t *testing.T) {
	for _, debug := range []bool{false, true} {
		p := NewPool(debug)
		buf := p.Get(MinSize)
		copy(buf, `{"jsonrpc":"2.0"}`)
		var r Ref
		r.Own(p, buf)
		r.Retain() // a lane
		r.Retain() // the replay ring
		for i, wantFreed := range []bool{false, false, true} {
			if freed := r.Release(); freed != wantFreed {
				t.Fatalf("debug %v: release %d freed %v, want %v", debug, i+1, freed, wantFreed)
			}
			if i < 2 && (p.Outstanding() != 1 || buf[0] != '{') {
				t.Fatalf("debug %v: the buffer went back with holders left", debug)
			}
		}
		if p.Outstanding() != 0 || r.Holders() != 0 {
			t.Fatalf("debug %v: outstanding %d holders %d after the last release", debug, p.Outstanding(), r.Holders())
		}
		if poisoned := buf[0] == Poison && buf[cap(buf)-1] == Poison; poisoned != debug {
			t.Fatalf("debug %v: returned buffer poisoned %v", debug, poisoned)
		}
	}
	var zero Ref // an unpooled body: nothing to count
	zero.Retain()
	first, second := zero.Release(), zero.Release()
	if first || second || zero.Holders() != 0 {
		t.Fatal("the zero Ref owns nothing")
	}
}

// TestWaitReturned: the wait ends when the last buffer comes back, from another goroutine,
// and not before; with buffers still out it ends with ctx, naming how many.
func TestWaitReturned(t *testing.T) {
	p := NewPool(true)
	if err := p.WaitReturned(context.Background()); err != nil {
		t.Fatalf("nothing handed out: %v", err)
	}
	a, b := p.Get(MinSize), p.Get(2*MinSize)
	done := make(chan error, 1)
	go func() { done <- p.WaitReturned(context.Background()) }()
	p.Put(a)
	select {
	case err := <-done:
		t.Fatalf("returned (%v) with a buffer still out", err)
	case <-time.After(20 * time.Millisecond): // a wrong early return would come at once
	}
	p.Put(b)
	if err := <-done; err != nil {
		t.Fatalf("after the last Put: %v", err)
	}
	p.Get(MinSize)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.WaitReturned(ctx); err == nil || !strings.Contains(err.Error(), "1 buffers still handed out") {
		t.Fatalf("with a buffer out and ctx done: %v", err)
	}
}

func TestPoolLeftover(t *testing.T) {
	p := NewPool(true)
	if err := p.Leftover(); err != nil {
		t.Fatalf("new pool: %v", err)
	}
	a, b := p.Get(MinSize), p.Get(MinSize)
	p.Put(a)
	if err := p.Leftover(); err == nil || !strings.Contains(err.Error(), "1 pooled buffers still handed out") {
		t.Fatalf("with one buffer out: %v", err)
	}
	p.Put(b)
	if err := p.Leftover(); err != nil {
		t.Fatalf("all back: %v", err)
	}
}
