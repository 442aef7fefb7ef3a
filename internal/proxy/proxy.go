package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/bodies"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/divergence"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/throttle"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// Config configures a Proxy.
type Config struct {
	// ELs are the execution clients (and chained sync-proxies, role relay), in the order
	// they were configured. At most one has role primary; with one the proxy runs in direct
	// mode (beacon nodes get the primary's answers), without one in mirror mode (beacon nodes
	// get an immediate SYNCING: nginx's mirror throws the answer away).
	ELs []upstream.Config
	// Election configures the writer election.
	Election beacon.Config
	// Verifier checks inbound tokens; nil accepts requests without one.
	Verifier *jwtauth.Verifier
	// SharedKeyName is the verifier key name that proves a request is allowed but does not
	// say which beacon node sent it (the shared --jwt-secret).
	SharedKeyName string
	// TrustedProxies are the addresses whose X-Forwarded-For and relay headers are believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes bounds a request body. Default 32 MiB.
	MaxBodyBytes int64
	// FailoverAfter is how long a beacon node waits for the primary before a follower's
	// answer, if one has come, is used instead. Default 1s.
	FailoverAfter time.Duration
	// Instance identifies this proxy in the Via header of chained requests. Required.
	Instance string
	// BlockIndexSize bounds the block hash → number/timestamp index. Default 8192.
	BlockIndexSize int
	// BacklogBytes bounds what the lanes hold for their ELs, together: a body queued for
	// several ELs counts once. Default backlog.DefaultBytes.
	BacklogBytes int64
	// ReplayBytes bounds the recent newPayloads replayed to an EL that comes back, lacks a
	// parent or heals after falling behind. Default backlog.DefaultRecentBytes; negative
	// disables catch-up and healing.
	ReplayBytes int64
	// Hooks report what happens (metrics). Optional.
	Hooks Hooks
	// PayloadIDTTL is how long a payloadId stays routable after an EL issued it (see
	// build.go). Default DefaultPayloadIDTTLSlots slots of Election.SlotDuration.
	PayloadIDTTL time.Duration
	// CapabilitiesRefresh is how old an EL's cached engine_exchangeCapabilities list may be
	// before a beacon node's call fetches it again. Default DefaultCapabilitiesRefresh.
	CapabilitiesRefresh time.Duration
	// Budgets is how long to wait for an EL's answer to each method (a lane's own Budget,
	// when set, wins). The zero value: the spec's and the per-method read defaults.
	Budgets engine.Budgets
}

// Hooks are optional callbacks for observers. They must not block.
type Hooks struct {
	// OnRequest is called once per inbound request after it was answered.
	OnRequest func(bn string, class engine.Class, outcome Outcome, took time.Duration)
	// OnWriterChange is called when the writer changes.
	OnWriterChange func(c beacon.Change)
	// Lane receives every lane's events.
	Lane upstream.Hooks
	// OnDivergence is called once per block on which two ELs gave contradicting verdicts.
	OnDivergence func(d divergence.Divergence)
	// OnPayloadCopy is called for each newPayload whose bytes differ from an earlier copy
	// of the same claimed block hash (it is sent to the ELs in its own right).
	OnPayloadCopy func(bn string)
}

// Outcome is what the proxy did with one request. The values are metric label values.
type Outcome string

// Outcomes.
const (
	OutcomeForwarded    Outcome = "forwarded"    // sent to the ELs (and answered from them, in direct mode)
	OutcomeDeduplicated Outcome = "deduplicated" // a newPayload every EL already had or was about to get
	OutcomeFiltered     Outcome = "filtered"     // a forkchoiceUpdated from a beacon node that is not the writer
	OutcomeAnswered     Outcome = "answered"     // a read answered by one EL
	OutcomeRejected     Outcome = "rejected"     // bad input: a JSON-RPC or HTTP error, nothing forwarded
	OutcomeUnauthorized Outcome = "unauthorized" // 401
	OutcomeFailed       Outcome = "failed"       // no EL gave an answer
	OutcomeLoop         Outcome = "loop"         // a chained request that already passed this proxy
	OutcomeNotFound     Outcome = "not_found"    // a request to an Engine API REST path (404: the BN falls back to JSON-RPC)
)

