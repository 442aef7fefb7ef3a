package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/bounded"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// Block building in direct mode.
//
// A build starts with the writer's forkchoiceUpdated with payload attributes, which goes to
// every lane (sync-only lanes get it without the attributes). The beacon node gets the
// primary's answer, or a follower's when the primary fails, and with it a payloadId; learn
// records which lanes issued that id in the build book. engine_getPayload* then goes to
// those lanes only, the primary first, the next one as soon as one fails or after half the
// method's timeout (a hung EL must not cost the proposal). An EL that answers -38001 passes
// the turn to the next; the beacon node gets -38001 only when every issuer said so.
//
// A payloadId the book does not hold gets -38001 from the proxy itself, no EL asked: no EL
// behind this proxy issued it (or it expired, see [Config.PayloadIDTTL]), and forwarding it
// could only return another build's payload. One exception: for one PayloadIDTTL after the
// proxy started, an id may have been issued before a restart; then the ELs that build
// (primary, then followers; never sync-only or relay lanes) are asked in turn, and -38001
// is answered only when all of them say so.

// DefaultPayloadIDTTLSlots is the default [Config.PayloadIDTTL] in slots of
// [Config.Election]: a beacon node fetches its payload within the slot it proposes in, and
// prepares the build at most a slot before.
const DefaultPayloadIDTTLSlots = 10

// defaultPayloadIDTTL is used when the slot duration is not configured either.
const defaultPayloadIDTTL = 120 * time.Second

// buildBookSize bounds the payloadIds remembered; the oldest is forgotten first.
const buildBookSize = 256

// payloadIDTTL returns cfg's PayloadIDTTL, or its default.
func payloadIDTTL(cfg Config) time.Duration {
	switch {
	case cfg.PayloadIDTTL > 0:
		return cfg.PayloadIDTTL
	case cfg.Election.SlotDuration > 0:
		return DefaultPayloadIDTTLSlots * cfg.Election.SlotDuration
	}
	return defaultPayloadIDTTL
}

// buildBook remembers which lanes issued each payloadId, and when. It is bounded (the oldest
// id is forgotten first) and ids expire ttl after they were first issued. Ids are compared
// without regard to the case of their hex digits (a beacon node may re-encode the id). It
// is safe for concurrent use.
type buildBook struct {
	clk   clock.Clock
	ttl   time.Duration
	start time.Time // when the book was made: ids issued before are unknown to it

	mu    sync.Mutex
	items *bounded.Map[string, *build]
}

// build is one payloadId in the book.
type build struct {
	lanes []int     // lanes that issued the id, the primary first
	at    time.Time // when the first of them issued it
	// req is the forkchoiceUpdated that started the build, when known (see issue): other
	// lanes may have issued other ids for it.
	req *upstream.Delivery
}

func newBuildBook(clk clock.Clock, ttl time.Duration) *buildBook {
	return &buildBook{
		clk: clk, ttl: ttl, start: clk.Now(),
		items: bounded.New[string, *build](buildBookSize),
	}
}

