package bounded

import "testing"

func TestMap(t *testing.T) {
	m := New[int, string](3)
	for i := range 3 {
		if _, ev := m.Put(i, "v"); ev {
			t.Fatalf("evicted while not full")
		}
	}
	if _, ev := m.Put(1, "updated"); ev || m.Len() != 3 {
		t.Fatalf("an update evicted or grew the map")
	}
	// Oldest first: 0, 1 (its update did not refresh it), 2, then 10, the first new key.
	for i, want := range []int{0, 1, 2, 10} {
		old, ev := m.Put(10+i, "n")
		if !ev || old != want {
			t.Fatalf("put %d evicted %d (%v), want %d", 10+i, old, ev, want)
		}
	}
	if _, ok := m.Get(1); ok {
		t.Fatal("key 1 kept past the bound although updating does not refresh its age")
	}
	if v, ok := m.Get(13); !ok || v != "n" || m.Len() != 3 || m.Cap() != 3 {
		t.Fatalf("get 13 = %q %v, len %d", v, ok, m.Len())
	}
	var keys []int
	for k := range m.All() {
		keys = append(keys, k)
	}
	if len(keys) != 3 || keys[0] != 11 || keys[1] != 12 || keys[2] != 13 {
		t.Fatalf("All yielded %v, want oldest first: [11 12 13]", keys)
	}
	if New[int, int](0).Cap() != 1 {
		t.Fatal("capacity below one")
	}
}
