package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/headguard"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// Role is what an EL is for.
type Role uint8

// Roles.
const (
	// RoleFollower ELs get every newPayload and the writer's forkchoiceUpdated; their
	// answers are used only when the primary fails.
	RoleFollower Role = iota
	// RolePrimary is the EL whose answers go back to the beacon nodes in direct mode.
	RolePrimary
	// RoleSyncOnly ELs follow the head but never build: forkchoiceUpdated reaches them
	// without payload attributes.
	RoleSyncOnly
	// RoleRelay is another sync-proxy (chaining): it gets what passed this proxy's filter,
	// with the beacon node's identity and the hop list in headers.
	RoleRelay
)

// String returns the role's configuration name.
func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleFollower:
		return "follower"
	case RoleSyncOnly:
		return "sync-only"
	case RoleRelay:
		return "relay"
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// ParseRole parses a role's configuration name.
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{RolePrimary, RoleFollower, RoleSyncOnly, RoleRelay} {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown role %q (want primary, follower, sync-only or relay)", s)
}

// State is a lane's view of its EL's health.
type State uint8

// States.
const (
	StateUnknown      State = iota // nothing sent yet
	StateUp                        // the last request got a JSON-RPC answer
	StateDown                      // the last request failed
	StateUnauthorized              // the EL answered 401: wrong secret or clock skew
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	case StateUnauthorized:
		return "unauthorized"
	}
	return "unknown"
}

// Header names used between chained sync-proxies.
const (
	HeaderVia = "X-Sync-Proxy-Via" // comma-separated instance IDs the request passed
	HeaderBN  = "X-Sync-Proxy-BN"  // the beacon node identity at the first proxy
)

// Config configures one lane.
type Config struct {
	// Name identifies the EL in logs, metrics and status. Required.
	Name string
	// URL is the EL's Engine API endpoint (http or https). Required.
	URL string
	// Role is what the EL is for.
	Role Role
	// Signer mints the token for each request; nil sends no Authorization header.
	Signer *jwtauth.Signer
	// Backlog is the byte budget all lanes share and Holder this lane's number in it; nil
	// gives the lane a budget of its own of backlog.DefaultBytes.
	Backlog *backlog.Budget
	Holder  int
	// SlotDuration tells when a queued build's slot is past. Default 12s.
	SlotDuration time.Duration
	// Clock tells the time for decisions (is a build's slot past?). Default the wall clock.
	Clock clock.Clock
	// DialTimeout bounds connecting. Default 2s.
	DialTimeout time.Duration
	// MaxResponseBytes bounds an answer's body. Default 256 MiB (getBlobs answers run to
	// tens of MB).
	MaxResponseBytes int64
	// HeadAllowance is how much older (in payload timestamp seconds) than the EL's head a
	// new writer's forkchoiceUpdated head may be and still be forwarded (see headguard).
	// The writer the EL follows is never refused. Default 0.
	HeadAllowance time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// Instance is this proxy's instance ID, appended to the Via header on relay lanes.
	Instance string
	// Hooks are told about results, drops and state changes.
	Hooks Hooks
	// Transport overrides the HTTP transport (tests); nil builds one for this lane.
	Transport http.RoundTripper
	// Replay supplies what a returning EL missed; nil disables catch-up.
	Replay Replay
	// CatchUpInterval is the least time between two catch-ups of this EL. Default 2s.
	CatchUpInterval time.Duration
	// Budget is how long to wait for the EL's answer to a method. Default engine.Timeout,
	// the spec's.
	Budget func(method string) time.Duration
}

// Hooks are optional callbacks. They run on the lane's goroutine (OnResult, OnState) or the
// enqueuing goroutine (OnDrop) and must not block.
type Hooks struct {
	OnResult func(l *Lane, s *Slot)
	OnDrop   func(l *Lane, d *Delivery, reason DropReason)
	OnState  func(l *Lane, from, to State, err error)
}

// Stats is a snapshot of a lane.
type Stats struct {
	Name       string
	URL        string
	Role       Role
	State      State
	QueueDepth int
	InFlight   bool
	// Delivered counts requests that got a JSON-RPC answer; Failed those that did not.
	Delivered uint64
	Failed    uint64
	Drops     map[DropReason]uint64
	// Deduplicated counts newPayloads not sent because this EL already had the block
	// (from another beacon node) or was about to get it.
	Deduplicated uint64
	// LastStatus is the payload status of the last newPayload or forkchoiceUpdated answer.
	LastStatus  engine.Status
	LastError   string
	LastErrorAt time.Time
	LastOKAt    time.Time
	LastLatency time.Duration
	// Head is the last head the EL answered VALID to a forkchoiceUpdated for.
	Head Block
	// SentHead is the newest head sent (or queued) to this EL; the head guard compares with it.
	SentHead Block
	// LastValid is the newest block the EL answered VALID to a newPayload for.
	LastValid Block
	// CatchUp is the last catch-up; CatchUps counts them.
	CatchUp  CatchUp
	CatchUps uint64
	// Behind is set while the lane has shed blocks for the backlog budget and not yet healed;
	// BehindSince is when it fell behind. ShedBlocks and ShedBytes count the blocks this EL
	// did not get from the queue (sent later by a heal, or over p2p); Heals the heals.
	Behind      bool
	BehindSince time.Time
	// Lost is set while the EL may lack a block it did not answer for: no block or head
	// update is sent until a catch-up has sent it again.
	Lost       bool
	ShedBlocks uint64
	ShedBytes  uint64
	Heals      uint64
	// HeldBytes is what the lane holds of the backlog budget.
	HeldBytes int64
}