// Proxy is the Engine API handler. It is safe for concurrent use.
type Proxy struct {
	cfg     Config
	log     *slog.Logger
	clk     clock.Clock
	lanes   []*upstream.Lane
	primary int // index into lanes; -1 in mirror mode
	tracker *beacon.Tracker
	blocks  *beacon.BlockIndex
	// bound are the beacon-node names that have their own secret: only a token signed with
	// it may speak as them (see identify).
	bound map[string]bool
	// misbound spaces the warnings about requests refused for naming a bound node.
	misbound *throttle.Every

	// enqMu makes each request's enqueue onto all lanes one step, so every lane sees
	// requests in the same order and a block two beacon nodes send at once is queued once.
	enqMu sync.Mutex
	// payloads maps a newPayload block hash to the copies sent, each with its slot on each
	// lane (see copies.go); seed keys their fingerprints.
	payloads *recent[engine.Hash, *blockCopies]
	seed     maphash.Seed
	copies   atomic.Uint64 // newPayloads whose bytes differed from an earlier copy
	// verdicts maps a forkchoiceUpdated head to the answer the ELs gave the writer.
	verdicts *recent[engine.Hash, engine.Response]
	// builders maps a payloadId to the lanes whose EL issued it, primary first.
	builders *buildBook
	// caps caches the engine_exchangeCapabilities lists.
	caps *capabilities
	// replay holds what a returning EL may have missed.
	replay *replayRing
	// bodies recycles large request bodies (in debug mode in -race builds).
	bodies *bodies.Pool
	// batchMax bounds the answers one batch collects (maxBatchAnswerBytes).
	batchMax int
	// budget bounds, in bytes, what the lanes hold.
	budget *backlog.Budget

	seq atomic.Uint64 // numbers the accepted requests

	writerMu   sync.Mutex
	writerHead engine.Hash // head of the last forkchoiceUpdated forwarded from the writer
	// term numbers the writers whose forkchoiceUpdated the proxy forwarded: it rises each
	// time that beacon node changes (termOf), and the head guard never refuses the term an
	// EL follows (see headguard).
	term   uint64
	termOf string

	// diverge compares the ELs' verdicts per block (see learn).
	diverge *divergence.Detector
}

var _ http.Handler = (*Proxy)(nil)

