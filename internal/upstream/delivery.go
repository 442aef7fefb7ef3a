package upstream

import (
	"errors"
	"fmt"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
	"github.com/sync-proxy/sync-proxy/internal/bodies"
	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// Delivery is one inbound request on its way to one or more lanes. It is built once per
// request; every lane that carries it holds a [Slot] pointing at it, so the body is never
// copied per EL. A Delivery must not be modified after it was enqueued.
type Delivery struct {
	// Req is what engine.Inspect found in Body.
	Req engine.Request
	// Body is the request exactly as the beacon node sent it.
	Body []byte
	// BN names the beacon node that sent it (relayed to chained sync-proxies).
	BN string
	// Via lists the sync-proxy instances the request already passed, oldest first
	// (relayed to chained sync-proxies for loop prevention).
	Via string
	// Received is when the proxy accepted the request.
	Received time.Time
	// Seq identifies the request among those the proxy accepted (an answer taken from another
	// beacon node's copy of the same block is re-addressed to this request's id).
	Seq uint64

	// body owns a pooled Body for all its holders (see Own).
	body bodies.Ref
	// charge counts the lanes that hold the body in the shared backlog budget.
	charge backlog.Charge
	// Head is the forkchoiceUpdated head block, resolved through the proxy's block index;
	// HeadKnown is false when the proxy had not seen that block.
	Head      Block
	HeadKnown bool
	// Copy tells apart, for a newPayload, copies of one block hash whose bytes differ: 0 for
	// the first copy the proxy got (and later ones with its bytes), else a fingerprint of
	// the method and params (see the proxy's copies.go).
	Copy uint64
	// Term is, for a forkchoiceUpdated, the writer term that sent it (the proxy raises it
	// each time the writer changes); 0 for a beacon node that is not the writer. The head
	// guard never refuses the term an EL follows (see headguard).
	Term uint64
}

// WithBody returns a new, unpooled delivery of the same request from the same beacon node
// with another body (what req describes), e.g. a forkchoiceUpdated without its attributes.
func (d *Delivery) WithBody(body []byte, req engine.Request) *Delivery {
	return &Delivery{Req: req, Body: body, BN: d.BN, Via: d.Via, Received: d.Received,
		Head: d.Head, HeadKnown: d.HeadKnown, Seq: d.Seq, Term: d.Term, Copy: d.Copy}
}

// Own makes Body, which pool handed out, owned by the delivery: it goes back to pool once
// every holder has let go. The caller holds the first reference. Every holder calls Retain
// before it keeps the delivery and Release when it lets go: the request's handler, a lane
// from Enqueue until the slot completes, a catch-up while it replays, the proxy's replay
// ring until it forgets the block, a hedged call while it runs, and the HTTP transport until
// it closes the request body (which may be after the answer came back). Nothing may read
// Body, or the Req fields that point into it, after its holder released it. An unpooled
// delivery (never Owned) needs none of this: Retain and Release do nothing.
func (d *Delivery) Own(pool *bodies.Pool) { d.body.Own(pool, d.Body) }

// Retain adds a holder. It panics when the body already went back to the pool.
func (d *Delivery) Retain() { d.body.Retain() }

// Release drops a holder; the last one gives a pooled body back.
func (d *Delivery) Release() {
	if d.body.Release() {
		d.Body = nil
	}
}

// Block is a block's place in the chain, as far as the proxy knows it.
type Block struct {
	Hash      engine.Hash
	Number    uint64
	Timestamp uint64
}

// Slot is one delivery's place in one lane. Its result is ready once Done is closed. A
// completed slot lets go of its Delivery, so that what is kept for deduplication does not
// keep request bodies (up to 16 MB each) alive.
type Slot struct {
	d      *Delivery
	origin uint64
	lane   *Lane
	done   chan struct{}
	res    Result
	// charged is what the slot counts in its lane's backlog budget, from Enqueue until it
	// completes or is shed; sent is set once the lane sends it (it can no longer be shed).
	charged int64
	sent    bool
	// overdue is set, under the lane's lock, once the proxy stopped waiting for the slot's
	// answer (see Overdue).
	overdue bool
}

// Overdue records that the slot's answer did not come within the failover window, so a
// beacon node was answered without it. Until the slot completes, its lane counts as
// impaired: the next request does not wait for an EL already known to be stuck, however
// the lane's send time and the proxy's timer fell.
func (s *Slot) Overdue() {
	s.lane.mu.Lock()
	s.overdue = true
	s.lane.mu.Unlock()
}

// charge counts the slot's body in l's backlog budget. A pooled body counts at its
// capacity: that is the memory it holds.
func (s *Slot) charge(l *Lane) {
	s.charged = int64(max(cap(s.d.Body), 1))
	l.cfg.Backlog.Hold(l.cfg.Holder, &s.d.charge, s.charged)
}

// markSent marks the slot as sent: the budget no longer counts it as something l can shed.
// Called with l.mu held, when the slot leaves the queue for the EL.
func (s *Slot) markSent(l *Lane) {
	s.sent = true
	if s.charged > 0 {
		l.cfg.Backlog.Send(l.cfg.Holder, s.charged)
	}
}

// release stops counting the slot's body in l's budget.
func (s *Slot) release(l *Lane) {
	if s.charged > 0 {
		l.cfg.Backlog.Let(l.cfg.Holder, &s.d.charge, s.charged, s.sent)
		s.charged = 0
	}
}

func newSlot(d *Delivery, l *Lane) *Slot {
	l.open.Add(1)
	return &Slot{d: d, origin: d.Seq, lane: l, done: make(chan struct{})}
}

// Done is closed when the slot's result is known: the EL answered, the send failed, or the
// slot was dropped.
func (s *Slot) Done() <-chan struct{} { return s.done }

// Result returns the outcome. It must only be called after Done is closed.
func (s *Slot) Result() Result { return s.res }

// Lane is the lane this slot belongs to.
func (s *Slot) Lane() *Lane { return s.lane }

// Delivery is the request this slot carries. It is for hooks, which run before the slot
// completes; a completed slot returns nil.
func (s *Slot) Delivery() *Delivery { return s.d }

// Origin is the Seq of the request this slot carries.
func (s *Slot) Origin() uint64 { return s.origin }

// Completed reports whether the result is known, without blocking.
func (s *Slot) Completed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// complete records the result, lets go of the delivery and wakes the waiters. The lane calls
// its hooks before, so that whatever they learn (a payload id, a verdict) is known by the
// time anyone sees the answer.
func (s *Slot) complete(r Result) {
	d := s.d
	s.release(s.lane)
	s.res = r
	s.d = nil
	close(s.done)
	s.lane.open.Add(-1)
	d.Release()
}

// Result is what became of one delivery on one lane.
type Result struct {
	// Body is the EL's response body; nil unless Err is nil.
	Body []byte
	// Resp is what engine.InspectResponse found in Body.
	Resp engine.Response
	// Err is nil when the EL answered with a well-formed JSON-RPC response (which may
	// itself carry a JSON-RPC error). Otherwise it is a *DeliveryError.
	Err error
	// Sent is when the request left for the EL; Latency is how long the EL took.
	Sent    time.Time
	Latency time.Duration
}

// OK reports whether the EL gave a JSON-RPC answer.
func (r Result) OK() bool { return r.Err == nil }

// ErrorKind classifies a failed delivery. The values are metric label values.
type ErrorKind string

// Error kinds.
const (
	KindConnect     ErrorKind = "connect"      // the connection could not be made
	KindTimeout     ErrorKind = "timeout"      // no complete answer within the method's timeout
	KindHTTPStatus  ErrorKind = "http_status"  // an HTTP status other than 200
	KindBadResponse ErrorKind = "bad_response" // 200, but not a JSON-RPC response
	KindTransport   ErrorKind = "transport"    // the connection broke mid-request
	KindDropped     ErrorKind = "dropped"      // never sent; see DropReason
	KindCanceled    ErrorKind = "canceled"     // the proxy is shutting down
)

// DropReason says why a delivery was never sent. The values are metric label values.
type DropReason string

// Drop reasons.
const (
	DropSuperseded DropReason = "superseded" // a newer forkchoiceUpdated replaced it in the queue
	DropExpired    DropReason = "expired"    // a build whose slot was past, shed for the backlog budget
	DropShed       DropReason = "shed"       // shed for the backlog budget: the EL gets it when it heals
	DropBehind     DropReason = "behind"     // arrived while the lane was behind: the EL gets it when it heals
	DropStaleHead  DropReason = "stale_head" // a new writer's head older than the EL's (see headguard)
	DropShutdown   DropReason = "shutdown"   // the proxy stopped before it was sent
)

// Healed reports whether a delivery dropped for this reason reaches the EL all the same: a
// block shed for the backlog budget, or refused while the lane was behind, is sent by the
// lane's heal from the recent blocks, so another copy of it must not be queued.
func (r DropReason) Healed() bool { return r == DropShed || r == DropBehind }

// DeliveryError is why a delivery produced no JSON-RPC answer.
type DeliveryError struct {
	Kind   ErrorKind
	Status int        // the HTTP status, for KindHTTPStatus
	Drop   DropReason // for KindDropped
	Err    error
}

func (e *DeliveryError) Error() string {
	switch e.Kind {
	case KindHTTPStatus:
		if e.Err != nil {
			return fmt.Sprintf("http status %d: %v", e.Status, e.Err)
		}
		return fmt.Sprintf("http status %d", e.Status)
	case KindDropped:
		return "dropped: " + string(e.Drop)
	}
	if e.Err != nil {
		return string(e.Kind) + ": " + e.Err.Error()
	}
	return string(e.Kind)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// ErrDropped is matched by every DeliveryError of kind KindDropped (errors.Is).
var ErrDropped = errors.New("dropped")

// Is makes errors.Is(err, ErrDropped) true for drops.
func (e *DeliveryError) Is(target error) bool { return target == ErrDropped && e.Kind == KindDropped }

// KindOf returns the kind of a delivery error, or "" for nil and other errors.
func KindOf(err error) ErrorKind {
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Kind
	}
	return ""
}
