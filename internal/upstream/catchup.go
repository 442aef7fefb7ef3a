package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// Replay is where a lane finds what an EL that fell behind missed. The proxy implements it
// with a bounded ring of recent newPayloads and the writer's latest forkchoiceUpdated.
type Replay interface {
	// Since returns, oldest first, the newPayloads an EL whose head is head needs to reach
	// the newest head, and the forkchoiceUpdated (without payload attributes) that sets it.
	// gap is true when the ring does not reach back to head: the EL must sync over p2p.
	// Every delivery returned is retained for the caller, who releases each.
	Since(head Block) (payloads []*Delivery, forkchoice *Delivery, gap bool)
}

// CatchUp describes a lane's last catch-up.
type CatchUp struct {
	At       time.Time
	ELHead   Block // the EL's own head when the catch-up started
	Replayed int   // newPayloads re-sent
	Gap      bool  // the EL is further behind than the replay ring reaches
	Err      string
}

// headRequest asks an EL for its latest block; ELs serve eth_getBlockByNumber on the engine
// port (execution-apis src/engine/common.md).
var headRequest = []byte(`{"jsonrpc":"2.0","id":"sync-proxy-head","method":"eth_getBlockByNumber","params":["latest",false]}`)

// blockRequest asks an EL for one block by hash.
func blockRequest(h engine.Hash) []byte {
	return []byte(`{"jsonrpc":"2.0","id":"sync-proxy-block","method":"eth_getBlockByHash","params":["` + h.String() + `",false]}`)
}

// queryBlock sends an eth_getBlockBy* request and returns the block, or found=false when the
// EL does not have it.
func (l *Lane) queryBlock(ctx context.Context, body []byte) (b Block, found bool, err error) {
	req, err := engine.Inspect(body)
	if err != nil {
		return Block{}, false, fmt.Errorf("internal request: %w", err)
	}
	// The lane's own lookup waits on its goroutine: the spec's 1 s, whatever budget beacon
	// nodes' reads of the same method get.
	res := l.deliverWithin(ctx, &Delivery{Req: req, Body: body}, engine.Timeout(req.Method))
	if res.Err != nil {
		return Block{}, false, res.Err
	}
	if res.Resp.Err != nil {
		return Block{}, false, fmt.Errorf("%s: %w", req.Method, res.Resp.Err)
	}
	var v *struct {
		Hash      engine.Hash `json:"hash"`
		Number    string      `json:"number"`
		Timestamp string      `json:"timestamp"`
	}
	if err := json.Unmarshal(res.Resp.Result, &v); err != nil {
		return Block{}, false, fmt.Errorf("%s answer: %w", req.Method, err)
	}
	if v == nil {
		return Block{}, false, nil
	}
	num, err1 := strconv.ParseUint(v.Number, 0, 64)
	ts, err2 := strconv.ParseUint(v.Timestamp, 0, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Block{}, false, fmt.Errorf("%s answer: %w", req.Method, err)
	}
	return Block{Hash: v.Hash, Number: num, Timestamp: ts}, true, nil
}

// wantsCatchUp reports whether a catch-up is due. Called on the lane goroutine.
func (l *Lane) wantsCatchUp(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.needCatchUp && l.cfg.Replay != nil && now.Sub(l.catchUp.At) >= l.cfg.CatchUpInterval && l.state == StateUp
}