// New validates cfg and builds the proxy and its lanes. Nothing is sent until Run.
func New(cfg Config, clk clock.Clock, log *slog.Logger) (*Proxy, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.FailoverAfter == 0 {
		cfg.FailoverAfter = time.Second
	}
	if cfg.BlockIndexSize == 0 {
		cfg.BlockIndexSize = 8192
	}
	if cfg.BacklogBytes == 0 {
		cfg.BacklogBytes = backlog.DefaultBytes
	}
	if cfg.ReplayBytes == 0 {
		cfg.ReplayBytes = backlog.DefaultRecentBytes
	}
	var problems []error
	if len(cfg.ELs) == 0 {
		problems = append(problems, errors.New("no execution clients configured"))
	}
	if cfg.Instance == "" {
		problems = append(problems, errors.New("instance id is empty"))
	}
	if cfg.MaxBodyBytes < 0 || cfg.FailoverAfter < 0 || cfg.BlockIndexSize < 0 || cfg.BacklogBytes < 0 {
		problems = append(problems, errors.New("body limit, failover delay, block index size and backlog budget must not be negative"))
	}
	budget, err := backlog.New(max(cfg.BacklogBytes, 1), max(len(cfg.ELs), 1))
	if err != nil {
		problems = append(problems, err)
	}
	p := &Proxy{
		cfg:      cfg,
		log:      log,
		clk:      clk,
		primary:  -1,
		blocks:   beacon.NewBlockIndex(cfg.BlockIndexSize),
		bound:    boundNames(cfg.Verifier, cfg.SharedKeyName),
		misbound: throttle.NewEvery(misboundWarnEvery),
		payloads: newRecent[engine.Hash, *blockCopies](1024),
		seed:     maphash.MakeSeed(),
		verdicts: newRecent[engine.Hash, engine.Response](256),
		builders: newBuildBook(clk, payloadIDTTL(cfg)),
		caps:     newCapabilities(clk, cfg.CapabilitiesRefresh, len(cfg.ELs)),
		replay:   newReplayRing(cfg.ReplayBytes),
		bodies:   bodies.NewPool(bodies.RaceBuild),
		batchMax: maxBatchAnswerBytes,
		budget:   budget,
		diverge:  divergence.New(divergence.Options{Clock: clk}),
	}
	names := make(map[string]bool)
	for i, ec := range cfg.ELs {
		if names[ec.Name] {
			problems = append(problems, fmt.Errorf("el %q is configured twice", ec.Name))
		}
		names[ec.Name] = true
		if ec.Role == upstream.RolePrimary {
			if p.primary >= 0 {
				problems = append(problems, fmt.Errorf("el %q and el %q are both primary: at most one may be", cfg.ELs[p.primary].Name, ec.Name))
			}
			p.primary = i
		}
		ec.Hooks = p.laneHooks(cfg.Hooks.Lane)
		ec.Instance = cfg.Instance
		if ec.Budget == nil {
			ec.Budget = cfg.Budgets.For
		}
		ec.Backlog, ec.Holder = budget, i
		ec.Clock = clk
		if ec.SlotDuration == 0 {
			ec.SlotDuration = cfg.Election.SlotDuration
		}
		if cfg.ReplayBytes > 0 && ec.Role != upstream.RoleRelay {
			ec.Replay = p.replay
		}
		l, err := upstream.New(ec, log.With("component", "upstream"))
		if err != nil {
			problems = append(problems, err)
			continue
		}
		p.lanes = append(p.lanes, l)
	}
	tracker, err := beacon.NewTracker(cfg.Election, clk, log.With("component", "beacon"))
	if err != nil {
		problems = append(problems, fmt.Errorf("election: %w", err))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	p.tracker = tracker
	if cfg.Hooks.OnWriterChange != nil {
		tracker.OnChange(cfg.Hooks.OnWriterChange)
	}
	return p, nil
}

// Direct reports whether the proxy answers beacon nodes from a primary EL.
func (p *Proxy) Direct() bool { return p.primary >= 0 }

// Lanes returns the lanes in configuration order.
func (p *Proxy) Lanes() []*upstream.Lane { return p.lanes }

// Backlog returns the lanes' shared byte budget.
func (p *Proxy) Backlog() *backlog.Budget { return p.budget }

// Tracker returns the beacon node tracker.
func (p *Proxy) Tracker() *beacon.Tracker { return p.tracker }

// Divergence returns the detector of ELs that contradict each other.
func (p *Proxy) Divergence() *divergence.Detector { return p.diverge }

// Run serves every lane until ctx is done.
func (p *Proxy) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, l := range p.lanes {
		wg.Go(func() { l.Run(ctx) })
	}
	wg.Wait()
}

// Close lets go of the blocks and the head update the proxy keeps for replay, once Run has
// returned and no request is being served: every pooled body is then back in its pool.
func (p *Proxy) Close() { p.replay.close() }

// Leftover returns nil when the proxy holds nothing, as it should once Run has returned
// and Close was called: every pooled body is back, every lane slot completed, and nothing
// counts in the backlog budget. Otherwise the error says what is left and who holds it.
func (p *Proxy) Leftover() error {
	errs := []error{p.bodies.Leftover(), p.budget.Leftover()}
	for _, l := range p.lanes {
		errs = append(errs, l.Leftover())
	}
	return errors.Join(errs...)
}

