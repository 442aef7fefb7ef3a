package proxy

import (
	"context"
	"errors"
	"reflect"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// answer waits for the answer a beacon node gets in direct mode: the primary's, as soon as
// it arrives. If the primary fails, or has not answered after FailoverAfter, a follower's
// answer is used: at once when it is a final verdict (VALID, INVALID), which every honest EL
// shares; a follower's SYNCING or ACCEPTED only when the primary has failed, or at the
// deadline. A primary that is down, or stuck on an earlier request for longer than
// FailoverAfter, is not waited for. Followers never add latency: nothing waits for them
// unless the primary cannot answer. The wait ends at the method's spec timeout. nil means the
// beacon node went away.
func (p *Proxy) answer(ctx context.Context, d *upstream.Delivery, slots []*upstream.Slot, ok Outcome) ([]byte, Outcome) {
	hard := time.NewTimer(engine.Timeout(d.Req.Method))
	defer hard.Stop()

	var cands []*upstream.Slot
	ps := slots[p.primary]
	if ps != nil && canAnswer(upstream.RolePrimary, d) {
		cands = append(cands, ps)
		if !p.lanes[p.primary].Impaired(p.cfg.FailoverAfter) {
			failover := time.NewTimer(p.cfg.FailoverAfter)
			select {
			case <-ps.Done():
				if ps.Result().OK() {
					failover.Stop()
					return p.reply(d, ps), ok
				}
			case <-failover.C:
				ps.Overdue()
			case <-hard.C:
				return p.failed(d, slots), OutcomeFailed
			case <-ctx.Done():
				failover.Stop()
				return nil, OutcomeFailed
			}
			failover.Stop()
		}
	} else {
		ps = nil
	}
	for i, s := range slots {
		if i != p.primary && s != nil && canAnswer(p.lanes[i].Role(), d) {
			cands = append(cands, s)
		}
	}
	s, err := pickAnswer(ctx, cands, ps, hard.C)
	switch {
	case s != nil:
		return p.reply(d, s), ok
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, OutcomeFailed
	}
	return p.failed(d, slots), OutcomeFailed
}

// errNoAnswer means every candidate failed, or the deadline passed.
var errNoAnswer = errors.New("no answer")

// pickAnswer chooses among the candidates' answers once the primary's grace period is over:
// the primary's answer whenever it comes; a follower's final verdict at once; otherwise the
// first follower answer, but only when the primary has failed, every candidate is done, or
// the deadline fires.
func pickAnswer(ctx context.Context, cands []*upstream.Slot, primary *upstream.Slot, deadline <-chan time.Time) (*upstream.Slot, error) {
	for {
		var pending []*upstream.Slot
		var fallback *upstream.Slot
		primaryFailed := primary == nil || (primary.Completed() && !primary.Result().OK())
		for _, s := range cands {
			if !s.Completed() {
				pending = append(pending, s)
				continue
			}
			r := s.Result()
			if !r.OK() {
				continue
			}
			if s == primary || decisive(r) || primaryFailed {
				return s, nil
			}
			if fallback == nil {
				fallback = s
			}
		}
		if len(pending) == 0 {
			if fallback != nil {
				return fallback, nil
			}
			return nil, errNoAnswer
		}
		// Only on the failover path: wait for whichever pending slot completes first.
		cases := make([]reflect.SelectCase, 0, len(pending)+2)
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(deadline)})
		for _, s := range pending {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.Done())})
		}
		switch i, _, _ := reflect.Select(cases); i {
		case 0:
			return nil, ctx.Err()
		case 1:
			if fallback != nil {
				return fallback, nil
			}
			return nil, errNoAnswer
		}
	}
}

// decisive reports whether a follower's answer is as good as the primary's: a final payload
// status, which the spec makes the same on every EL that validated the block.
func decisive(r upstream.Result) bool {
	return r.Resp.Err == nil && r.Resp.Status.Final()
}

// reply is the EL's answer addressed to this request's id (the slot may carry another beacon
// node's copy of the same block).
func (p *Proxy) reply(d *upstream.Delivery, s *upstream.Slot) []byte {
	body := s.Result().Body
	if s.Origin() == d.Seq {
		return body
	}
	re, err := engine.WithID(body, d.Req.ID)
	if err != nil {
		return engine.ErrorResponse(d.Req.ID, &engine.Error{Code: engine.CodeInternalError, Message: "could not re-address the execution client's answer: " + err.Error()})
	}
	return re
}