// Lane delivers requests to one EL in order. Create it with New and start it with Run.
type Lane struct {
	cfg    Config
	policy backlog.Policy
	client *http.Client
	own    bool // client's transport was built for this lane: Run closes its idle connections
	log    *slog.Logger
	// open counts the slots Enqueue made that have not completed (see Leftover).
	open atomic.Int64

	mu        sync.Mutex
	queue     []*Slot
	inFlight  *Slot
	sentAt    time.Time     // when inFlight left
	wake      chan struct{} // capacity 1: "the queue changed"
	idle      chan struct{} // closed and replaced when the lane becomes idle
	closed    bool
	state     State
	lastErr   string
	lastErrAt time.Time
	lastOKAt  time.Time
	lastLat   time.Duration
	status    engine.Status
	delivered uint64
	failed    uint64
	dedup     uint64
	drops     map[DropReason]uint64
	head      Block
	sentHead  Block // head of the newest update queued (or the EL's own, when newer)
	headAsked bool  // the EL was asked for its head since the lane started
	lastValid Block
	// queuedGuard judges a forkchoiceUpdated as it arrives, against what was queued before;
	// sentGuard judges it again as it leaves, against what was sent and what the EL
	// reported (see headguard: the writer the EL follows is never refused).
	queuedGuard, sentGuard *headguard.Guard
	refusedTerm            uint64 // the newest writer term whose update the guards refused

	needCatchUp bool
	catchUp     CatchUp
	catchUps    uint64

	// parents counts the queued newPayloads by parent hash, and builds the queued
	// forkchoiceUpdated with attributes: the shedding policy reads them instead of the
	// queue. The queue never holds a superseded head update (see dropSuperseded).
	parents map[engine.Hash]int
	builds  int

	// behind is set when the lane shed a block for the backlog budget: it takes no
	// newPayload or forkchoiceUpdated until it has drained and healed (see heal).
	behind      bool
	behindAt    time.Time
	behindDrops uint64 // arrivals refused while behind or lost: a heal that missed one runs again
	// lost is set when the EL did not answer a newPayload (see loseBlock): no block or head
	// update leaves until a catch-up has found it.
	lost bool
	// stuck is set when the last catch-up of a lane behind or lost failed (the EL did not
	// answer), at stuckAt (when it ended), with stuckDrops the behindDrops it had seen: until
	// another arrival is refused, the lane has nothing it can do.
	stuck      bool
	stuckAt    time.Time
	stuckDrops uint64
	shedBlocks uint64 // blocks shed or refused while behind, ever
	shedBytes  uint64
	// episodeBlocks and episodeBytes count the blocks of the current behind episode.
	episodeBlocks, episodeBytes uint64
	heals                       uint64
}

// New validates cfg and returns a lane. It sends nothing until Run is called.
func New(cfg Config, log *slog.Logger) (*Lane, error) {
	var problems []error
	if cfg.Name == "" {
		problems = append(problems, errors.New("name is empty"))
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Errorf("url %q is not an http(s) URL", cfg.URL))
	}
	if cfg.SlotDuration < 0 || cfg.DialTimeout < 0 || cfg.MaxResponseBytes < 0 || cfg.HeadAllowance < 0 {
		problems = append(problems, errors.New("slot duration, dial timeout, response limit and head allowance must not be negative"))
	}
	if cfg.Backlog != nil && (cfg.Holder < 0 || cfg.Holder >= cfg.Backlog.Holders()) {
		problems = append(problems, fmt.Errorf("holder %d is not one of the backlog's %d", cfg.Holder, cfg.Backlog.Holders()))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("el %q: %w", cfg.Name, errors.Join(problems...))
	}
	if cfg.Backlog == nil {
		cfg.Backlog, _ = backlog.New(backlog.DefaultBytes, 1)
		cfg.Holder = 0
	}
	if cfg.SlotDuration == 0 {
		cfg.SlotDuration = 12 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 256 << 20
	}
	if cfg.CatchUpInterval == 0 {
		cfg.CatchUpInterval = 2 * time.Second
	}
	if cfg.Budget == nil {
		cfg.Budget = engine.Timeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := cfg.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:                 nil, // never an environment proxy: ELs are addressed directly
			DialContext:           (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          4,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.DialTimeout,
			DisableCompression:    true, // geth disables gzip on the engine port; bodies are hex anyway
			ExpectContinueTimeout: 0,
		}
	}
	policy, err := backlog.NewPolicy(cfg.SlotDuration)
	if err != nil {
		return nil, fmt.Errorf("el %q: %w", cfg.Name, err)
	}
	queuedGuard, err1 := headguard.New(cfg.HeadAllowance)
	sentGuard, err2 := headguard.New(cfg.HeadAllowance)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("el %q: %w", cfg.Name, err)
	}
	l := &Lane{
		cfg:    cfg,
		policy: policy,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // an EL that redirects is misconfigured: report its 3xx
			},
		},
		own:     cfg.Transport == nil,
		log:     log.With("el", cfg.Name),
		wake:    make(chan struct{}, 1),
		idle:    make(chan struct{}),
		drops:   make(map[DropReason]uint64),
		parents: make(map[engine.Hash]int),

		queuedGuard: queuedGuard,
		sentGuard:   sentGuard,
	}
	return l, nil
}

// Name returns the EL's configured name.
func (l *Lane) Name() string { return l.cfg.Name }

// Role returns the EL's role.
func (l *Lane) Role() Role { return l.cfg.Role }