// Drain waits until every lane has delivered what it holds, or ctx is done.
func (p *Proxy) Drain(ctx context.Context) error {
	var errs []error
	for _, l := range p.lanes {
		if err := l.Drain(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ServeHTTP answers one Engine API request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	bn, class, outcome := "", engine.ClassNonEngine, OutcomeRejected
	var source, method string
	batch := false // a batch's elements are reported one by one
	defer func() {
		if !batch {
			p.report(r.Context(), start, bn, source, class, method, outcome)
		}
	}()

	if r.Method == http.MethodGet && r.URL.Path == "/healthz" { // liveness, for load balancers
		outcome = OutcomeAnswered
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	// The token first, as geth checks it: an unauthenticated caller learns nothing else.
	jwtName := ""
	if p.cfg.Verifier != nil {
		name, err := p.cfg.Verifier.Verify(r.Header.Get("Authorization"))
		if err != nil {
			outcome = OutcomeUnauthorized
			var ae *jwtauth.AuthError
			reason := "invalid token"
			if errors.As(err, &ae) {
				reason = ae.Reason
			}
			p.log.Debug("request refused", "remote", r.RemoteAddr, "reason", reason)
			httpError(w, http.StatusUnauthorized, reason)
			return
		}
		if name != p.cfg.SharedKeyName {
			jwtName = name
		}
	}
	id, err := p.identify(r, jwtName)
	bn, source = id.Name, id.Source // a refused claim is counted under the bound name it named
	if err != nil {
		outcome = OutcomeUnauthorized
		p.warnMisbound(r, id)
		httpError(w, http.StatusUnauthorized, err.Error())
		return
	}
	if restPath(r.URL.Path) {
		outcome = OutcomeNotFound
		method = r.Method + " " + r.URL.Path
		notFound(w, r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "method not allowed: the Engine API takes POST")
		return
	}
	if !jsonContentType(r.Header.Get("Content-Type")) {
		httpError(w, http.StatusUnsupportedMediaType, "invalid content type, only application/json is supported")
		return
	}
	if r.ContentLength > p.cfg.MaxBodyBytes {
		httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("content length too large (%d>%d)", r.ContentLength, p.cfg.MaxBodyBytes))
		return
	}
	body, pooled, err := p.readBody(w, r)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("content length too large (>%d)", p.cfg.MaxBodyBytes))
			return
		}
		httpError(w, http.StatusBadRequest, "could not read the request body")
		return
	}
	if engine.IsBatch(body) {
		batch = true
		p.serveBatch(w, r, id, body, pooled)
		return
	}
	class, method, outcome = p.serveOne(r, body, pooled, id.Name, func(answer []byte) { writeJSON(w, answer) })
}

// report tells the hooks and the debug log how one request (or one element of a batch) ended.
func (p *Proxy) report(ctx context.Context, start time.Time, bn, source string, class engine.Class, method string, outcome Outcome) {
	took := time.Since(start)
	if p.cfg.Hooks.OnRequest != nil {
		p.cfg.Hooks.OnRequest(bn, class, outcome, took)
	}
	if p.log.Enabled(ctx, slog.LevelDebug) {
		p.log.Debug("request", "bn", bn, "identified_by", source, "method", method, "outcome", outcome, "took", took)
	}
}

