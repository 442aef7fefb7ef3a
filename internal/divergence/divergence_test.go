package divergence

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
)

func hash(n int) engine.Hash {
	var h engine.Hash
	h[0], h[1], h[31] = byte(n>>8), byte(n), 1
	return h
}

const (
	np  = engine.ClassNewPayload
	fcu = engine.ClassForkchoice
)

type obs struct {
	el     string
	class  engine.Class
	block  int
	status engine.Status
}

func TestObserve(t *testing.T) {
	tests := []struct {
		name string
		obs  []obs
		// want is the index in obs of the observation that reports a divergence, -1 for none.
		want        int
		valid, flip string // the ELs named in the divergence
	}{
		{"agreement", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "VALID"}}, -1, "", ""},
		{"valid against invalid", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "INVALID"}}, 1, "a", "b"},
		{"invalid first", []obs{{"b", np, 1, "INVALID"}, {"a", np, 1, "VALID"}}, 1, "a", "b"},
		{"invalid block hash counts as invalid", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "INVALID_BLOCK_HASH"}}, 1, "a", "b"},
		{"invalid and invalid block hash agree", []obs{{"a", np, 1, "INVALID"}, {"b", np, 1, "INVALID_BLOCK_HASH"}}, -1, "", ""},
		{"syncing against valid is lag", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "SYNCING"}}, -1, "", ""},
		{"accepted against valid is lag", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "ACCEPTED"}}, -1, "", ""},
		{"syncing against invalid is no verdict", []obs{{"a", np, 1, "INVALID"}, {"b", fcu, 1, "SYNCING"}}, -1, "", ""},
		{"unknown status ignored", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "BOGUS"}, {"c", np, 1, ""}}, -1, "", ""},
		{"different blocks", []obs{{"a", np, 1, "VALID"}, {"b", np, 2, "INVALID"}}, -1, "", ""},
		{"across classes", []obs{{"a", np, 1, "VALID"}, {"b", fcu, 1, "INVALID"}}, 1, "a", "b"},
		{"one EL contradicting itself is not two ELs", []obs{{"a", np, 1, "VALID"}, {"a", fcu, 1, "INVALID"}}, -1, "", ""},
		{"reported once per block", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "INVALID"}, {"c", np, 1, "INVALID"}, {"b", fcu, 1, "INVALID"}}, 1, "a", "b"},
		{"after syncing, the final verdict counts", []obs{{"a", np, 1, "VALID"}, {"b", np, 1, "SYNCING"}, {"b", np, 1, "INVALID"}}, 2, "a", "b"},
		{"empty EL ignored", []obs{{"a", np, 1, "VALID"}, {"", np, 1, "INVALID"}}, -1, "", ""},
		{"zero hash ignored", []obs{{"a", np, 0, "VALID"}, {"b", np, 0, "INVALID"}}, -1, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := time.Unix(1_700_000_000, 0)
			d := New(Options{Clock: clock.NewManual(at)})
			for i, o := range tt.obs {
				h := engine.Hash{}
				if o.block != 0 {
					h = hash(o.block)
				}
				got := d.Observe(o.el, o.class, h, o.status)
				if (got != nil) != (i == tt.want) {
					t.Fatalf("observation %d %+v: divergence %+v; want one only at %d", i, o, got, tt.want)
				}
				if got == nil {
					continue
				}
				if got.Valid.EL != tt.valid || got.Invalid.EL != tt.flip || got.Block != h || !got.At.Equal(at) || got.Class != o.class {
					t.Errorf("divergence %+v; want valid %q, invalid %q, block %s, class %s", got, tt.valid, tt.flip, h, o.class)
				}
				if got.Valid.Status != engine.StatusValid || !got.Invalid.Status.Final() || got.Invalid.Status == engine.StatusValid {
					t.Errorf("divergence statuses %s/%s", got.Valid.Status, got.Invalid.Status)
				}
			}
			wantTotal := uint64(0)
			if tt.want >= 0 {
				wantTotal = 1
			}
			if d.Total() != wantTotal || uint64(len(d.Recent())) != wantTotal {
				t.Errorf("Total %d, Recent %d; want %d", d.Total(), len(d.Recent()), wantTotal)
			}
		})
	}
}