// Impaired reports whether the EL cannot be expected to answer soon: it is down or refuses
// our token, or the request in flight has waited longer than stuck, or was already given up
// on (Slot.Overdue).
func (l *Lane) Impaired(stuck time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == StateDown || l.state == StateUnauthorized {
		return true
	}
	return l.inFlight != nil && (l.inFlight.overdue || time.Since(l.sentAt) > stuck)
}

// State returns the lane's current view of the EL.
func (l *Lane) State() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state
}

// Enqueue queues d for this EL and returns its slot. It never blocks on the EL. The slot
// may already be complete (dropped) when Enqueue returns.
//
// The body counts towards the shared backlog budget while the slot is queued or in flight.
// When the budget is exhausted and this lane goes first (backlog.Budget.MustShed), it sheds
// (see backlog.Policy);
// once it has shed a block it is behind: it takes no newPayload or forkchoiceUpdated until
// its queue has drained and it has healed from the recent blocks (see heal).
func (l *Lane) Enqueue(d *Delivery) *Slot {
	d.Retain() // released when the slot completes
	s := newSlot(d, l)
	var dropped []*Slot
	var reasons []DropReason
	var warn, refused bool
	var elHead uint64

	l.mu.Lock()
	switch {
	case l.closed:
		dropped, reasons = append(dropped, s), append(reasons, DropShutdown)
	case d.Req.Class == engine.ClassForkchoice && l.queuedGuard.Check(guardUpdate(d)) == headguard.Stale:
		dropped, reasons = append(dropped, s), append(reasons, DropStaleHead)
		refused, elHead = l.firstRefusal(d), l.queuedGuard.Head()
	case l.behind && (d.Req.Class == engine.ClassNewPayload || d.Req.Class == engine.ClassForkchoice):
		// The EL cannot have this block's parent or this head yet: the heal sends it.
		l.behindDrops++
		if d.Req.Class == engine.ClassNewPayload {
			l.noteShed(d)
		}
		dropped, reasons = append(dropped, s), append(reasons, DropBehind)
		// A lane behind sheds first: while what the healthy lanes queue meanwhile is over the
		// budget, it gives up the newest of what it has queued, which the others have long
		// delivered, so that frees memory.
		dropped, reasons = l.shed(dropped, reasons)
	default:
		if d.Req.Class == engine.ClassForkchoice {
			l.queuedGuard.Admit(guardUpdate(d))
			if d.HeadKnown {
				l.sentHead = d.Head
			}
		}
		l.push(s)
		if d.Req.Class == engine.ClassForkchoice {
			// A queued head update that this one follows with no block between only moves
			// the head, and this one moves it again at once: sending it is wasted work.
			dropped, reasons = l.dropSuperseded(dropped, reasons)
		}
		s.charge(l)
		wasBehind := l.behind
		dropped, reasons = l.shed(dropped, reasons)
		warn = l.behind && !wasBehind
	}
	for _, r := range reasons {
		l.drops[r]++
	}
	var held, queued int
	var shedBlocks, shedBytes uint64
	if warn {
		held, queued = int(l.cfg.Backlog.Held(l.cfg.Holder)), len(l.queue)
		shedBlocks, shedBytes = l.episodeBlocks, l.episodeBytes
	}
	l.mu.Unlock()

	if refused {
		l.logRefusal(d, elHead)
	}
	if warn {
		// Once per episode: the blocks it refuses from now on are counted in the metrics and
		// in the INFO (or WARN) that ends the episode.
		l.log.Warn("execution client behind: the backlog budget is spent and this EL has the most queued; it is not sent the newest blocks, which go again from the recent blocks once it has drained",
			"shed_blocks", shedBlocks, "shed_bytes", shedBytes, "held_bytes", held, "queued", queued, "budget_bytes", l.cfg.Backlog.Limit())
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	for i, q := range dropped {
		l.completeDropped(q, reasons[i])
	}
	return s
}

// dropSuperseded drops the queued head updates that the one just queued supersedes (step 1
// of backlog.Policy.Next): those without attributes after the last queued block. With
// dropSupersededAt it keeps the queue free of superseded updates. It looks at the queue's
// tail only, so a long queue costs a head update nothing, and takes out no block or build,
// so the queue's index stays as it is. Called with l.mu held.
func (l *Lane) dropSuperseded(dropped []*Slot, reasons []DropReason) ([]*Slot, []DropReason) {
	last := len(l.queue) - 1 // the update just queued
	from := last
	for from > 0 && l.queue[from-1].d.Req.Class != engine.ClassNewPayload {
		from--
	}
	kept := l.queue[:from]
	for _, q := range l.queue[from:last] {
		if q.d.Req.Class == engine.ClassForkchoice && !q.d.Req.HasAttributes {
			q.release(l) // before the budget is looked at
			dropped, reasons = append(dropped, q), append(reasons, DropSuperseded)
			continue
		}
		kept = append(kept, q)
	}
	kept = append(kept, l.queue[last])
	clear(l.queue[len(kept):])
	l.queue = kept
	return dropped, reasons
}

// push appends s to the queue. Called with l.mu held.
func (l *Lane) push(s *Slot) {
	l.queue = append(l.queue, s)
	l.index(s, 1)
}

// removeAt takes the slot at position i out of the queue. Called with l.mu held.
func (l *Lane) removeAt(i int) *Slot {
	s := l.queue[i]
	l.index(s, -1)
	if i == 0 {
		l.queue[0] = nil
		l.queue = l.queue[1:]
	} else {
		last := len(l.queue) - 1
		copy(l.queue[i:], l.queue[i+1:])
		l.queue[last] = nil
		l.queue = l.queue[:last]
	}
	return s
}

// index keeps l.parents and l.builds in step with s entering (+1) or leaving (-1) the
// queue. Called with l.mu held.
func (l *Lane) index(s *Slot, delta int) {
	if s.d.Req.Class == engine.ClassForkchoice && s.d.Req.HasAttributes {
		l.builds += delta
	}
	if s.d.Req.Class != engine.ClassNewPayload {
		return
	}
	p := s.d.Req.Block.Parent
	if n := l.parents[p] + delta; n > 0 {
		l.parents[p] = n
	} else {
		delete(l.parents, p)
	}
}

// queueView shows the queue to the shedding policy without copying it. Used with l.mu held.
type queueView struct{ l *Lane }

func (v queueView) Len() int                    { return len(v.l.queue) }
func (v queueView) At(i int) backlog.Item       { return itemOf(v.l.queue[i].d) }
func (v queueView) HasChild(h engine.Hash) bool { return v.l.parents[h] > 0 }

// Updates: the queue holds no superseded update, so only a build can be shed by steps 1
// and 2.
func (v queueView) Updates() bool { return v.l.builds > 0 }

// shed gives up queued requests, as backlog.Policy orders them, while the budget says this
// lane must. A shed block makes the lane behind. Called with l.mu held; the shed slots are
// appended to dropped for the caller to complete.
func (l *Lane) shed(dropped []*Slot, reasons []DropReason) ([]*Slot, []DropReason) {
	now := l.cfg.Clock.Now()
	for steps := 0; steps <= len(l.queue) && l.cfg.Backlog.MustShed(l.cfg.Holder); steps++ {
		victims := l.policy.Next(queueView{l}, now)
		if victims == nil {
			l.cfg.Backlog.Stuck(l.cfg.Holder)
			break
		}
		block := false
		for _, i := range victims {
			block = block || l.queue[i].d.Req.Class == engine.ClassNewPayload
		}
		for j := len(victims) - 1; j >= 0; j-- {
			q := l.removeAt(victims[j])
			reason := DropSuperseded
			switch {
			case block:
				reason = DropShed
				if q.d.Req.Class == engine.ClassNewPayload {
					l.noteShed(q.d)
				}
			case q.d.Req.HasAttributes:
				reason = DropExpired
			}
			q.release(l)
			dropped, reasons = append(dropped, q), append(reasons, reason)
		}
		if block {
			// The block's neighbours are now adjacent (the heads shed with it came after it).
			dropped, reasons = l.dropSupersededAt(victims[0], dropped, reasons)
			if !l.behind {
				l.behind, l.behindAt = true, time.Now()
				l.cfg.Backlog.SetBehind(l.cfg.Holder, true)
			}
		}
	}
	return dropped, reasons
}

// dropSupersededAt keeps the queue free of superseded head updates after the block at
// position i was taken out: the head update before it (Others aside) is superseded when a
// head update now follows with no block between. Called with l.mu held.
func (l *Lane) dropSupersededAt(i int, dropped []*Slot, reasons []DropReason) ([]*Slot, []DropReason) {
	ordered := func(q *Slot) bool {
		return q.d.Req.Class == engine.ClassNewPayload || q.d.Req.Class == engine.ClassForkchoice
	}
	prev, next := i-1, i
	for prev >= 0 && !ordered(l.queue[prev]) {
		prev--
	}
	for next < len(l.queue) && !ordered(l.queue[next]) {
		next++
	}
	if prev < 0 || next == len(l.queue) {
		return dropped, reasons
	}
	if p := l.queue[prev].d.Req; p.Class != engine.ClassForkchoice || p.HasAttributes || l.queue[next].d.Req.Class != engine.ClassForkchoice {
		return dropped, reasons
	}
	q := l.removeAt(prev)
	q.release(l)
	return append(dropped, q), append(reasons, DropSuperseded)
}

// noteShed counts a block this EL did not get. Called with l.mu held.
func (l *Lane) noteShed(d *Delivery) {
	l.shedBlocks++
	l.shedBytes += uint64(len(d.Body))
	l.episodeBlocks++
	l.episodeBytes += uint64(len(d.Body))
}

// itemOf describes a delivery to the shedding policy.
func itemOf(d *Delivery) backlog.Item {
	switch d.Req.Class {
	case engine.ClassNewPayload:
		return backlog.Item{Kind: backlog.KindNewPayload, Hash: d.Req.Block.Hash, Parent: d.Req.Block.Parent}
	case engine.ClassForkchoice:
		return backlog.Item{Kind: backlog.KindForkchoice, Head: d.Req.Forkchoice.Head,
			Build: d.Req.HasAttributes, BuildTime: d.Req.AttributesTimestamp}
	}
	return backlog.Item{Kind: backlog.KindOther}
}

// firstRefusal records that the guards refused d and reports whether it is the first
// refusal of d's writer term (which is logged). Called with l.mu held.
func (l *Lane) firstRefusal(d *Delivery) bool {
	if d.Term == 0 || d.Term <= l.refusedTerm {
		return false
	}
	l.refusedTerm = d.Term
	return true
}

// logRefusal says, once per writer term, that a new writer's head updates are refused
// (each one is counted as a stale_head drop).
func (l *Lane) logRefusal(d *Delivery, elHead uint64) {
	l.log.Info("new writer behind this execution client: its head updates are refused until its head reaches the EL's",
		"bn", d.BN, "term", d.Term, "head", d.Head.Number, "head_timestamp", d.Head.Timestamp, "el_head_timestamp", elHead)
}

// guardUpdate describes a forkchoiceUpdated to the head guard.
func guardUpdate(d *Delivery) headguard.Update {
	return headguard.Update{Term: d.Term, Known: d.HeadKnown, Timestamp: d.Head.Timestamp}
}

// CountDeduplicated records that a newPayload was not sent to this EL because it already
// had, or was about to get, the same block.
func (l *Lane) CountDeduplicated() {
	l.mu.Lock()
	l.dedup++
	l.mu.Unlock()
}

// Run serves the queue until ctx is done, then fails what is still queued with DropShutdown
// and closes the idle connections to the EL (a later Call opens a new one). It must be
// called once.
func (l *Lane) Run(ctx context.Context) {
	for {
		s, heal := l.next(ctx)
		switch {
		case heal:
			l.heal(ctx)
		case s == nil:
			l.shutdown()
			if l.own {
				l.client.CloseIdleConnections()
			}
			return
		default:
			l.send(ctx, s)
			if l.wantsCatchUp(time.Now()) {
				// Logged here: a heal runs the same catch-up and logs its own line.
				if cu := l.runCatchUp(ctx, nil); cu.Err == "" && (cu.Replayed > 0 || cu.Gap) {
					l.log.Info("execution client caught up", "el_head", cu.ELHead.Number, "replayed", cu.Replayed, "gap", cu.Gap)
				}
			}
		}
		l.mu.Lock()
		l.inFlight = nil
		l.signalIdle()
		l.mu.Unlock()
	}
}

// next pops the oldest slot, waiting for one; nil when ctx is done. heal is true instead
// when the lane is behind and its queue has drained.
func (l *Lane) next(ctx context.Context) (s *Slot, heal bool) {
	for {
		if ctx.Err() != nil {
			return nil, false // what is still queued fails with DropShutdown, never half-sent
		}
		l.mu.Lock()
		if len(l.queue) > 0 {
			s := l.removeAt(0)
			s.markSent(l)
			l.inFlight, l.sentAt = s, time.Now()
			l.mu.Unlock()
			return s, false
		}
		if l.behind || l.lost {
			l.mu.Unlock()
			return nil, true
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-l.wake:
		}
	}
}

// heal brings a lane that is behind, or lost, back to the head: it replays, in parent order
// from the recent blocks, what the EL misses (a catch-up), and leaves the behind state when
// no arrival was refused meanwhile; otherwise it runs again. A failed attempt is retried
// after CatchUpInterval. When the recent blocks do not reach back to the EL's head, the lane
// leaves the behind state all the same and says so: the EL must sync the rest over p2p.
func (l *Lane) heal(ctx context.Context) {
	l.mu.Lock()
	behind := l.behind
	l.mu.Unlock()
	cu, drops := l.tryCatchUp(ctx, nil)
	if cu.Err != "" {
		select {
		case <-ctx.Done():
		case <-time.After(l.cfg.CatchUpInterval):
		}
		return
	}
	if behind {
		l.leaveBehind(cu, drops)
	}
}

// tryCatchUp runs the catch-up of a lane that is behind or lost and notes whether it failed
// (see drained); drops is the count of refused arrivals it started from. A successful one
// finds a lost lane. Called on the lane goroutine.
func (l *Lane) tryCatchUp(ctx context.Context, next *Delivery) (cu CatchUp, drops uint64) {
	l.mu.Lock()
	drops, lost := l.behindDrops, l.lost
	l.mu.Unlock()
	if l.cfg.Replay == nil {
		cu = CatchUp{Gap: true} // nothing to replay from
	} else {
		cu = l.runCatchUp(ctx, next)
	}
	l.mu.Lock()
	l.stuck, l.stuckAt, l.stuckDrops = cu.Err != "", time.Now(), drops
	if cu.Err == "" {
		l.lost = false
	}
	l.signalIdle()
	l.mu.Unlock()
	if lost && cu.Err == "" {
		if cu.Gap {
			l.log.Warn("execution client that did not take a block is further behind than the recent blocks reach: it must sync the rest over p2p",
				"el_head", cu.ELHead.Number)
		} else {
			l.log.Info("execution client that did not take a block has been sent it again", "el_head", cu.ELHead.Number, "replayed", cu.Replayed)
		}
	}
	return cu, drops
}

// leaveBehind ends the behind state unless an arrival was refused since drops was read.
func (l *Lane) leaveBehind(cu CatchUp, drops uint64) {
	l.mu.Lock()
	if l.behindDrops != drops {
		l.mu.Unlock()
		return // more came meanwhile: heal again
	}
	l.behind = false
	l.cfg.Backlog.SetBehind(l.cfg.Holder, false)
	l.heals++
	blocks, bytes, since := l.episodeBlocks, l.episodeBytes, time.Since(l.behindAt)
	l.episodeBlocks, l.episodeBytes = 0, 0
	head := l.sentHead
	l.mu.Unlock()
	if cu.Gap {
		l.log.Warn("execution client could not be healed: it is further behind than the recent blocks reach; it must sync the rest over p2p",
			"el_head", cu.ELHead.Number, "shed_blocks", blocks, "shed_bytes", bytes, "behind_for", since)
		return
	}
	l.log.Info("execution client healed: back at the head", "head", head.Number, "el_head_before", cu.ELHead.Number,
		"replayed", cu.Replayed, "shed_blocks", blocks, "shed_bytes", bytes, "behind_for", since)
}

func (l *Lane) shutdown() {
	l.mu.Lock()
	l.closed = true
	rest := l.queue
	l.queue = nil
	clear(l.parents)
	l.builds = 0
	l.drops[DropShutdown] += uint64(len(rest))
	l.mu.Unlock()
	for _, s := range rest {
		l.completeDropped(s, DropShutdown)
	}
}

// Leftover returns nil when the lane holds nothing: every slot Enqueue made has completed,
// none is queued or in flight, and the lane holds no byte of the backlog budget. Otherwise
// the error says what is left. Tests call it once the lane has drained or Run has returned.
func (l *Lane) Leftover() error {
	l.mu.Lock()
	queued, inFlight := len(l.queue), l.inFlight != nil
	l.mu.Unlock()
	open, held := l.open.Load(), l.cfg.Backlog.Held(l.cfg.Holder)
	if queued == 0 && !inFlight && open == 0 && held == 0 {
		return nil
	}
	return fmt.Errorf("el %s: %d slots not completed (%d queued, in flight: %t), %d backlog bytes held",
		l.cfg.Name, open, queued, inFlight, held)
}

// drained reports whether the lane has nothing it can do: nothing queued or in flight, and
// not behind, or behind an EL that failed the last heal, with nothing arrived since. Called
// with l.mu held.
func (l *Lane) drained() bool {
	return len(l.queue) == 0 && l.inFlight == nil && ((!l.behind && !l.lost) || (l.stuck && l.behindDrops == l.stuckDrops))
}

// signalIdle wakes Drain when the lane has drained. Called with l.mu held.
func (l *Lane) signalIdle() {
	if l.drained() {
		close(l.idle)
		l.idle = make(chan struct{})
	}
}

// Drain waits until the queue is empty, nothing is in flight and the lane is not behind
// (or, behind an EL that does not answer, the last heal failed after every arrival), or
// ctx is done.
func (l *Lane) Drain(ctx context.Context) error {
	return l.waitIdle(ctx, "drain", l.drained)
}

// WaitHealed waits until the lane has drained and is neither behind nor lost: its EL has
// been sent every block (a heal or catch-up included), or ctx is done. Unlike Drain it
// does not return while the EL does not answer.
func (l *Lane) WaitHealed(ctx context.Context) error {
	return l.waitIdle(ctx, "heal", func() bool { return l.drained() && !l.behind && !l.lost })
}

// waitIdle waits until done (called with l.mu held) holds, or ctx is done. done is checked
// each time the lane signals idle (see signalIdle), which every heal or catch-up ends with.
func (l *Lane) waitIdle(ctx context.Context, what string, done func() bool) error {
	for {
		l.mu.Lock()
		if done() {
			l.mu.Unlock()
			return nil
		}
		idle := l.idle
		l.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return fmt.Errorf("%s el %s: %w", what, l.cfg.Name, ctx.Err())
		}
	}
}