// serveOne routes one JSON-RPC request from beacon node bn, whose body it owns from now
// on (pooled: the body pool handed it out), and gives the answer to emit before the body
// can go back to the pool. When the beacon node went away before an answer was ready, emit
// is not called.
func (p *Proxy) serveOne(r *http.Request, body []byte, pooled bool, bn string, emit func(answer []byte)) (engine.Class, string, Outcome) {
	d := &upstream.Delivery{Body: body}
	if pooled {
		d.Own(p.bodies)
		defer d.Release() // this request's own hold: it reads d.Req (ids point into the body) to the end
	}
	req, err := engine.Inspect(body)
	if err != nil {
		var ee *engine.Error
		if !errors.As(err, &ee) {
			ee = &engine.Error{Code: engine.CodeInternalError, Message: err.Error()}
		}
		emit(engine.ErrorResponse(req.ID, ee))
		return engine.ClassNonEngine, req.Method, OutcomeRejected
	}
	via := r.Header.Get(upstream.HeaderVia)
	if via != "" && p.trusted(remoteAddr(r.RemoteAddr)) && containsHop(via, p.cfg.Instance) {
		emit(engine.ErrorResponse(req.ID, &engine.Error{Code: engine.CodeServerError, Message: "request loop: this sync-proxy already relayed this request"}))
		return req.Class, req.Method, OutcomeLoop
	}
	d.Req, d.BN, d.Received, d.Seq = req, bn, p.clk.Now(), p.seq.Add(1)
	if p.trusted(remoteAddr(r.RemoteAddr)) {
		d.Via = via
	}
	var answer []byte
	var outcome Outcome
	switch req.Class {
	case engine.ClassNewPayload:
		answer, outcome = p.newPayload(r.Context(), d)
	case engine.ClassForkchoice:
		answer, outcome = p.forkchoice(r.Context(), d)
	default:
		answer, outcome = p.read(r.Context(), d)
	}
	if answer != nil { // nil: the beacon node went away
		emit(answer)
	}
	return req.Class, req.Method, outcome
}

// newPayload sends a block to every lane that does not have it yet and answers.
func (p *Proxy) newPayload(ctx context.Context, d *upstream.Delivery) ([]byte, Outcome) {
	b := d.Req.Block
	p.blocks.Add(b.Hash, b.Number, b.Timestamp, b.Parent)
	p.tracker.Observe(d.BN, beacon.Observation{PayloadTimestamp: b.Timestamp})

	// Only a later copy of a block is fingerprinted (see copies.go). The look is taken
	// before the lock; a copy that races the first one is fingerprinted under it.
	var fp uint64
	if prev, seen := p.payloads.get(b.Hash); seen {
		fp = copyPrint(p.seed, &d.Req)
		p.printFirst(b.Hash, prev)
	}
	sent, different, unmatched := false, false, false
	var slots []*upstream.Slot
	p.enqMu.Lock()
	p.payloads.update(b.Hash, func(prev *blockCopies, seen bool) *blockCopies {
		slots = make([]*upstream.Slot, len(p.lanes))
		i := -1
		var reuse []*upstream.Slot
		if !seen {
			prev = &blockCopies{firstSeq: d.Seq}
			if p.cfg.ReplayBytes <= 0 { // no ring to fingerprint it from later
				prev.firstFP.Store(copyPrint(p.seed, &d.Req))
			}
			p.replay.add(d)
		} else {
			if fp == 0 {
				fp = copyPrint(p.seed, &d.Req)
				p.printFirst(b.Hash, prev)
			}
			i, reuse, different = prev.plan(fp, len(p.lanes), needsResend)
			unmatched = i < 0 && !different
			if i != 0 {
				d.Copy = fp // the first copy, and those with its bytes, are copy 0
			}
		}
		for li, l := range p.lanes {
			if reuse != nil && reuse[li] != nil {
				slots[li] = reuse[li]
				l.CountDeduplicated()
				continue
			}
			slots[li] = l.Enqueue(d)
			sent = true
		}
		prev.record(i, fp, slots)
		return prev
	})
	p.enqMu.Unlock()
	switch {
	case different:
		p.copies.Add(1)
		p.log.Debug("a different copy of a block: sent to the execution clients in its own right",
			"bn", d.BN, "block", b.Hash.String(), "number", b.Number)
		if p.cfg.Hooks.OnPayloadCopy != nil {
			p.cfg.Hooks.OnPayloadCopy(d.BN)
		}
	case unmatched:
		p.log.Debug("a later copy of a block the recent blocks no longer hold: sent again, it cannot be compared",
			"bn", d.BN, "block", b.Hash.String(), "number", b.Number)
	}

	outcome := OutcomeForwarded
	if !sent {
		outcome = OutcomeDeduplicated
	}
	if !p.Direct() {
		return engine.SyncingPayloadStatus(d.Req.ID), outcome
	}
	return p.answer(ctx, d, slots, outcome)
}