// get returns the lanes that issued id, the primary first, when id is known and not
// expired.
func (b *buildBook) get(id string) ([]int, bool) {
	id = strings.ToLower(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.items.Get(id)
	if !ok || b.expired(e) {
		return nil, false
	}
	return e.lanes, true
}

// issue records that lane issued id for the forkchoiceUpdated req (nil when unknown); primary
// puts the lane first. With req known, a getPayload for one lane's id can fall back to the
// id another lane issued for the same build.
func (b *buildBook) issue(id string, lane int, primary bool, req *upstream.Delivery) {
	id = strings.ToLower(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.items.Get(id)
	if ok && b.expired(e) {
		ok = false
	}
	next := []int{}
	if ok {
		next = make([]int, 0, len(e.lanes)+1)
	}
	if primary {
		next = append(next, lane)
	}
	if ok {
		for _, i := range e.lanes {
			if i != lane {
				next = append(next, i)
			}
		}
	}
	if !primary {
		next = append(next, lane)
	}
	b.putLocked(id, next, req, !ok)
}

// putLocked stores lanes for id; fresh restarts its clock. Called with b.mu held.
func (b *buildBook) putLocked(id string, lanes []int, req *upstream.Delivery, fresh bool) {
	e, ok := b.items.Get(id)
	if !ok {
		e = &build{}
		b.items.Put(id, e)
		fresh = true
	}
	e.lanes = lanes
	if fresh {
		e.at = b.clk.Now()
		e.req = nil
	}
	if req != nil {
		e.req = req
	}
}

func (b *buildBook) expired(e *build) bool { return b.clk.Now().Sub(e.at) >= b.ttl }

// buildState is what the book knows about an id.
type buildState uint8

const (
	buildUnknown buildState = iota // never issued, or forgotten
	buildExpired                   // issued more than ttl ago
	buildKnown                     // issued by the lanes returned
)

// target is one lane to ask for a payload, and the payloadId that lane issued ("" for the
// one the beacon node sent).
type target struct {
	lane int
	id   string
}

// route returns the lanes to ask for id: those that issued it, then those that issued
// another id for the same build.
func (b *buildBook) route(id string) ([]target, buildState) {
	id = strings.ToLower(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.items.Get(id)
	switch {
	case !ok:
		return nil, buildUnknown
	case b.expired(e):
		return nil, buildExpired
	}
	out := make([]target, 0, len(e.lanes))
	seen := map[int]bool{}
	for _, i := range e.lanes {
		out = append(out, target{lane: i, id: ""}) // "": the id the beacon node sent
		seen[i] = true
	}
	if e.req == nil {
		return out, buildKnown
	}
	for other, o := range b.items.All() { // oldest first; at most buildBookSize
		if other == id || o.req != e.req || b.expired(o) {
			continue
		}
		for _, i := range o.lanes {
			if !seen[i] {
				out = append(out, target{lane: i, id: other})
				seen[i] = true
			}
		}
	}
	return out, buildKnown
}

// coversRestart reports whether an id unknown to the book may have been issued before the
// proxy (re)started: the book is younger than the ids' lifetime.
func (b *buildBook) coversRestart() bool { return b.clk.Now().Sub(b.start) < b.ttl }

// getPayload answers engine_getPayload* from the lanes that issued the payloadId.
func (p *Proxy) getPayload(ctx context.Context, d *upstream.Delivery) ([]byte, Outcome) {
	id := d.Req.PayloadID
	// No wait for an id the book does not know yet: a lane records the ids in an answer
	// before the answer is released, so a beacon node cannot hold an id the book lacks.
	targets, st := p.builders.route(id)
	switch st {
	case buildExpired:
		return unknownPayload(d, fmt.Sprintf("payload id %s expired: it was issued more than %s ago", id, p.builders.ttl)), OutcomeRejected
	case buildUnknown:
		if !p.builders.coversRestart() {
			return unknownPayload(d, fmt.Sprintf("no execution client behind sync-proxy issued payload id %s", id)), OutcomeRejected
		}
		for _, i := range p.buildOrder() {
			targets = append(targets, target{lane: i})
		}
	}
	targets = p.liveFirst(targets)
	if len(targets) == 0 {
		return unknownPayload(d, "no execution client behind sync-proxy builds payloads"), OutcomeRejected
	}
	return p.askBuilders(ctx, d, targets)
}

// buildOrder lists the lanes that may build: the primary, then the followers in
// configuration order.
func (p *Proxy) buildOrder() []int {
	var out []int
	if p.primary >= 0 {
		out = append(out, p.primary)
	}
	for i, l := range p.lanes {
		if i != p.primary && l.Role() == upstream.RoleFollower {
			out = append(out, i)
		}
	}
	return out
}

// liveFirst keeps the targets' order but moves lanes known to be down to the end, and drops
// lanes that never build.
func (p *Proxy) liveFirst(ts []target) []target {
	var up, down []target
	for _, t := range ts {
		l := p.lanes[t.lane]
		if !canBuild(l.Role()) {
			continue
		}
		if s := l.State(); s == upstream.StateUp || s == upstream.StateUnknown {
			up = append(up, t)
		} else {
			down = append(down, t)
		}
	}
	return append(up, down...)
}

// canBuild reports whether an EL of this role may be asked for a payload.
func canBuild(r upstream.Role) bool { return r == upstream.RolePrimary || r == upstream.RoleFollower }

// askBuilders asks the targets for the payload in order, starting the next one when one
// fails, answers -38001, or has not answered after half the method's timeout. The first
// other answer wins; -38001 is passed on when every target gave it.
func (p *Proxy) askBuilders(ctx context.Context, d *upstream.Delivery, targets []target) ([]byte, Outcome) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		t   target
		res upstream.Result
	}
	answers := make(chan answer, len(targets)) // every call can send without a reader
	launched, pending := 0, 0
	launch := func() {
		t := targets[launched]
		launched++
		pending++
		dd := d
		if t.id != "" && t.id != d.Req.PayloadID {
			dd = withPayloadID(d, t.id)
		}
		// The call may outlive this request's own hold on the body: when another target's
		// answer wins, this goroutine may not even have read the body yet. It holds the body
		// itself until its call returns.
		dd.Retain()
		go func() {
			defer dd.Release()
			answers <- answer{t, p.lanes[t.lane].Call(ctx, dd)}
		}()
	}
	hedge := engine.Timeout(d.Req.Method) / 2
	timer := time.NewTimer(hedge)
	defer timer.Stop()
	launch()

	var failures []string
	var unknown []byte
	for pending > 0 {
		select {
		case a := <-answers:
			pending--
			name := p.lanes[a.t.lane].Name()
			switch {
			case !a.res.OK():
				failures = append(failures, name+": "+a.res.Err.Error())
			case a.res.Resp.Err != nil && a.res.Resp.Err.Code == engine.CodeUnknownPayload:
				unknown = a.res.Body
				failures = append(failures, name+": unknown payload")
			default:
				return a.res.Body, OutcomeAnswered
			}
			if launched < len(targets) {
				launch()
				timer.Reset(hedge)
			}
		case <-timer.C:
			if launched < len(targets) {
				launch()
				timer.Reset(hedge)
			}
		case <-ctx.Done():
			return nil, OutcomeFailed
		}
	}
	if unknown != nil {
		return unknown, OutcomeAnswered
	}
	return noAnswer(d, failures), OutcomeFailed
}

// withPayloadID returns a copy of a getPayload delivery asking for id instead, with the
// same JSON-RPC id and method.
func withPayloadID(d *upstream.Delivery, id string) *upstream.Delivery {
	method, _ := json.Marshal(d.Req.Method) // a string always marshals
	pid, _ := json.Marshal(id)
	rpcID := []byte(d.Req.ID)
	if len(rpcID) == 0 {
		rpcID = []byte("null")
	}
	body := make([]byte, 0, 64+len(rpcID)+len(method)+len(pid))
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	idAt := len(body)
	body = append(body, rpcID...)
	body = append(body, `,"method":`...)
	body = append(body, method...)
	body = append(body, `,"params":[`...)
	body = append(body, pid...)
	body = append(body, "]}"...)
	req := d.Req
	req.PayloadID = id
	if d.Req.ID != nil {
		req.ID = body[idAt : idAt+len(rpcID)] // its own: d's body may go back to the pool first
	}
	return d.WithBody(body, req)
}

// unknownPayload is the spec's -38001 answer.
func unknownPayload(d *upstream.Delivery, why string) []byte {
	return engine.ErrorResponse(d.Req.ID, &engine.Error{Code: engine.CodeUnknownPayload, Message: "Unknown payload: " + why})
}