// send delivers one queued slot and completes it. A block or head update of a lost lane
// goes only once a catch-up has found the EL (see loseBlock); otherwise it is refused.
func (l *Lane) send(ctx context.Context, s *Slot) {
	if c := s.d.Req.Class; (c == engine.ClassNewPayload || c == engine.ClassForkchoice) && !l.findLost(ctx, s.d) {
		l.refuse(s)
		return
	}
	if s.d.Req.Class == engine.ClassForkchoice && l.cfg.Role != RoleRelay && l.staleAtSend(ctx, s.d) {
		l.completeDropped(s, DropStaleHead)
		return
	}
	s.res = l.deliver(ctx, s.d)
	if s.d.Req.Class == engine.ClassNewPayload && s.res.Err != nil && KindOf(s.res.Err) != KindCanceled {
		l.loseBlock(s.d, s.res.Err)
	}
	if l.cfg.Hooks.OnResult != nil {
		l.cfg.Hooks.OnResult(l, s) // before completing: see Slot.complete
	}
	s.complete(s.res)
}

// loseBlock handles a newPayload the EL did not answer (no connection, a timeout, a broken
// answer): the EL may not have the block, so nothing that builds on it may follow until a
// catch-up has re-sent it. A child would only be SYNCING, and a head update to the block
// would send the EL syncing over p2p (a relay or builder off the chain until it finds
// peers). The lane is lost: before its next block or head update leaves, and as soon as its
// queue is empty, it runs a catch-up (see send and heal). Called on the lane goroutine.
func (l *Lane) loseBlock(d *Delivery, err error) {
	l.mu.Lock()
	was := l.lost
	l.lost, l.stuck = true, false
	l.mu.Unlock()
	if !was {
		l.log.Warn("execution client did not take a block: nothing that builds on it is sent until a catch-up from the recent blocks has sent it again",
			"block", d.Req.Block.Number, "hash", d.Req.Block.Hash.String(), "error", err)
	}
}