// failed is the reply when no EL answered in time. A request that every answering lane
// dropped on purpose (a stale head, a superseded update) gets the spec's SYNCING: the ELs
// are not following that head. Anything else is a JSON-RPC error naming each EL's failure.
func (p *Proxy) failed(d *upstream.Delivery, slots []*upstream.Slot) []byte {
	var failures []string
	allDropped := true
	for i, s := range slots {
		if s == nil || !canAnswer(p.lanes[i].Role(), d) {
			continue
		}
		if !s.Completed() {
			allDropped = false
			failures = append(failures, p.lanes[i].Name()+": no answer in time")
			continue
		}
		err := s.Result().Err
		if !errors.Is(err, upstream.ErrDropped) {
			allDropped = false
		}
		if err != nil {
			failures = append(failures, p.lanes[i].Name()+": "+err.Error())
		}
	}
	if allDropped && len(failures) > 0 {
		switch d.Req.Class {
		case engine.ClassForkchoice:
			return engine.SyncingForkchoice(d.Req.ID)
		case engine.ClassNewPayload:
			return engine.SyncingPayloadStatus(d.Req.ID)
		}
	}
	return noAnswer(d, failures)
}

// laneHooks are the proxy's own observers of lane results, followed by the caller's.
func (p *Proxy) laneHooks(outer upstream.Hooks) upstream.Hooks {
	h := outer
	h.OnResult = func(l *upstream.Lane, s *upstream.Slot) {
		p.learn(l, s)
		if outer.OnResult != nil {
			outer.OnResult(l, s)
		}
	}
	return h
}

// learn remembers what a forkchoiceUpdated answer tells the proxy: the verdict on the head
// (for beacon nodes that are not the writer) and which EL issued a payloadId.
func (p *Proxy) learn(l *upstream.Lane, s *upstream.Slot) {
	d, res := s.Delivery(), s.Result()
	if res.OK() && res.Resp.Err == nil {
		p.compare(l, d, res.Resp.Status)
		if d.Req.Class == engine.ClassNewPayload && res.Resp.Status == engine.StatusValid && l.Role() != upstream.RoleRelay {
			p.replay.prefer(d) // a bad first copy must not be what a healing EL is sent
		}
	}
	if d.Req.Class != engine.ClassForkchoice || !res.OK() || res.Resp.Err != nil {
		return
	}
	if res.Resp.Status.Final() {
		if prev, ok := p.verdicts.get(d.Req.Forkchoice.Head); !ok || !prev.Status.Final() || l.Role() == upstream.RolePrimary {
			p.verdicts.put(d.Req.Forkchoice.Head, res.Resp)
		}
	}
	if id := res.Resp.PayloadID; id != "" {
		// With the request known, a getPayload for one EL's id can fall back to the id
		// another EL issued for the same build (ids differ between client brands).
		p.builders.issue(id, p.laneIndex(l), l.Role() == upstream.RolePrimary, d)
	}
}

// compare hands an EL's verdict to the divergence detector; a contradiction with another
// EL's verdict on the same block is logged and reported once.
func (p *Proxy) compare(l *upstream.Lane, d *upstream.Delivery, status engine.Status) {
	block := d.Req.Block.Hash
	if d.Req.Class == engine.ClassForkchoice {
		block = d.Req.Forkchoice.Head
	} else if d.Req.Class != engine.ClassNewPayload {
		return
	}
	dv := p.diverge.ObserveCopy(l.Name(), d.Req.Class, block, d.Copy, status)
	if dv == nil {
		return
	}
	p.log.Error("execution clients disagree on a block", "block", dv.Block.String(), "class", dv.Class.String(),
		"valid_el", dv.Valid.EL, "invalid_el", dv.Invalid.EL, "invalid_status", dv.Invalid.Status.String())
	if p.cfg.Hooks.OnDivergence != nil {
		p.cfg.Hooks.OnDivergence(*dv)
	}
}

func (p *Proxy) laneIndex(l *upstream.Lane) int {
	for i, x := range p.lanes {
		if x == l {
			return i
		}
	}
	return -1
}