// printFirst fingerprints the first copy of block h from the recent blocks, once.
func (p *Proxy) printFirst(h engine.Hash, b *blockCopies) {
	if b.firstFP.Load() != 0 {
		return
	}
	if fp, ok := p.replay.printOf(h, b.firstSeq, p.seed); ok {
		b.firstFP.CompareAndSwap(0, fp)
	}
}

// PayloadCopies counts the newPayloads whose bytes differed from an earlier copy of the same
// claimed block hash.
func (p *Proxy) PayloadCopies() uint64 { return p.copies.Load() }

// needsResend reports whether a lane should get the same bytes of a block again although it
// already had them: the earlier send failed or was dropped, the EL refused them with a
// JSON-RPC error, or it could not validate the block then (SYNCING). (Different bytes are
// always sent: see copies.go.) A block the lane shed, or refused while behind, is
// not sent again: the lane's heal sends it.
func needsResend(s *upstream.Slot) bool {
	if s == nil || !s.Completed() {
		return false
	}
	r := s.Result()
	var de *upstream.DeliveryError
	if errors.As(r.Err, &de) && de.Kind == upstream.KindDropped && de.Drop.Healed() {
		return false
	}
	return !r.OK() || r.Resp.Err != nil || r.Resp.Status == engine.StatusSyncing
}

// forkchoice forwards the writer's forkchoiceUpdated and answers everyone.
func (p *Proxy) forkchoice(ctx context.Context, d *upstream.Delivery) ([]byte, Outcome) {
	head := d.Req.Forkchoice.Head
	if e, ok := p.blocks.Lookup(head); ok {
		d.Head = upstream.Block{Hash: head, Number: e.Number, Timestamp: e.Timestamp}
		d.HeadKnown = true
	}
	// HeadKnown is set on every update: a timestamp of 0 tells the tracker the head
	// could not be resolved, which leaves the beacon node's head where it was.
	writer, _ := p.tracker.Observe(d.BN, beacon.Observation{HeadTimestamp: d.Head.Timestamp, HeadKnown: true, HeadHash: head})
	isWriter := writer == d.BN
	// A beacon node that is not the writer may still ask for a build on the head the
	// writer set, or on a block that extends it: that moves no EL back or sideways, only
	// where the writer is going, and it lets a validator behind any beacon node propose,
	// even in the slot or two before a silent writer loses the role.
	build := !isWriter && d.Req.HasAttributes && p.extendsWriterHead(head)
	if !isWriter && !build {
		if !p.Direct() {
			return engine.SyncingForkchoice(d.Req.ID), OutcomeFiltered
		}
		return p.verdictFor(d.Req.ID, head), OutcomeFiltered
	}
	if isWriter {
		p.writerMu.Lock()
		p.writerHead = head
		if p.termOf != d.BN {
			p.term++
			p.termOf = d.BN
		}
		d.Term = p.term
		p.writerMu.Unlock()
		p.replay.setForkchoice(d)
	}
	slots := make([]*upstream.Slot, len(p.lanes))
	p.enqMu.Lock()
	for i, l := range p.lanes {
		slots[i] = l.Enqueue(d)
	}
	p.enqMu.Unlock()
	if !p.Direct() {
		return engine.SyncingForkchoice(d.Req.ID), OutcomeForwarded
	}
	return p.answer(ctx, d, slots, OutcomeForwarded)
}