// findLost runs the catch-up a lost lane needs before a block or head update may leave, and
// reports whether the lane is found. After a failed catch-up it tries again only once
// CatchUpInterval has passed: an EL that does not answer costs one try per interval, not
// one per request. Called on the lane goroutine.
func (l *Lane) findLost(ctx context.Context, next *Delivery) bool {
	l.mu.Lock()
	// From the end of the failed try: a hung EL's head query takes its whole timeout.
	lost, wait := l.lost, l.stuck && time.Since(l.stuckAt) < l.cfg.CatchUpInterval
	l.mu.Unlock()
	switch {
	case !lost:
		return true
	case wait:
		return false
	}
	cu, _ := l.tryCatchUp(ctx, next)
	return cu.Err == ""
}

// refuse completes a queued block or head update unsent, because the lane is lost and its
// EL does not answer: a catch-up sends it once the EL does.
func (l *Lane) refuse(s *Slot) {
	l.mu.Lock()
	l.behindDrops++
	l.drops[DropBehind]++
	if s.d.Req.Class == engine.ClassNewPayload {
		l.shedBlocks++
		l.shedBytes += uint64(len(s.d.Body))
		if l.behind { // else not part of a behind episode's count
			l.episodeBlocks++
			l.episodeBytes += uint64(len(s.d.Body))
		}
	}
	l.mu.Unlock()
	l.completeDropped(s, DropBehind)
}

