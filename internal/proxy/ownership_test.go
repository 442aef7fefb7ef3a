package proxy

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/bodies"
)

// padded returns body with n spaces after its opening brace: the same request, n bytes
// larger (a beacon node may send any whitespace), so that it comes from the body pool.
func padded(body []byte, n int) []byte {
	return append(append([]byte{'{'}, bytes.Repeat([]byte{' '}, n)...), body[1:]...)
}

// TestReplayKeepsTheWritersUpdate: the replay ring keeps the writer's newest
// forkchoiceUpdated to send a returning EL; a large one (here padded with whitespace to a
// pooled size) must stay its own until the ring lets it go, or the catch-up sends an empty
// or foreign request and the EL never gets its head back.
func TestReplayKeepsTheWritersUpdate(t *testing.T) {
	r, els := chainRig(t, 2)
	f := forks()[0]
	drive(r, "bn1", 1, 3)
	els[1].setDown(true)
	for n := uint64(4); n <= 10; n++ {
		r.clk.Set(time.Unix(int64(blockTS(n)), 0))
		r.post("bn1", f.newPayload(fmt.Sprintf(`"np%d"`, n), n))
		r.post("bn1", padded(f.forkchoice(fmt.Sprintf(`"fcu%d"`, n), n, false), bodies.MinSize))
		r.waitIdle()
	}
	// Other large requests reuse whatever buffers went back to the pool.
	for i := range 4 {
		r.post("bn1", padded([]byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_chainId","params":[]}`, i)), bodies.MinSize))
	}
	els[1].setDown(false)
	r.post("bn1", f.newPayload(`"np11"`, 11)) // el2 answers SYNCING: a catch-up replays 4..11 and the update
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.p.Lanes()[1].WaitHealed(ctx); err != nil {
		t.Fatalf("el2 did not heal: %v (%+v)", err, r.p.Lanes()[1].Stats().CatchUp)
	}
	if h := els[1].headNumber(); h != 10 {
		t.Fatalf("el2 head %d after the catch-up, want 10 (the writer's update): %+v", h, r.p.Lanes()[1].Stats().CatchUp)
	}
}
