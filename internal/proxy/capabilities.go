package proxy

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// engine_exchangeCapabilities.
//
// The beacon node is answered with the methods that every EL supports and that sync-proxy
// can route (engine.KnownMethods), never engine_exchangeCapabilities itself: a method it is
// told about must work whichever EL answers. getPayload* counts only the ELs that build
// (primary and followers); every other method counts every EL but relays.
//
// Each EL's list is cached. It is fetched again when a beacon node asks and the cached
// list is older than Config.CapabilitiesRefresh, the EL failed a request since (it may have
// been restarted or upgraded), or the list sent to it changed. An EL that does not answer
// keeps its last list; one that never answered is left out of the intersection.
//
// Towards the ELs sync-proxy sends one list, the same to every EL: the intersection of the
// lists the beacon nodes sent (the latest per beacon node, at most maxBNLists of them), the
// methods it routes and the methods every EL supports, so no EL is told a beacon node will
// use a method another EL lacks. An EL whose list is not known yet is first sent an empty
// list, which promises nothing, and the real list once every answer is in. The list changes
// only when that intersection does, never because two beacon nodes take turns: geth
// switches its blob cache to cell mode from this list (only if it names engine_getBlobsV4),
// so a list that flapped between beacon nodes would flap the EL. Cell mode skips the
// recovery getBlobsV3 needs, so it is right only when every beacon node and every EL use
// getBlobsV4: hence the intersections.

// DefaultCapabilitiesRefresh is the default [Config.CapabilitiesRefresh].
const DefaultCapabilitiesRefresh = 5 * time.Minute

// maxBNLists bounds the beacon nodes whose capability lists are remembered; the one that
// asked longest ago is forgotten first.
const maxBNLists = 64

// fanOutWait bounds a read that asks every EL (capabilities, client version): the spec's
// 1 s less a margin, so the beacon node, which also waits 1 s, gets the answer.
const fanOutWait = 900 * time.Millisecond

// capabilities caches the ELs' and the beacon nodes' engine_exchangeCapabilities lists.
type capabilities struct {
	clk     clock.Clock
	refresh time.Duration

	mu  sync.Mutex
	els []elCaps // by lane index
	bns []bnCaps // most recent last
}

// elCaps is one EL's cached list.
type elCaps struct {
	methods  []string      // nil until the EL answered once
	at       time.Time     // when it answered
	failed   uint64        // the lane's failure count when it answered
	sent     string        // the list sent then, joined
	inflight chan struct{} // non-nil while a fetch runs; closed when it ends
}

// bnCaps is one beacon node's latest list.
type bnCaps struct {
	bn      string
	methods []string
}

func newCapabilities(clk clock.Clock, refresh time.Duration, lanes int) *capabilities {
	if refresh <= 0 {
		refresh = DefaultCapabilitiesRefresh
	}
	return &capabilities{clk: clk, refresh: refresh, els: make([]elCaps, lanes)}
}

// routable is the set of methods sync-proxy can route and may advertise, in fork order.
func routable() []string {
	return slices.DeleteFunc(engine.KnownMethods(), func(m string) bool { return m == engine.MethodExchangeCapabilities })
}

// exchangeCapabilities answers engine_exchangeCapabilities.
func (p *Proxy) exchangeCapabilities(ctx context.Context, d *upstream.Delivery) ([]byte, Outcome) {
	list, err := capabilityParam(d.Body)
	if err != nil {
		return engine.ErrorResponse(d.Req.ID, &engine.Error{Code: engine.CodeInvalidParams, Message: "Invalid parameters: " + err.Error()}), OutcomeRejected
	}
	stable := p.caps.rememberBN(d.BN, list)
	fctx, cancel := context.WithTimeout(ctx, fanOutWait)
	p.refreshCapabilities(fctx, stable)
	cancel()
	if ctx.Err() != nil { // the beacon node went away
		return nil, OutcomeFailed
	}
	methods, ok := p.caps.intersection(p.lanes)
	if !ok {
		return engine.ErrorResponse(d.Req.ID, &engine.Error{Code: engine.CodeServerError,
			Message: "no execution client answered engine_exchangeCapabilities"}), OutcomeFailed
	}
	result, _ := json.Marshal(methods) // []string always marshals
	return engine.ResultResponse(d.Req.ID, result), OutcomeAnswered
}

