package beacon

import (
	"sync"
	"testing"
)

func hash(i int) [32]byte {
	var h [32]byte
	h[0], h[1], h[2], h[3], h[31] = byte(i), byte(i>>8), byte(i>>16), byte(i>>24), 0xaa
	return h
}

func TestBlockIndex(t *testing.T) {
	tests := []struct {
		name    string
		cap     int
		add     []int // block numbers added in order (hash(n), timestamp 1000+12n, parent hash(n-1))
		present []int
		absent  []int
	}{
		{"lookup after add", 4, []int{1, 2}, []int{1, 2}, []int{3}},
		{"fifo eviction", 3, []int{1, 2, 3, 4, 5}, []int{3, 4, 5}, []int{1, 2}},
		{"duplicate neither grows nor refreshes", 3, []int{1, 2, 1, 3, 4}, []int{2, 3, 4}, []int{1}},
		{"capacity one", 1, []int{1, 2}, []int{2}, []int{1}},
		{"wraps many times", 2, []int{1, 2, 3, 4, 5, 6, 7}, []int{6, 7}, []int{1, 2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := NewBlockIndex(tt.cap)
			for _, n := range tt.add {
				x.Add(hash(n), uint64(n), 1000+12*uint64(n), hash(n-1))
			}
			for _, n := range tt.present {
				e, ok := x.Lookup(hash(n))
				want := Entry{Number: uint64(n), Timestamp: 1000 + 12*uint64(n), Parent: hash(n - 1)}
				if !ok || e != want {
					t.Errorf("Lookup(%d) = %+v, %v; want %+v, true", n, e, ok, want)
				}
			}
			for _, n := range tt.absent {
				if e, ok := x.Lookup(hash(n)); ok {
					t.Errorf("Lookup(%d) = %+v, true; want evicted or absent", n, e)
				}
			}
			if got := x.Len(); got != len(tt.present) {
				t.Errorf("Len() = %d, want %d", got, len(tt.present))
			}
			if got := x.Cap(); got != tt.cap {
				t.Errorf("Cap() = %d, want %d", got, tt.cap)
			}
		})
	}
}

func TestBlockIndexDuplicateKeepsFirst(t *testing.T) {
	x := NewBlockIndex(2)
	x.Add(hash(1), 1, 100, hash(0))
	x.Add(hash(1), 9, 900, hash(9))
	if e, _ := x.Lookup(hash(1)); e.Number != 1 || e.Timestamp != 100 {
		t.Errorf("Lookup after duplicate Add = %+v, want the first entry", e)
	}
}

func TestBlockIndexDefaultCapacity(t *testing.T) {
	for _, c := range []int{0, -1} {
		if got := NewBlockIndex(c).Cap(); got != DefaultBlockIndexCapacity {
			t.Errorf("NewBlockIndex(%d).Cap() = %d, want %d", c, got, DefaultBlockIndexCapacity)
		}
	}
}

func TestBlockIndexConcurrent(t *testing.T) {
	x := NewBlockIndex(64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				n := g*1000 + i
				x.Add(hash(n), uint64(n), uint64(n), hash(n-1))
				x.Lookup(hash(n - 1))
				x.Len()
			}
		})
	}
	wg.Wait()
	if got := x.Len(); got != 64 {
		t.Errorf("Len() = %d, want 64", got)
	}
}

func BenchmarkBlockIndex(b *testing.B) {
	x := NewBlockIndex(DefaultBlockIndexCapacity)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		x.Add(hash(i), uint64(i), uint64(i), hash(i-1))
		x.Lookup(hash(i - 1))
		i++
	}
}