// completeDropped reports slot s, never sent, to the OnDrop hook and completes it as dropped
// for reason r (counted by the caller). Called without l.mu.
func (l *Lane) completeDropped(s *Slot, r DropReason) {
	if l.cfg.Hooks.OnDrop != nil {
		l.cfg.Hooks.OnDrop(l, s.d, r)
	}
	s.complete(Result{Err: &DeliveryError{Kind: KindDropped, Drop: r}})
}

// staleAtSend is the head guard's second look, just before a forkchoiceUpdated leaves,
// against what this EL was sent: the first update after the lane starts learns the EL's own
// head (so a restarted proxy cannot move an EL back), and a head the proxy never saw is
// looked up on the EL, unless the update comes from the writer the EL follows, which passes
// whatever its head.
func (l *Lane) staleAtSend(ctx context.Context, d *Delivery) bool {
	l.mu.Lock()
	asked := l.headAsked
	l.headAsked = true
	l.mu.Unlock()
	if !asked {
		if b, found, err := l.queryBlock(ctx, headRequest); err == nil && found {
			l.raiseSentHead(b)
		}
	}
	u := guardUpdate(d)
	l.mu.Lock()
	owner := u.Term != 0 && u.Term == l.sentGuard.Owner()
	l.mu.Unlock()
	if !u.Known && !owner {
		if b, found, err := l.queryBlock(ctx, blockRequest(d.Req.Forkchoice.Head)); err == nil && found {
			// An EL that does not know the block either is being asked to sync to
			// something new: that is forwarded.
			u.Known, u.Timestamp = true, b.Timestamp
		}
	}
	l.mu.Lock()
	if l.sentGuard.Admit(u) != headguard.Stale {
		l.mu.Unlock()
		return false
	}
	l.drops[DropStaleHead]++
	refused, elHead := l.firstRefusal(d), l.sentGuard.Head()
	l.mu.Unlock()
	if refused {
		l.logRefusal(d, elHead)
	}
	return true
}