func (p *Proxy) currentWriterHead() engine.Hash {
	p.writerMu.Lock()
	defer p.writerMu.Unlock()
	return p.writerHead
}

// buildHops bounds how far a non-writer's build may be ahead of the writer's head.
const buildHops = 4

// extendsWriterHead reports whether head is the writer's newest head or one of its
// descendants, within buildHops blocks the proxy has seen.
func (p *Proxy) extendsWriterHead(head engine.Hash) bool {
	wh := p.currentWriterHead()
	if wh.IsZero() {
		return false
	}
	for range buildHops + 1 {
		if head == wh {
			return true
		}
		e, ok := p.blocks.Lookup(head)
		if !ok {
			return false
		}
		head = e.Parent
	}
	return false
}

// verdictFor answers a forkchoiceUpdated that is not forwarded: the ELs' verdict on the same
// head when the writer's update got one, else SYNCING. Never a payloadId: no build was
// started for this request.
func (p *Proxy) verdictFor(id []byte, head engine.Hash) []byte {
	v, ok := p.verdicts.get(head)
	if !ok || !v.Status.Final() {
		return engine.SyncingForkchoice(id)
	}
	return engine.ForkchoiceResponse(id, v.Status, v.LatestValidHash)
}

// read sends a request that changes nothing to one EL at a time: the ELs that issued the
// payloadId first for getPayload, then the primary, then the followers.
func (p *Proxy) read(ctx context.Context, d *upstream.Delivery) ([]byte, Outcome) {
	if !engine.ServedOnEnginePort(d.Req.Method) {
		return engine.ErrorResponse(d.Req.ID, &engine.Error{
			Code:    engine.CodeMethodNotFound,
			Message: "the method " + d.Req.Method + " does not exist on the engine port (engine_* and the eth_* methods the Engine API lists)",
		}), OutcomeRejected
	}
	if !p.Direct() {
		return engine.ErrorResponse(d.Req.ID, &engine.Error{
			Code:    engine.CodeMethodNotFound,
			Message: "sync-proxy runs in mirror mode and forwards only newPayload and forkchoiceUpdated; the beacon node's own execution client answers " + d.Req.Method,
		}), OutcomeRejected
	}
	switch {
	case d.Req.Method == engine.MethodExchangeCapabilities:
		return p.exchangeCapabilities(ctx, d)
	case d.Req.Method == engine.MethodGetClientVersionV1:
		return p.clientVersion(ctx, d)
	case d.Req.Class == engine.ClassGetPayload:
		return p.getPayload(ctx, d)
	}
	// Each EL gets the method's whole budget, and the beacon node an answer within two:
	// a hung primary, then a follower.
	within, cancel := context.WithTimeout(ctx, 2*p.cfg.Budgets.For(d.Req.Method))
	defer cancel()
	var failures []string
	for _, i := range p.readOrder(d) {
		l := p.lanes[i]
		res := l.Call(within, d)
		if res.OK() {
			return res.Body, OutcomeAnswered
		}
		if ctx.Err() != nil {
			return nil, OutcomeFailed // the beacon node went away
		}
		failures = append(failures, l.Name()+": "+res.Err.Error())
		if within.Err() != nil {
			break
		}
	}
	return noAnswer(d, failures), OutcomeFailed
}