// TestObserveCopies: an INVALID newPayload verdict on one copy of a block's bytes does not
// contradict a VALID verdict on another copy; on the same copy it does.
func TestObserveCopies(t *testing.T) {
	type cobs struct {
		el     string
		class  engine.Class
		copy   uint64
		status engine.Status
	}
	tests := []struct {
		name string
		obs  []cobs
		want int // index of the observation that reports a divergence, -1 for none
	}{
		{"a bad copy rejected, a good copy accepted",
			[]cobs{{"a", np, 1, "INVALID"}, {"b", np, 1, "INVALID"}, {"a", np, 2, "VALID"}, {"b", np, 2, "VALID"}}, -1},
		{"one EL ahead on the good copy, the other still on the bad one",
			[]cobs{{"a", np, 1, "INVALID"}, {"a", np, 2, "VALID"}, {"b", np, 1, "INVALID"}}, -1},
		{"a bad copy against the head update on the block", []cobs{{"a", fcu, 0, "VALID"}, {"b", np, 1, "INVALID"}}, -1},
		{"the same copy judged both ways", []cobs{{"a", np, 2, "VALID"}, {"b", np, 2, "INVALID"}}, 1},
		{"a valid copy against an invalid head", []cobs{{"a", np, 2, "VALID"}, {"b", fcu, 0, "INVALID"}}, 1},
		{"valid copies agree whatever their bytes", []cobs{{"a", np, 1, "VALID"}, {"b", np, 2, "VALID"}}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(Options{})
			for i, o := range tt.obs {
				got := d.ObserveCopy(o.el, o.class, hash(1), o.copy, o.status)
				if (got != nil) != (i == tt.want) {
					t.Fatalf("observation %d %+v: divergence %+v; want one only at %d", i, o, got, tt.want)
				}
			}
		})
	}
}

// TestBounded checks that memory stays bounded: old blocks are forgotten, and Recent keeps
// the newest divergences only, newest first.
func TestBounded(t *testing.T) {
	d := New(Options{Blocks: 4, Recent: 3})
	for n := 1; n <= 10; n++ {
		d.Observe("a", np, hash(n), engine.StatusValid)
		if d.Observe("b", np, hash(n), engine.StatusInvalid) == nil {
			t.Fatalf("block %d: no divergence", n)
		}
	}
	if d.blocks.Len() != 4 {
		t.Errorf("remembers %d blocks; want 4", d.blocks.Len())
	}
	// Block 1 was forgotten: a fresh contradiction on it is reported again.
	d.Observe("a", np, hash(1), engine.StatusValid)
	if d.Observe("b", np, hash(1), engine.StatusInvalid) == nil {
		t.Error("a forgotten block was not reported again")
	}
	recent := d.Recent()
	var got []engine.Hash
	for _, r := range recent {
		got = append(got, r.Block)
	}
	want := []engine.Hash{hash(1), hash(10), hash(9)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Recent blocks %v; want %v", got, want)
	}
	if d.Total() != 11 {
		t.Errorf("Total %d; want 11", d.Total())
	}
}

// TestVerdictsPerBlockBounded checks that a block keeps at most maxVerdictsPer verdicts.
func TestVerdictsPerBlockBounded(t *testing.T) {
	d := New(Options{})
	for i := range 3 * maxVerdictsPer {
		d.Observe(fmt.Sprintf("el%d", i), np, hash(1), engine.StatusValid)
	}
	e, _ := d.blocks.Get(hash(1))
	if n := len(e.verdicts); n != maxVerdictsPer {
		t.Errorf("%d verdicts kept; want %d", n, maxVerdictsPer)
	}
}

// TestConcurrent reports exactly one divergence per block however the answers interleave.
func TestConcurrent(t *testing.T) {
	d := New(Options{})
	const blocks = 200
	var wg sync.WaitGroup
	var mu sync.Mutex
	found := map[engine.Hash]int{}
	for w, st := range []engine.Status{engine.StatusValid, engine.StatusInvalid, engine.StatusValid, engine.StatusInvalid} {
		wg.Go(func() {
			for n := 1; n <= blocks; n++ {
				if dv := d.Observe(fmt.Sprintf("el%d", w), np, hash(n), st); dv != nil {
					mu.Lock()
					found[dv.Block]++
					mu.Unlock()
				}
				_ = d.Recent()
			}
		})
	}
	wg.Wait()
	if len(found) != blocks {
		t.Fatalf("%d blocks reported; want %d", len(found), blocks)
	}
	for h, n := range found {
		if n != 1 {
			t.Errorf("block %s reported %d times", h, n)
		}
	}
	if d.Total() != blocks {
		t.Errorf("Total %d; want %d", d.Total(), blocks)
	}
}