// Call sends d to the EL at once, outside the queue, and waits for the answer. It is for
// reads, which need no ordering and must not wait behind a slow newPayload.
func (l *Lane) Call(ctx context.Context, d *Delivery) Result {
	return l.deliver(ctx, d)
}

// deliver sends d under the method's budget and records the outcome.
func (l *Lane) deliver(ctx context.Context, d *Delivery) Result {
	return l.deliverWithin(ctx, d, l.cfg.Budget(d.Req.Method))
}

// deliverWithin sends d, waiting at most budget for the answer, and records the outcome.
func (l *Lane) deliverWithin(ctx context.Context, d *Delivery, budget time.Duration) Result {
	body := d.Body
	if l.cfg.Role == RoleSyncOnly && d.Req.Class == engine.ClassForkchoice && d.Req.HasAttributes {
		if stripped, err := engine.WithoutAttributes(body); err == nil {
			body = stripped
		}
	}
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	start := time.Now()
	res := Result{Sent: start}
	data, err := l.roundTrip(cctx, d, body)
	res.Latency = time.Since(start)
	if err == nil {
		resp, perr := engine.InspectResponse(d.Req.Class, data)
		if perr != nil {
			err = &DeliveryError{Kind: KindBadResponse, Err: perr}
		} else {
			res.Body, res.Resp = data, resp
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			err = &DeliveryError{Kind: KindCanceled, Err: ctx.Err()}
		}
		res.Err = err
	}
	l.record(d, res)
	return res
}

// roundTrip posts body and returns the 200 answer's body.
func (l *Lane) roundTrip(ctx context.Context, d *Delivery, body []byte) ([]byte, error) {
	rb := newSentBody(d, body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.URL, rb)
	if err != nil {
		rb.Close()
		return nil, &DeliveryError{Kind: KindTransport, Err: err}
	}
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return newSentBody(d, body), nil }
	req.Header.Set("Content-Type", "application/json")
	if l.cfg.UserAgent != "" {
		req.Header.Set("User-Agent", l.cfg.UserAgent)
	}
	if l.cfg.Signer != nil {
		req.Header.Set("Authorization", l.cfg.Signer.Authorization())
	}
	if l.cfg.Role == RoleRelay {
		via := l.cfg.Instance
		if d.Via != "" {
			via = d.Via + "," + l.cfg.Instance
		}
		req.Header.Set(HeaderVia, via)
		req.Header.Set(HeaderBN, d.BN)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, classify(err)
	}
	defer resp.Body.Close()
	limit := l.cfg.MaxResponseBytes
	if resp.StatusCode != http.StatusOK {
		// Keep a short excerpt: geth explains a 401 in plain text ("stale token").
		excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		var reason error
		if t := bytes.TrimSpace(excerpt); len(t) > 0 {
			reason = errors.New(string(t))
		}
		return nil, &DeliveryError{Kind: KindHTTPStatus, Status: resp.StatusCode, Err: reason}
	}
	if resp.ContentLength > limit {
		return nil, &DeliveryError{Kind: KindBadResponse, Err: fmt.Errorf("answer of %d bytes is over the %d-byte limit", resp.ContentLength, limit)}
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, classify(err)
	}
	if n > limit {
		return nil, &DeliveryError{Kind: KindBadResponse, Err: fmt.Errorf("answer is over the %d-byte limit", limit)}
	}
	return buf.Bytes(), nil
}