// readOrder lists the lanes to try for a read, best first; ELs known to be down go last.
func (p *Proxy) readOrder(d *upstream.Delivery) []int {
	var first []int
	seen := make([]bool, len(p.lanes))
	if d.Req.Class == engine.ClassGetPayload {
		if pinned, ok := p.builders.get(d.Req.PayloadID); ok {
			for _, i := range pinned {
				first = append(first, i)
				seen[i] = true
			}
		}
	}
	if p.primary >= 0 && !seen[p.primary] {
		first = append(first, p.primary)
		seen[p.primary] = true
	}
	for i, l := range p.lanes {
		if !seen[i] && canAnswer(l.Role(), d) {
			first = append(first, i)
		}
	}
	up := first[:0:0]
	var down []int
	for _, i := range first {
		if p.lanes[i].State() == upstream.StateUp || p.lanes[i].State() == upstream.StateUnknown {
			up = append(up, i)
		} else {
			down = append(down, i)
		}
	}
	return append(up, down...)
}

// canAnswer reports whether an EL of this role may answer a beacon node's request.
func canAnswer(r upstream.Role, d *upstream.Delivery) bool {
	switch r {
	case upstream.RoleRelay:
		return false
	case upstream.RoleSyncOnly:
		// It never builds: it has no payloadId to give and no payload to return.
		return d.Req.Class != engine.ClassGetPayload && !(d.Req.Class == engine.ClassForkchoice && d.Req.HasAttributes)
	}
	return true
}

// noAnswer is the reply when no EL answered: a JSON-RPC error naming each EL's failure, or,
// when the request was only dropped (stale head, superseded), the spec's SYNCING.
func noAnswer(d *upstream.Delivery, failures []string) []byte {
	return engine.ErrorResponse(d.Req.ID, &engine.Error{
		Code:    engine.CodeServerError,
		Message: "no execution client answered: " + strings.Join(failures, "; "),
	})
}

func containsHop(via, instance string) bool {
	for _, h := range strings.Split(via, ",") {
		if strings.TrimSpace(h) == instance {
			return true
		}
	}
	return false
}

// jsonContentType accepts what geth's engine port accepts.
func jsonContentType(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	switch mt {
	case "application/json", "application/json-rpc", "application/jsonrequest":
		return true
	}
	return false
}

// readBody reads the whole body, at most MaxBodyBytes, into one slice; a large body with a
// known length goes into a pooled buffer (pooled: the caller gives it back, through a
// delivery that owns it).
func (p *Proxy) readBody(w http.ResponseWriter, r *http.Request) (body []byte, pooled bool, err error) {
	rd := http.MaxBytesReader(w, r.Body, p.cfg.MaxBodyBytes)
	if r.ContentLength > 0 {
		pooled = bodies.Pooled(r.ContentLength)
		var buf []byte
		if pooled {
			buf = p.bodies.Get(int(r.ContentLength))
		} else {
			buf = make([]byte, r.ContentLength)
		}
		if _, err := io.ReadFull(rd, buf); err != nil {
			if pooled {
				p.bodies.Put(buf)
			}
			return nil, false, fmt.Errorf("read body: %w", err)
		}
		return buf, pooled, nil
	}
	buf, err := io.ReadAll(rd)
	if err != nil {
		return nil, false, fmt.Errorf("read body: %w", err)
	}
	return buf, false, nil
}

func writeJSON(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body) // a beacon node that hung up cannot be told anything
}

// restPath reports whether path is one of the Engine API's REST endpoints (execution-apis
// PR #793: /engine/v1/..., also under a /bn/<name> prefix), which this proxy does not serve.
func restPath(path string) bool {
	if rest, ok := strings.CutPrefix(path, bnPathPrefix); ok {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return false
		}
		path = rest[i:]
	}
	return strings.HasPrefix(path, "/engine/")
}

// notFound answers a REST path with 404, in the REST transport's error shape (RFC 9457). A
// consensus client that probes the REST transport falls back to JSON-RPC on a 404.
func notFound(w http.ResponseWriter, path string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusNotFound)
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail"`
	}{"about:blank", "Not Found", http.StatusNotFound,
		"sync-proxy serves the Engine API over JSON-RPC only: " + path + " is not served; use JSON-RPC (POST /)"})
	_, _ = w.Write(append(b, '\n'))
}

func httpError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}
