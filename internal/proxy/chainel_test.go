package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// chainEL is an execution client with no p2p peers, as far as the proxy can tell: it imports
// a block only when it has its parent (SYNCING otherwise), follows forkchoiceUpdated to
// blocks it has, serves eth_getBlockByNumber("latest") and eth_getBlockByHash, and counts
// what it did. With keep > 0 it remembers only the newest keep blocks and heads, so a soak
// can run it for hours.
type chainEL struct {
	srv  *httptest.Server
	keep int

	mu       sync.Mutex
	down     bool
	delay    time.Duration // how long each request takes (a slow EL)
	paused   chan struct{} // while set, requests wait until it is closed (a hung EL)
	record   bool          // keep every newPayload and forkchoiceUpdated in arrivals
	arrivals []arrival
	blocks   map[engine.Hash]upstream.Block
	order    []engine.Hash // blocks in import order, for the bound
	head     upstream.Block
	heads    []uint64 // the heads it moved to, in order (the newest keep when bounded)
	imported uint64   // distinct blocks imported
	back     uint64   // head updates to an older block than the current head
	requests uint64
}

// arrival is one newPayload or forkchoiceUpdated as a chainEL received it.
type arrival struct {
	class  engine.Class
	number uint64 // the block's, or the head's when the EL knew it (else 0)
	hash   engine.Hash
	attrs  bool
	status string
}

func newChainEL(t *testing.T) *chainEL { return newBoundedChainEL(t, 0) }

// setDelay makes every request take d.
func (c *chainEL) setDelay(d time.Duration) {
	c.mu.Lock()
	c.delay = d
	c.mu.Unlock()
}

// pause makes the EL hold every request, as a stalled process does, until resume.
func (c *chainEL) pause() {
	c.mu.Lock()
	if c.paused == nil {
		c.paused = make(chan struct{})
	}
	c.mu.Unlock()
}

// resume lets the held requests and the next ones through.
func (c *chainEL) resume() {
	c.mu.Lock()
	if c.paused != nil {
		close(c.paused)
		c.paused = nil
	}
	c.mu.Unlock()
}

// recorded returns what the EL received, in order (record must be set).
func (c *chainEL) recorded() []arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]arrival(nil), c.arrivals...)
}

// newBoundedChainEL is a chainEL that remembers at most keep blocks and heads (0: all).
func newBoundedChainEL(t *testing.T, keep int) *chainEL {
	c := &chainEL{keep: keep, blocks: map[engine.Hash]upstream.Block{}}
	g := upstream.Block{Hash: blockHash(0), Number: 0, Timestamp: blockTS(0)}
	c.blocks[g.Hash], c.head = g, g
	c.order = append(c.order, g.Hash)
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(func() { c.resume(); c.srv.Close() })
	return c
}

// setDown makes the EL break every connection, as if the process were gone, or stop doing so.
func (c *chainEL) setDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// rewind makes the EL forget every block above n and go back to block n, as an EL that
// restarted without a clean shutdown does (geth goes back to the last state it wrote).
func (c *chainEL) rewind(n uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.order[:0]
	for _, h := range c.order {
		if b := c.blocks[h]; b.Number > n {
			delete(c.blocks, h)
			continue
		}
		kept = append(kept, h)
	}
	c.order = kept
	for _, b := range c.blocks {
		if b.Number == n {
			c.head = b
		}
	}
}

func (c *chainEL) headNumber() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head.Number
}

func (c *chainEL) snapshot() (head upstream.Block, imported, back, requests uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.head, c.imported, c.back, c.requests
}

// importBlock remembers b, forgetting the oldest block when bounded. Called with c.mu held.
func (c *chainEL) importBlock(b upstream.Block) {
	if _, ok := c.blocks[b.Hash]; ok {
		return
	}
	c.imported++
	c.blocks[b.Hash] = b
	c.order = append(c.order, b.Hash)
	if c.keep > 0 && len(c.order) > c.keep {
		delete(c.blocks, c.order[0])
		c.order = c.order[1:]
	}
}

// moveHead follows a forkchoiceUpdated to b. Called with c.mu held.
func (c *chainEL) moveHead(b upstream.Block) {
	if b.Number < c.head.Number {
		c.back++
	}
	c.head = b
	c.heads = append(c.heads, b.Number)
	if c.keep > 0 && len(c.heads) > c.keep {
		c.heads = c.heads[1:]
	}
}