// capabilityParam reads params[0] of an exchangeCapabilities request: an array of strings.
func capabilityParam(body []byte) ([]string, error) {
	var req struct {
		Params []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	if len(req.Params) == 0 {
		return nil, errString("missing params[0], the consensus client's methods")
	}
	var list []string
	if err := json.Unmarshal(req.Params[0], &list); err != nil {
		return nil, errString("params[0] must be an array of method names")
	}
	return list, nil
}

// errString is an error with a fixed text.
type errString string

func (e errString) Error() string { return string(e) }

// rememberBN records bn's latest list and returns the list to send the ELs: the
// intersection of every remembered beacon node's list with the routable methods.
func (c *capabilities) rememberBN(bn string, list []string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bns = slices.DeleteFunc(c.bns, func(b bnCaps) bool { return b.bn == bn })
	if len(c.bns) >= maxBNLists {
		c.bns = slices.Delete(c.bns, 0, 1)
	}
	c.bns = append(c.bns, bnCaps{bn: bn, methods: slices.Clone(list)})
	out := routable()
	for _, b := range c.bns {
		out = slices.DeleteFunc(out, func(m string) bool { return !slices.Contains(b.methods, m) })
	}
	return out
}

// capabilityRounds bounds the fetch rounds of one refresh: the probes of unknown ELs, the
// list narrowed by what they answered, and one more should an EL's answer change meanwhile.
const capabilityRounds = 3

// refreshCapabilities brings every EL's cached list up to date and sends every EL the list
// towards the ELs, stable narrowed to what every EL supports, and waits for the fetches (its
// own and those already running) or ctx. An EL whose list is not known yet is asked first
// with an empty list, which promises nothing, so that no EL is ever told a beacon node will
// use a method another EL lacks (geth turns on its blob cache's cell mode when told
// engine_getBlobsV4); the narrowed list follows in the next round. Fetches run in parallel.
func (p *Proxy) refreshCapabilities(ctx context.Context, stable []string) {
	probed := make([]bool, len(p.lanes)) // each unknown EL is probed once per refresh
	for range capabilityRounds {
		target := p.caps.narrow(stable, p.lanes)
		key := strings.Join(target, ",")
		now := p.caps.clk.Now()
		var wait []chan struct{}
		p.caps.mu.Lock()
		for i, l := range p.lanes {
			if l.Role() == upstream.RoleRelay {
				continue
			}
			e := &p.caps.els[i]
			if e.inflight != nil {
				wait = append(wait, e.inflight)
				continue
			}
			list, listKey := target, key
			if e.methods == nil {
				if probed[i] {
					continue
				}
				probed[i] = true
				list, listKey = []string{}, probeKey
			} else if now.Sub(e.at) < p.caps.refresh && e.sent == key && l.Stats().Failed == e.failed {
				continue // fresh
			}
			done := make(chan struct{})
			e.inflight = done
			wait = append(wait, done)
			go p.fetchCapabilities(ctx, i, list, listKey, done)
		}
		p.caps.mu.Unlock()
		if len(wait) == 0 {
			return
		}
		for _, ch := range wait {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}
}

// probeKey marks an EL that was sent the empty probe list: it differs from every real list's
// key, so the EL is sent the real list in the next round even when that list is empty.
const probeKey = "\x00probe"

// narrow returns stable less the methods an EL whose list is known lacks (by the rule the
// beacon nodes' answer follows, see intersection; with no list known, that is every
// routable method, so stable stays whole).
func (c *capabilities) narrow(stable []string, lanes []*upstream.Lane) []string {
	supported, _ := c.intersection(lanes)
	return slices.DeleteFunc(slices.Clone(stable), func(m string) bool { return !slices.Contains(supported, m) })
}

// fetchCapabilities asks lane i for its list, sending list (whose key is key), and caches
// the answer.
func (p *Proxy) fetchCapabilities(ctx context.Context, i int, list []string, key string, done chan struct{}) {
	l := p.lanes[i]
	var methods []string
	res := l.Call(ctx, capabilitiesDelivery(list))
	if res.OK() && res.Resp.Err == nil {
		if err := json.Unmarshal(res.Resp.Result, &methods); err != nil || methods == nil {
			methods = nil
			p.log.Warn("execution client's engine_exchangeCapabilities answer is not a list of methods", "el", l.Name())
		}
	}
	failed := l.Stats().Failed
	p.caps.mu.Lock()
	e := &p.caps.els[i]
	if methods != nil {
		e.methods, e.at, e.sent, e.failed = methods, p.caps.clk.Now(), key, failed
	}
	e.inflight = nil
	p.caps.mu.Unlock()
	close(done)
}

// capabilitiesDelivery is sync-proxy's own exchangeCapabilities request.
func capabilitiesDelivery(list []string) *upstream.Delivery {
	params, _ := json.Marshal([][]string{list}) // strings always marshal
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"` + engine.MethodExchangeCapabilities + `","params":` + string(params) + `}`)
	return &upstream.Delivery{
		Req:  engine.Request{Method: engine.MethodExchangeCapabilities, ID: json.RawMessage("1"), Class: engine.ClassRead},
		Body: body,
		BN:   "sync-proxy",
	}
}

// intersection returns the routable methods every EL whose list is known supports, and
// false when no EL's list is known.
func (c *capabilities) intersection(lanes []*upstream.Lane) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := routable()
	known := false
	for i, l := range lanes {
		e := c.els[i]
		if l.Role() == upstream.RoleRelay || e.methods == nil {
			continue
		}
		known = true
		builds := canBuild(l.Role())
		out = slices.DeleteFunc(out, func(m string) bool {
			if !builds && engine.Classify(m) == engine.ClassGetPayload {
				return false // an EL that never builds is never asked for a payload
			}
			return !slices.Contains(e.methods, m)
		})
	}
	return out, known
}

// CapabilityLists returns each EL's cached engine_exchangeCapabilities list by EL name (nil
// when it never answered), for status pages and tests.
func (p *Proxy) CapabilityLists() map[string][]string {
	p.caps.mu.Lock()
	defer p.caps.mu.Unlock()
	out := make(map[string][]string, len(p.lanes))
	for i, l := range p.lanes {
		if l.Role() != upstream.RoleRelay {
			out[l.Name()] = slices.Clone(p.caps.els[i].methods)
		}
	}
	return out
}