// runCatchUp brings a returning or lagging EL back to the head before live traffic goes on:
// it asks the EL for its head, re-sends in order the payloads it missed (each with a fresh
// token) up to the first one the queue (or next, the request about to leave) holds, then
// the newest forkchoiceUpdated unless the queue has the rest of the blocks or a newer
// update. Live requests wait in the queue meanwhile, so nothing overtakes the replay.
func (l *Lane) runCatchUp(ctx context.Context, next *Delivery) (cu CatchUp) {
	cu = CatchUp{At: time.Now()}
	l.mu.Lock()
	l.needCatchUp = false
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.catchUp = cu
		l.catchUps++
		l.mu.Unlock()
	}()

	head, found, err := l.queryBlock(ctx, headRequest)
	if err != nil || !found {
		cu.Err = fmt.Sprintf("ask the EL for its head: %v", err)
		if err == nil {
			cu.Err = "ask the EL for its head: no block"
		}
		l.retryCatchUp()
		return cu
	}
	cu.ELHead = head
	l.raiseSentHead(head)
	payloads, fcu, gap := l.cfg.Replay.Since(head)
	defer func() {
		for _, d := range payloads {
			d.Release()
		}
		if fcu != nil {
			fcu.Release()
		}
	}()
	cu.Gap = gap
	rest := false // the rest of the blocks wait in the queue, in order
	for _, d := range payloads {
		if rest = l.blockQueued(d.Req.Block.Hash, next); rest {
			break
		}
		res := l.deliver(ctx, d)
		if res.Err != nil {
			cu.Err = fmt.Sprintf("replay block %d: %v", d.Req.Block.Number, res.Err)
			l.retryCatchUp()
			return cu
		}
		cu.Replayed++
		if fcu != nil && cu.Replayed%replayHeadEvery == 0 && cu.Replayed < len(payloads) {
			if err := l.moveHeadTo(ctx, fcu.Req.Method, d); err != nil {
				cu.Err = fmt.Sprintf("replay: head update to block %d: %v", d.Req.Block.Number, err)
				l.retryCatchUp()
				return cu
			}
		}
	}
	// The replayed update passes the same head guard as live ones: never move the EL back.
	// When the queue has the rest of the blocks, its own updates follow them.
	if fcu != nil && !rest && !l.forkchoiceQueued() && (fcu.Req.Forkchoice.Head != head.Hash || len(payloads) > 0) && !l.staleAtSend(ctx, fcu) {
		res := l.deliver(ctx, fcu)
		if res.Err != nil {
			cu.Err = fmt.Sprintf("replay forkchoiceUpdated: %v", res.Err)
			l.retryCatchUp()
			return cu
		}
	}
	return cu
}

// replayHeadEvery is how many replayed blocks may pass before the EL's head is moved to the
// last of them. An EL that imports many blocks without its head moving runs out of state:
// geth's path scheme keeps 128 blocks of state above its head, then refuses payloads as if
// snap syncing. One epoch stays well inside that and costs one request per 32 blocks.
const replayHeadEvery = 32

// moveHeadTo makes block d (just replayed) the EL's head with a forkchoiceUpdated of the given
// method, without attributes and with zero safe and finalized hashes (which move neither:
// the writer's newest update sets them when the replay is done). Version 4 and later carry a
// third parameter, custodyColumns: sent null, which leaves the EL's custody as the writer
// last set it.
func (l *Lane) moveHeadTo(ctx context.Context, method string, d *Delivery) error {
	var zero engine.Hash
	rest := "null"
	if engine.MethodVersion(method) >= 4 {
		rest = "null,null"
	}
	body := []byte(`{"jsonrpc":"2.0","id":"sync-proxy-replay-head","method":"` + method + `","params":[{"headBlockHash":"` +
		d.Req.Block.Hash.String() + `","safeBlockHash":"` + zero.String() + `","finalizedBlockHash":"` + zero.String() + `"},` + rest + `]}`)
	req, err := engine.Inspect(body)
	if err != nil {
		return fmt.Errorf("internal request: %w", err)
	}
	b := d.Req.Block
	res := l.deliver(ctx, &Delivery{Req: req, Body: body, HeadKnown: true, Head: Block{Hash: b.Hash, Number: b.Number, Timestamp: b.Timestamp}})
	if res.Err != nil {
		return res.Err
	}
	if res.Resp.Err != nil {
		return fmt.Errorf("%s: %w", method, res.Resp.Err)
	}
	return nil
}

func (l *Lane) retryCatchUp() {
	l.mu.Lock()
	l.needCatchUp = true
	l.mu.Unlock()
}

// blockQueued reports whether next or the queue holds the newPayload of block h: a catch-up
// stops there, and the queue sends it and what follows in order (not twice).
func (l *Lane) blockQueued(h engine.Hash, next *Delivery) bool {
	if next != nil && next.Req.Class == engine.ClassNewPayload && next.Req.Block.Hash == h {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.queue {
		if s.d.Req.Class == engine.ClassNewPayload && s.d.Req.Block.Hash == h {
			return true
		}
	}
	return false
}

// forkchoiceQueued reports whether a forkchoiceUpdated waits in the queue: it is the newest
// the writer sent, so the catch-up need not send one.
func (l *Lane) forkchoiceQueued() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.queue {
		if s.d.Req.Class == engine.ClassForkchoice {
			return true
		}
	}
	return false
}

// raiseSentHead makes the head guards at least as strict as the EL's own head: after a
// restart of the proxy, no new writer may move the EL behind where it already is.
func (l *Lane) raiseSentHead(b Block) {
	l.mu.Lock()
	l.headAsked = true
	if b.Timestamp > l.sentHead.Timestamp {
		l.sentHead = b
	}
	l.queuedGuard.Observe(b.Timestamp)
	l.sentGuard.Observe(b.Timestamp)
	l.mu.Unlock()
}
