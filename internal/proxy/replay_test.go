package proxy

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// ringDelivery is a newPayload of block n whose body is padded to size bytes of capacity.
func ringDelivery(t *testing.T, n uint64, size int, copyID uint64) *upstream.Delivery {
	t.Helper()
	body := newPayloadBody(fmt.Sprintf(`"np%d"`, n), n)
	req, err := engine.Inspect(body)
	if err != nil {
		t.Fatal(err)
	}
	if size < len(body) {
		t.Fatalf("size %d below the body's %d bytes", size, len(body))
	}
	padded := make([]byte, len(body), size)
	copy(padded, body)
	return &upstream.Delivery{Req: req, Body: padded, Copy: copyID}
}

// The replay ring stays within its bytes when a preferred (VALID) copy of a block replaces the
// copy it kept and is larger: the oldest blocks go, as they do when a block is added.
func TestReplayRingPreferStaysWithinBytes(t *testing.T) {
	const size = 4096
	tests := []struct {
		name       string
		prefer     uint64 // the block whose other copy is preferred
		preferSize int
		wantBlocks []uint64 // what the ring holds afterwards, oldest first
	}{
		{"same size", 2, size, []uint64{1, 2, 3}},
		{"larger copy of the newest", 3, 2 * size, []uint64{2, 3}},
		{"larger copy of the oldest", 1, 2 * size, []uint64{2, 3}},
		{"a copy larger than the ring", 3, 4 * size, []uint64{3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplayRing(3 * size)
			for n := uint64(1); n <= 3; n++ {
				r.add(ringDelivery(t, n, size, 0))
			}
			good := ringDelivery(t, tc.prefer, tc.preferSize, 7)
			r.prefer(good)
			blocks, held := r.stats()
			if held > r.maxBytes && blocks > 1 {
				t.Errorf("ring holds %d bytes in %d blocks, over its %d", held, blocks, r.maxBytes)
			}
			var got []uint64
			var sum int64
			r.mu.Lock()
			for _, d := range r.order {
				got = append(got, d.Req.Block.Number)
				sum += int64(cap(d.Body))
				if r.byHash[d.Req.Block.Hash] != d {
					t.Errorf("block %d: byHash does not match order", d.Req.Block.Number)
				}
			}
			kept := r.byHash[good.Req.Block.Hash]
			mapLen := len(r.byHash)
			r.mu.Unlock()
			if fmt.Sprint(got) != fmt.Sprint(tc.wantBlocks) {
				t.Errorf("ring holds blocks %v, want %v", got, tc.wantBlocks)
			}
			if sum != held || mapLen != len(got) {
				t.Errorf("ring counts %d bytes and %d hashes, holds %d bytes in %d blocks", held, mapLen, sum, len(got))
			}
			if slices.Contains(tc.wantBlocks, tc.prefer) && kept != good {
				t.Errorf("block %d: the preferred copy is not the one kept", tc.prefer)
			}
		})
	}
}