func (c *chainEL) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	delay, paused := c.delay, c.paused
	c.mu.Unlock()
	if paused != nil {
		select {
		case <-paused:
		case <-r.Context().Done():
			return
		}
	}
	if delay > 0 {
		time.Sleep(delay) // the EL's own processing time: real time, as a real EL takes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.requests++
	if c.down {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	req, err := engine.Inspect(body)
	if err != nil {
		w.Write(engine.ErrorResponse(nil, &engine.Error{Code: engine.CodeParseError, Message: err.Error()}))
		return
	}
	if msg := paramsMismatch(req); msg != "" {
		w.Write(engine.ErrorResponse(req.ID, &engine.Error{Code: engine.CodeInvalidParams, Message: msg}))
		return
	}
	blockJSON := func(b upstream.Block) string {
		return fmt.Sprintf(`{"hash":"%s","number":"0x%x","timestamp":"0x%x"}`, b.Hash, b.Number, b.Timestamp)
	}
	result := "null"
	switch {
	case req.Class == engine.ClassNewPayload:
		b := req.Block
		if _, ok := c.blocks[b.Parent]; !ok {
			result = `{"status":"SYNCING","latestValidHash":null,"validationError":null}`
			break
		}
		c.importBlock(upstream.Block{Hash: b.Hash, Number: b.Number, Timestamp: b.Timestamp})
		result = fmt.Sprintf(`{"status":"VALID","latestValidHash":"%s","validationError":null}`, b.Hash)
	case req.Class == engine.ClassForkchoice:
		b, ok := c.blocks[req.Forkchoice.Head]
		if !ok {
			result = `{"payloadStatus":{"status":"SYNCING","latestValidHash":null,"validationError":null},"payloadId":null}`
			break
		}
		c.moveHead(b)
		pid := "null"
		if req.HasAttributes {
			pid = fmt.Sprintf(`"0x%016x"`, req.AttributesTimestamp)
		}
		result = fmt.Sprintf(`{"payloadStatus":{"status":"VALID","latestValidHash":"%s","validationError":null},"payloadId":%s}`, b.Hash, pid)
	case req.Method == "eth_getBlockByNumber":
		result = blockJSON(c.head)
	case req.Method == "eth_getBlockByHash":
		var h engine.Hash
		if i := strings.Index(string(body), `"params":["`); i >= 0 && len(body) >= i+11+66 {
			_ = h.UnmarshalText(body[i+11 : i+11+66])
		}
		if b, ok := c.blocks[h]; ok {
			result = blockJSON(b)
		}
	}
	if c.record && (req.Class == engine.ClassNewPayload || req.Class == engine.ClassForkchoice) {
		a := arrival{class: req.Class, number: req.Block.Number, hash: req.Block.Hash, attrs: req.HasAttributes}
		if req.Class == engine.ClassForkchoice {
			a.hash, a.number = req.Forkchoice.Head, c.blocks[req.Forkchoice.Head].Number
		}
		a.status = "VALID"
		if strings.Contains(result, "SYNCING") {
			a.status = "SYNCING"
		}
		c.arrivals = append(c.arrivals, a)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(engine.ResultResponse(req.ID, []byte(result)))
}

// paramsMismatch checks a forkchoiceUpdated's parameter count the way a strict EL does:
// V4 and later take all three (custodyColumns may be null, not missing); V1–V3 may leave out
// the attributes. (newPayloads are not decoded: the proxy forwards them as sent, and decoding
// 300 KB bodies would slow the EL the burst tests need to keep up.)
func paramsMismatch(req engine.Request) string {
	if req.Class != engine.ClassForkchoice {
		return ""
	}
	want := []int{fcuParams(req.Version)}
	if req.Version < 4 {
		want = []int{1, 2}
	}
	var ps []json.RawMessage
	if err := json.Unmarshal(req.Params, &ps); err != nil {
		return "params: " + err.Error()
	}
	if !slices.Contains(want, len(ps)) {
		return fmt.Sprintf("%s takes %v params, got %d", req.Method, want, len(ps))
	}
	return ""
}
