package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// bigPayload is a newPayload for block n of about size bytes, its transactions unique to n.
func bigPayload(id string, n uint64, size int) []byte {
	tx := strings.Repeat(fmt.Sprintf("%02x", n%251), size/2)
	body := newPayloadBody(id, n)
	return bytes.Replace(body, []byte(`"transactions":["0x02f8`), []byte(`"transactions":["0x`+tx+`","0x02f8`), 1)
}

// TestPooledBodiesStayIntact: large bodies come from a pool and go back once every holder
// (handler, lanes, replay ring, a catch-up) has let go. If any holder let go too early, a
// body would be overwritten by a later request while still on its way: the EL checks every
// body's hash against what the beacon node sent.
func TestPooledBodiesStayIntact(t *testing.T) {
	const blocks, size = 120, 200 << 10
	var mu sync.Mutex
	want := map[uint64][32]byte{}
	got := map[uint64]int{}
	corrupt := 0
	down := false
	numbers := map[engine.Hash]uint64{} // blocks the EL has
	var head uint64
	el := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := engine.Inspect(body)
		mu.Lock()
		isDown := down
		switch {
		case err != nil:
			corrupt++ // an empty or altered body
		case req.Class == engine.ClassNewPayload && !isDown:
			if sha256.Sum256(body) != want[req.Block.Number] {
				corrupt++
			}
			got[req.Block.Number]++
			numbers[req.Block.Hash] = req.Block.Number
		case req.Class == engine.ClassForkchoice && !isDown:
			if n, ok := numbers[req.Forkchoice.Head]; ok {
				head = n
			}
		}
		h := head
		mu.Unlock()
		if err != nil || isDown {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		var result string
		switch req.Class {
		case engine.ClassNewPayload:
			result = fmt.Sprintf(`{"status":"VALID","latestValidHash":"%s","validationError":null}`, req.Block.Hash)
		case engine.ClassForkchoice:
			result = fmt.Sprintf(`{"payloadStatus":{"status":"VALID","latestValidHash":"%s","validationError":null},"payloadId":null}`, req.Forkchoice.Head)
		default: // the lane's head look-ups
			result = fmt.Sprintf(`{"hash":"%s","number":"0x%x","timestamp":"0x%x"}`, blockHash(h), h, blockTS(h))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(engine.ResultResponse(req.ID, []byte(result)))
	}))
	defer el.Close()

	r := &rig{t: t, clk: clock.NewManual(time.Unix(int64(blockTS(1)), 0)), done: make(chan struct{})}
	r.start(Config{Instance: "pool", Election: testElection(), ReplayBytes: 8 * 256 << 10, // eight 200 KB bodies in 256 KiB buffers
		ELs: []upstream.Config{
			{Name: "el1", URL: el.URL, Role: upstream.RolePrimary, CatchUpInterval: time.Millisecond},
			{Name: "el2", URL: el.URL, Role: upstream.RoleFollower, CatchUpInterval: time.Millisecond},
		}})
	bodies := map[uint64][]byte{}
	for n := uint64(1); n <= blocks; n++ {
		bodies[n] = bigPayload(`"a"`, n, size)
		want[n] = sha256.Sum256(bodies[n])
	}
	r.post("bn0", bodies[1]) // bn0 shows a head first: it is the writer
	for n := uint64(1); n <= blocks; n++ {
		if n == 40 { // an outage: the lanes fail, then catch up from the ring
			mu.Lock()
			down = true
			mu.Unlock()
		}
		if n == 45 {
			mu.Lock()
			down = false
			mu.Unlock()
		}
		// Two beacon nodes send the same block at once: each body is read into its own pooled
		// buffer, one copy is forwarded.
		concurrently(2, func(i int) {
			code, ans := r.post(fmt.Sprintf("bn%d", i), bodies[n])
			outage := n >= 40 && n < 45 // every EL fails: a JSON-RPC error is the right answer
			if code != 200 || (!outage && !bytes.Contains(ans, []byte(`"status"`))) {
				t.Errorf("block %d: HTTP %d %s", n, code, ans)
			}
		})
		r.post("bn0", forkchoiceBody(fmt.Sprintf(`"f%d"`, n), n, false))
	}
	r.waitIdle()
	mu.Lock()
	defer mu.Unlock()
	if corrupt != 0 {
		t.Fatalf("%d bodies reached the EL altered: a pooled buffer was reused while still held", corrupt)
	}
	for n := uint64(1); n <= blocks; n++ {
		if got[n] == 0 { // 40..44 by catch-up, from the ring
			t.Errorf("block %d never reached the EL", n)
		}
	}
	if n, _ := r.p.bodies.Free(); n == 0 {
		t.Fatalf("no buffer ever went back to the pool")
	}
	// The replay ring holds the newest blocks until the proxy closes: the leftover check
	// (which every rig runs after its test) sees them, and nothing once the proxy closed.
	if err := r.p.Leftover(); err == nil || !strings.Contains(err.Error(), "pooled buffers still handed out") {
		t.Fatalf("Leftover with the ring holding blocks: %v", err)
	}
	r.close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.p.bodies.WaitReturned(ctx) // the transport may let go just after the answer
	if err := r.p.Leftover(); err != nil {
		t.Fatalf("Leftover once the proxy closed: %v", err)
	}
}