// sentBody is a request body as the HTTP transport reads it. The transport may go on
// writing a body after the answer came back (an EL refuses a bad token, or a body over its
// limit, from the headers alone) and closes it only when it is done, perhaps after Do
// returned. The body holds its delivery until then, so that a pooled body does not go back
// to the pool, to be poisoned or reused, while the transport still reads it.
type sentBody struct {
	bytes.Reader
	d    *Delivery
	once sync.Once
}

// newSentBody reads b, which d's body holds, and retains d until the transport closes it.
func newSentBody(d *Delivery, b []byte) *sentBody {
	d.Retain()
	s := &sentBody{d: d}
	s.Reset(b)
	return s
}

// Close releases the delivery, once.
func (s *sentBody) Close() error {
	s.once.Do(s.d.Release)
	return nil
}

// classify turns a transport error into a DeliveryError.
func classify(err error) error {
	var de *DeliveryError
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &DeliveryError{Kind: KindTimeout, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &DeliveryError{Kind: KindTimeout, Err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return &DeliveryError{Kind: KindConnect, Err: err}
	}
	return &DeliveryError{Kind: KindTransport, Err: err}
}

// record updates the lane's view of the EL after a send and reports state changes. Only
// Engine traffic (newPayload, forkchoiceUpdated, getPayload) tells the EL's state: a read
// that times out (a wide eth_getLogs, a heavy eth_call) or fails says nothing about whether
// the EL keeps up with the chain, and a Down primary would no longer be waited for. A read
// still counts as delivered or failed.
func (l *Lane) record(d *Delivery, res Result) {
	now := time.Now()
	next := StateUp
	var de *DeliveryError
	if res.Err != nil {
		next = StateDown
		if errors.As(res.Err, &de) && de.Kind == KindHTTPStatus && de.Status == http.StatusUnauthorized {
			next = StateUnauthorized
		}
		if de != nil && de.Kind == KindCanceled {
			return // shutting down: says nothing about the EL
		}
	}
	engineReq := engineTraffic(d.Req.Class)
	l.mu.Lock()
	if res.Err != nil {
		l.failed++
		l.lastErr, l.lastErrAt = res.Err.Error(), now
		if !engineReq {
			l.lastErr = d.Req.Method + ": " + l.lastErr
		}
	} else {
		l.delivered++
		l.lastOKAt = now
	}
	if !engineReq {
		l.mu.Unlock()
		return
	}
	prev := l.state
	l.state = next
	l.lastLat = res.Latency
	if next == StateUp && prev != StateUp {
		l.needCatchUp = true // back, or first contact: it may have missed blocks
	}
	if next == StateUp && res.Resp.Status == engine.StatusSyncing &&
		(d.Req.Class == engine.ClassNewPayload || d.Req.Class == engine.ClassForkchoice) {
		l.needCatchUp = true // it lacks a parent or the head
	}
	if res.Err == nil {
		if res.Resp.Status != "" {
			l.status = res.Resp.Status
		}
		switch {
		case d.Req.Class == engine.ClassNewPayload && res.Resp.Status == engine.StatusValid:
			if d.Req.Block.Number >= l.lastValid.Number {
				l.lastValid = Block{Hash: d.Req.Block.Hash, Number: d.Req.Block.Number, Timestamp: d.Req.Block.Timestamp}
			}
		case d.Req.Class == engine.ClassForkchoice && res.Resp.Status == engine.StatusValid:
			l.head = Block{Hash: d.Req.Forkchoice.Head}
			if d.HeadKnown {
				l.head = d.Head
			}
		}
	}
	l.mu.Unlock()

	if prev == next {
		return
	}
	switch next {
	case StateUp:
		l.log.Info("execution client up", "latency", res.Latency)
	case StateUnauthorized:
		l.log.Error("execution client rejects our token: check this EL's jwt secret and the clock", "error", res.Err)
	case StateDown:
		l.log.Warn("execution client down", "error", res.Err)
	}
	if l.cfg.Hooks.OnState != nil {
		l.cfg.Hooks.OnState(l, prev, next, res.Err)
	}
}

// engineTraffic reports whether requests of class c tell the EL's health.
func engineTraffic(c engine.Class) bool {
	return c == engine.ClassNewPayload || c == engine.ClassForkchoice || c == engine.ClassGetPayload
}

// Stats returns a snapshot of the lane.
func (l *Lane) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	drops := make(map[DropReason]uint64, len(l.drops))
	for k, v := range l.drops {
		drops[k] = v
	}
	return Stats{
		Name: l.cfg.Name, URL: l.cfg.URL, Role: l.cfg.Role, State: l.state,
		QueueDepth: len(l.queue), InFlight: l.inFlight != nil,
		Delivered: l.delivered, Failed: l.failed, Drops: drops, Deduplicated: l.dedup,
		LastStatus: l.status, LastError: l.lastErr, LastErrorAt: l.lastErrAt, LastOKAt: l.lastOKAt,
		LastLatency: l.lastLat, Head: l.head, SentHead: l.sentHead, LastValid: l.lastValid,
		CatchUp: l.catchUp, CatchUps: l.catchUps,
		Behind: l.behind, BehindSince: l.behindAt, Lost: l.lost, ShedBlocks: l.shedBlocks, ShedBytes: l.shedBytes, Heals: l.heals,
		HeldBytes: l.cfg.Backlog.Held(l.cfg.Holder),
	}
}
