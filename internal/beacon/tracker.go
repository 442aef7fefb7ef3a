package beacon

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/throttle"
)

// Observation is what one Engine API request showed about the beacon node that sent it.
// Every request counts as a sign of life, whatever it carries (the zero Observation is fine
// for exchangeCapabilities, getPayload and the like).
type Observation struct {
	// PayloadTimestamp is the timestamp of the payload of an engine_newPayload request
	// (0 for other methods). It counts as the node's head only until the node sends its
	// first forkchoiceUpdated.
	PayloadTimestamp uint64

	// HeadTimestamp is the timestamp of the head block named by an engine_forkchoiceUpdated
	// request when the proxy could resolve the head hash (see [BlockIndex]), 0 when it could
	// not. Ignored unless HeadKnown is set.
	HeadTimestamp uint64

	// HeadKnown reports that the request named a fork-choice head, i.e. it was a
	// forkchoiceUpdated: set it for every forkchoiceUpdated, resolved or not. A resolved
	// head (HeadTimestamp > 0) becomes the node's head, even if it is older than the previous
	// one. An unresolved head (HeadTimestamp 0) leaves the head where it was. Either way the
	// node's newPayload timestamps stop counting as its head.
	HeadKnown bool

	// HeadHash is the head block's hash named by a forkchoiceUpdated (shown in status only).
	HeadHash [32]byte
}

// External is a beacon node's health as its beacon REST API reports it
// (/eth/v1/node/syncing and reachability). It is optional; a poller sets it with
// [Tracker.SetExternal] and is responsible for keeping it fresh: the tracker applies the
// latest value until it is replaced.
type External struct {
	// Known reports that the fields below hold a poll result; when false, External is
	// ignored for health.
	Known bool
	// Offline reports that the REST API could not be reached.
	Offline bool
	// Syncing is the API's is_syncing.
	Syncing bool
	// Optimistic is the API's is_optimistic.
	Optimistic bool
	// ELOffline is the API's el_offline.
	ELOffline bool
	// HeadSlot is the API's head_slot. With the genesis time known ([Config.Genesis]) and
	// the API reachable (not Offline), the slot's start time counts as the node's head when it
	// is ahead of the head the node showed over the Engine API (see doc.go); otherwise it is
	// only shown.
	HeadSlot uint64
	// SyncDistance is the API's sync_distance. Shown, not used: Syncing is the node's own
	// verdict on it.
	SyncDistance uint64
	// At is when the poll was made.
	At time.Time
}

// Healthy reports whether e allows the node to be healthy: unknown, or known and neither
// offline, syncing, optimistic nor without its execution client.
func (e External) Healthy() bool {
	return !e.Known || !(e.Offline || e.Syncing || e.Optimistic || e.ELOffline)
}

// BN is a read-only view of one beacon node, as returned by [Tracker.Snapshot].
type BN struct {
	// Name identifies the node.
	Name string
	// FirstSeen is the time of its first Engine API request (zero if it has only been
	// reported by [Tracker.SetExternal]).
	FirstSeen time.Time
	// LastSeen is the time of its latest Engine API request.
	LastSeen time.Time
	// Requests counts its Engine API requests.
	Requests uint64
	// HeadTimestamp is the head timestamp election uses (0 = none yet); see doc.go.
	HeadTimestamp uint64
	// HeadHash is the head block named by its latest forkchoiceUpdated (zero before one).
	HeadHash [32]byte
	// HeadSlot is the slot of HeadTimestamp (0 when the genesis time is unknown or there is
	// no head).
	HeadSlot uint64
	// HeadFromBeaconAPI reports that HeadTimestamp comes from the beacon REST API's head
	// slot ([External.HeadSlot]), which is ahead of what the node showed over the Engine API.
	HeadFromBeaconAPI bool
	// HeadFromForkchoice reports that HeadTimestamp comes from forkchoiceUpdated, not
	// from newPayload (which is used only before the node's first forkchoiceUpdated).
	HeadFromForkchoice bool
	// MaxPayloadTimestamp is the highest newPayload timestamp it sent.
	MaxPayloadTimestamp uint64
	// Healthy reports whether the node passes every health rule now.
	Healthy bool
	// Unhealthy is why it is not healthy ("" if healthy).
	Unhealthy Reason
	// Writer reports whether it holds the writer role.
	Writer bool
	// LagSlots is how far its head trails the wall clock, in slots (0 without a head, and
	// for a head in the future).
	LagSlots float64
	// External is the latest value given to [Tracker.SetExternal].
	External External
	// Configured reports that the node was given with --bn ([Config.Configured]): it keeps
	// its place in the table.
	Configured bool
}

// Table describes the tracker's table of beacon nodes and its bounds (see "The table" in
// doc.go).
type Table struct {
	// Nodes is how many nodes the table holds: Configured plus Others.
	Nodes int
	// Configured is how many of them were given with --bn; they are never forgotten.
	Configured int
	// Others is how many of them were not; at most MaxOthers.
	Others int
	// MaxOthers is [Config.MaxOthers].
	MaxOthers int
	// IdleExpiry is [Config.IdleExpiry].
	IdleExpiry time.Duration
	// Refused counts the requests of new nodes that found the table full of others, none
	// of them silent: each was served, but its node was not added.
	Refused uint64
	// Expired counts the others forgotten after IdleExpiry without a request.
	Expired uint64
	// Evicted counts the silent others forgotten to make room for a new node.
	Evicted uint64
}

// standing ranks nodes for election: the writer comes from the best standing present.
type standing uint8

const (
	standingHealthy standing = iota // passes every rule
	standingTalking                 // unhealthy, but sending requests
	standingSilent                  // sending nothing
)

func standingOf(r Reason) standing {
	switch r {
	case "":
		return standingHealthy
	case ReasonSilent:
		return standingSilent
	default:
		return standingTalking
	}
}

// node is the tracker's record of one beacon node. Guarded by Tracker.mu.
type node struct {
	name                string
	firstSeen, lastSeen time.Time
	lastNano            int64 // lastSeen in Unix nanoseconds, for cheap comparisons
	requests            uint64
	fcuSeen             bool     // sent at least one forkchoiceUpdated
	fcuNano             int64    // when its latest forkchoiceUpdated came (Unix ns; 0 = none)
	fcuRoundNano        int64    // its latest forkchoiceUpdated in an earlier round (see fcuRound)
	fcuHead             uint64   // latest resolved forkchoiceUpdated head timestamp
	movedBack           bool     // the request being evaluated moved fcuHead back (see Observe)
	fcuHash             [32]byte // and its hash (status only)
	maxPayload          uint64
	ext                 External
	extHead             uint64 // start of ext.HeadSlot when it may count as the head (0 = not)
	configured          bool   // given with --bn: never forgotten
	activeNano          int64  // its latest request or SetExternal (Unix ns), for expiry

	// Set by evaluate.
	unhealthy Reason
	standing  standing
	reported  bool   // health has been logged once
	logged    Reason // the health last logged
}

// head returns the head timestamp election uses (0 = none).
func (n *node) head() uint64 {
	return max(n.engineHead(), n.extHead)
}

// engineHead returns the head the node showed over the Engine API (0 = none).
func (n *node) engineHead() uint64 {
	if n.fcuSeen {
		return n.fcuHead
	}
	return n.maxPayload
}

// healthEvent is a health transition, or a change of the table, to log after the lock is
// released.
type healthEvent struct {
	bn       string
	from, to Reason
	first    bool
	removed  bool
	gone     forgotten     // set when the node left the table on its own (removed is set too)
	idle     time.Duration // how long a forgotten node had been idle
	refused  uint64        // set for a refusal: Table.Refused after it
}

// forgotten says why a node that is not configured left the table.
type forgotten uint8

const (
	notForgotten forgotten = iota
	forgottenExpired
	forgottenEvicted
)

// refusalLogEvery spaces the warnings about a full table.
const refusalLogEvery = time.Minute

// Tracker records what every beacon node shows and elects the writer. It is safe for
// concurrent use. It starts no goroutine and no timer: the writer is re-evaluated at the
// tracker's clock on every call of Observe, IsWriter, Writer, SetExternal, Remove, Snapshot
// and Table.
type Tracker struct {
	cfg Config
	clk clock.Clock
	log *slog.Logger

	mu     sync.Mutex
	nodes  map[string]*node
	order  []*node // nodes that sent a request, by first seen, then name
	writer *node
	// fcuRound is the latest fcuRoundNano of any node, set by evaluate: some node sent a
	// forkchoiceUpdated then and another one more than half a slot later.
	fcuRound int64
	// aheadSince is when a candidate's head got ahead of the writer's by more than
	// PeerMargin (Unix ns; 0 = none is). Set and cleared by evaluate.
	aheadSince int64
	hooks      []func(Change) // copy on write
	events     []healthEvent  // found by the current evaluation; reused

	// The table's bounds (see doc.go). configured holds Config.Configured (cfg's slice is
	// not read again); others counts the nodes in the table that are not configured.
	configured map[string]bool
	others     int
	// sweptNano is when expired nodes were last looked for (Unix ns).
	sweptNano                 int64
	refused, expired, evicted uint64
	refusedLog                *throttle.Every // spaces the warnings about refusals

	// notifyMu keeps log lines and hook calls in the order the changes were decided. It is
	// taken before mu is released.
	notifyMu sync.Mutex
}

// NewTracker returns a tracker with no beacon nodes. cfg must pass [Config.Validate]; clk
// is required; a nil log discards.
func NewTracker(cfg Config, clk clock.Clock, log *slog.Logger) (*Tracker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new beacon tracker: %w", err)
	}
	if clk == nil {
		return nil, ErrNilClock
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxOthers == 0 {
		cfg.MaxOthers = DefaultMaxOthers
	}
	if cfg.IdleExpiry == 0 {
		cfg.IdleExpiry = max(DefaultIdleExpiry, cfg.SilenceTimeout)
	}
	configured := make(map[string]bool, len(cfg.Configured))
	for _, n := range cfg.Configured {
		configured[n] = true
	}
	return &Tracker{
		cfg:        cfg,
		clk:        clk,
		log:        log.With("component", "beacon"),
		nodes:      make(map[string]*node),
		configured: configured,
		refusedLog: throttle.NewEvery(refusalLogEvery),
	}, nil
}

// Observe records one Engine API request from bn at the tracker's clock, re-evaluates the
// writer and returns the writer after this request, and the change if this call caused one
// (nil otherwise). A change is logged once at Info and passed to the [Tracker.OnChange]
// hooks. An empty bn is not recorded.
func (t *Tracker) Observe(bn string, o Observation) (writer string, change *Change) {
	t.mu.Lock()
	now := t.clk.Now()
	var n *node
	if bn != "" {
		n = t.record(bn, o, now) // nil: refused a place in the table
	}
	change = t.evaluate(now)
	if n != nil {
		n.movedBack = false // it holds for the evaluation of this request only
	}
	writer = t.writerName()
	t.finish(change)
	return writer, change
}

// record applies one request of bn to its node, creating it if there is room, and returns
// it; nil when the table had no room for it. Called with t.mu held.
func (t *Tracker) record(bn string, o Observation, now time.Time) *node {
	nano := now.UnixNano()
	n := t.nodes[bn]
	if n == nil {
		if n = t.add(bn, nano); n == nil {
			return nil
		}
	}
	if n.requests == 0 {
		n.firstSeen = now
		t.insert(n)
	}
	n.requests++
	n.lastSeen, n.lastNano, n.activeNano = now, nano, nano
	if o.PayloadTimestamp > n.maxPayload {
		n.maxPayload = o.PayloadTimestamp
	}
	if !o.HeadKnown {
		return n
	}
	if n.fcuNano != 0 && time.Duration(nano-n.fcuNano) > t.cfg.SlotDuration/2 {
		n.fcuRoundNano = n.fcuNano
	}
	n.fcuSeen, n.fcuNano, n.fcuHash = true, nano, o.HeadHash
	if o.HeadTimestamp != 0 {
		n.movedBack = o.HeadTimestamp < n.fcuHead
		n.fcuHead = o.HeadTimestamp
	}
	return n
}

// IsWriter reports whether bn holds the writer role, after re-evaluating at the tracker's
// clock (so a silent writer loses the role at the first call after the silence timeout).
func (t *Tracker) IsWriter(bn string) bool {
	t.mu.Lock()
	change := t.evaluate(t.clk.Now())
	is := t.writer != nil && t.writer.name == bn
	t.finish(change)
	return is
}

// Writer returns the writer after re-evaluating at the tracker's clock. ok is false only
// when no beacon node has sent a request (or all were removed): once one has, there is
// always a writer.
func (t *Tracker) Writer() (name string, ok bool) {
	t.mu.Lock()
	change := t.evaluate(t.clk.Now())
	name, ok = t.writerName(), t.writer != nil
	t.finish(change)
	return name, ok
}

// SetExternal records bn's health as its beacon REST API reports it and re-evaluates.
// A node known only from SetExternal is shown by Snapshot but cannot be elected before its
// first Engine API request.
func (t *Tracker) SetExternal(bn string, e External) (change *Change) {
	t.mu.Lock()
	now := t.clk.Now()
	if bn != "" {
		n := t.nodes[bn]
		if n == nil {
			n = t.add(bn, now.UnixNano())
		}
		if n != nil {
			n.ext = e
			n.extHead = 0
			n.activeNano = now.UnixNano()
			if e.Known && !e.Offline {
				n.extHead, _ = t.cfg.SlotTime(e.HeadSlot)
			}
		}
	}
	change = t.evaluate(now)
	t.finish(change)
	return change
}

// Remove forgets bn. If it was the writer the role moves on with [ReasonRemoved] (to ""
// when it was the last node). Removing an unknown node does nothing.
func (t *Tracker) Remove(bn string) (change *Change) {
	t.mu.Lock()
	n := t.nodes[bn]
	if n == nil {
		t.mu.Unlock()
		return nil
	}
	now := t.clk.Now()
	t.drop(n)
	wasWriter := t.writer == n
	if wasWriter {
		t.writer = nil
	}
	change = t.evaluate(now)
	t.events = append(t.events, healthEvent{bn: bn, removed: true})
	if wasWriter {
		if change == nil {
			change = &Change{From: bn, Reason: ReasonRemoved, At: now}
		} else {
			change.From, change.Reason = bn, ReasonRemoved
		}
	}
	t.finish(change)
	return change
}

// Snapshot re-evaluates and returns a copy of every node's state, sorted by name.
func (t *Tracker) Snapshot() []BN {
	t.mu.Lock()
	now := t.clk.Now()
	change := t.evaluate(now)
	out := make([]BN, 0, len(t.nodes))
	for _, n := range t.nodes {
		r := t.health(n, now.UnixNano())
		h := n.head()
		b := BN{
			Name:                n.name,
			FirstSeen:           n.firstSeen,
			LastSeen:            n.lastSeen,
			Requests:            n.requests,
			HeadTimestamp:       h,
			HeadHash:            n.fcuHash,
			HeadFromBeaconAPI:   n.extHead > n.engineHead(),
			HeadFromForkchoice:  n.fcuSeen,
			MaxPayloadTimestamp: n.maxPayload,
			Healthy:             r == "",
			Unhealthy:           r,
			Writer:              n == t.writer,
			External:            n.ext,
			Configured:          n.configured,
		}
		if h != 0 {
			b.LagSlots = float64(wallLag(now.UnixNano(), h)) / float64(t.cfg.SlotDuration)
			b.HeadSlot, _ = t.cfg.SlotAt(h)
		}
		out = append(out, b)
	}
	t.finish(change)
	slices.SortFunc(out, func(a, b BN) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Table describes the table of beacon nodes and its bounds, after forgetting the nodes
// idle for longer than IdleExpiry.
func (t *Tracker) Table() Table {
	t.mu.Lock()
	change := t.evaluate(t.clk.Now())
	tb := Table{
		Nodes:      len(t.nodes),
		Configured: len(t.nodes) - t.others,
		Others:     t.others,
		MaxOthers:  t.cfg.MaxOthers,
		IdleExpiry: t.cfg.IdleExpiry,
		Refused:    t.refused,
		Expired:    t.expired,
		Evicted:    t.evicted,
	}
	t.finish(change)
	return tb
}

// add creates bn's node at now (Unix ns) when it is configured or there is room for one
// more other, making room by evicting the longest-idle silent other when the table is
// full, and returns it; nil, counted as a refusal, when every other still talks (or is the
// writer). Called with t.mu held.
func (t *Tracker) add(bn string, now int64) *node {
	configured := t.configured[bn]
	if !configured && t.others >= t.cfg.MaxOthers {
		t.sweep(now)
	}
	if !configured && t.others >= t.cfg.MaxOthers {
		var oldest *node
		for _, n := range t.nodes {
			if !n.configured && n != t.writer && (oldest == nil || n.activeNano < oldest.activeNano) {
				oldest = n
			}
		}
		if oldest == nil || time.Duration(now-oldest.activeNano) <= t.cfg.SilenceTimeout {
			t.refused++
			if t.refusedLog.Allow(time.Unix(0, now)) {
				t.events = append(t.events, healthEvent{bn: bn, refused: t.refused})
			}
			return nil
		}
		t.forget(oldest, forgottenEvicted, now)
	}
	n := &node{name: bn, configured: configured, activeNano: now}
	t.nodes[bn] = n
	if !configured {
		t.others++
	}
	return n
}

// sweep forgets the others idle for longer than IdleExpiry, except the writer. Called with
// t.mu held; evaluate calls it every IdleExpiry/8, so a node is forgotten at most an eighth
// of IdleExpiry late.
func (t *Tracker) sweep(now int64) {
	t.sweptNano = now
	if t.others == 0 {
		return
	}
	for _, n := range t.nodes {
		if !n.configured && n != t.writer && time.Duration(now-n.activeNano) > t.cfg.IdleExpiry {
			t.forget(n, forgottenExpired, now)
		}
	}
}

// forget takes the other n out of the table for the given reason. Called with t.mu held.
func (t *Tracker) forget(n *node, why forgotten, now int64) {
	t.drop(n)
	if why == forgottenExpired {
		t.expired++
	} else {
		t.evicted++
	}
	t.events = append(t.events, healthEvent{bn: n.name, removed: true, gone: why, idle: time.Duration(now - n.activeNano)})
}

// drop takes n out of the table's map, order and count. Called with t.mu held.
func (t *Tracker) drop(n *node) {
	delete(t.nodes, n.name)
	if i := slices.Index(t.order, n); i >= 0 {
		t.order = slices.Delete(t.order, i, i+1)
	}
	if !n.configured {
		t.others--
	}
}

// OnChange registers f to be called with every change of writer (nil is ignored). Hooks
// are called one at a time, in the order the changes happened, after the tracker's lock is
// released but while later changes wait: f must return quickly and must not call the
// Tracker (a call that changed the writer would deadlock).
func (t *Tracker) OnChange(f func(Change)) {
	if f == nil {
		return
	}
	t.mu.Lock()
	t.hooks = append(slices.Clip(t.hooks), f)
	t.mu.Unlock()
}

// insert adds a first-seen node to t.order, kept sorted by first seen, then name.
func (t *Tracker) insert(n *node) {
	i, _ := slices.BinarySearchFunc(t.order, n, func(a, b *node) int {
		if c := a.firstSeen.Compare(b.firstSeen); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	t.order = slices.Insert(t.order, i, n)
}

func (t *Tracker) writerName() string {
	if t.writer == nil {
		return ""
	}
	return t.writer.name
}

// health returns why n is unhealthy at now (Unix nanoseconds), "" if it is healthy. The
// first rule that fails is reported, in this order: silent, external, no forkchoiceUpdated,
// no head, behind wall clock. t.fcuRound must be current (see evaluate).
func (t *Tracker) health(n *node, now int64) Reason {
	if n.requests == 0 || time.Duration(now-n.lastNano) > t.cfg.SilenceTimeout {
		return ReasonSilent
	}
	if !n.ext.Healthy() {
		return ReasonExternal
	}
	if t.fcuSilent(n, now) {
		return ReasonNoForkchoice
	}
	h := n.head()
	if h == 0 {
		return ReasonNoHead
	}
	if t.cfg.MaxWallLag > 0 && wallLag(now, h) > t.cfg.MaxWallLag {
		return ReasonWallLag
	}
	return ""
}

// fcuSilent reports whether n has sent no forkchoiceUpdated (since its first request, if it
// never sent one) for longer than SilenceTimeout, while other nodes kept sending them: some
// node sent one more than half a slot after n's last and another one later still, in a
// later round. Two rounds, not one, so that after slots with no fork-choice change, when
// every node is quiet, the first node to announce the next head does not make the others
// look silent. n itself never qualifies: its fcuRoundNano is before its own last one.
func (t *Tracker) fcuSilent(n *node, now int64) bool {
	last := n.fcuNano
	if last == 0 {
		last = n.firstSeen.UnixNano()
	}
	return time.Duration(now-last) > t.cfg.SilenceTimeout &&
		time.Duration(t.fcuRound-last) > t.cfg.SlotDuration/2
}

// evaluate applies the election rules at now and returns the change, if any. It records
// health transitions in t.events. Called with t.mu held; allocates only on a change.
//
// The candidates are the nodes of the best standing present (healthy, else unhealthy but
// talking, else silent). The writer keeps the role while it is a candidate and no
// candidate's head has been ahead of its own by more than PeerMargin for longer than half a
// slot (at once if the writer's own forkchoiceUpdated, the request being evaluated, moved
// its head back behind it); otherwise the
// role goes to the candidate with the highest head (ties: first seen, then name).
func (t *Tracker) evaluate(now time.Time) *Change {
	best := standingSilent
	nowNano := now.UnixNano()
	if time.Duration(nowNano-t.sweptNano) >= t.cfg.IdleExpiry/8 {
		t.sweep(nowNano)
	}
	t.fcuRound = 0
	for _, n := range t.order {
		t.fcuRound = max(t.fcuRound, n.fcuRoundNano)
	}
	for _, n := range t.order {
		r := t.health(n, nowNano)
		n.unhealthy, n.standing = r, standingOf(r)
		best = min(best, n.standing)
		if !n.reported || n.logged != r {
			t.events = append(t.events, healthEvent{bn: n.name, from: n.logged, to: r, first: !n.reported})
			n.reported, n.logged = true, r
		}
	}
	var top *node
	for _, n := range t.order {
		if n.standing == best && (top == nil || n.head() > top.head()) {
			top = n
		}
	}
	w := t.writer
	var reason Reason
	switch {
	case top == nil: // no node
		return nil
	case w == nil:
		reason = ReasonFirst
	case w.standing == best:
		if !aheadBy(top.head(), w.head(), t.cfg.PeerMargin) {
			t.aheadSince = 0
			return nil
		}
		if t.aheadSince == 0 {
			t.aheadSince = nowNano
		}
		if !w.movedBack && time.Duration(nowNano-t.aheadSince) <= t.cfg.SlotDuration/2 {
			return nil // the writer may still be importing the block the peer announced
		}
		reason = ReasonPeerAhead
	default:
		reason = w.unhealthy
	}
	t.writer, t.aheadSince = top, 0
	return &Change{From: w.nameOrEmpty(), To: top.name, Reason: reason, At: now}
}

func (n *node) nameOrEmpty() string {
	if n == nil {
		return ""
	}
	return n.name
}

// finish releases t.mu, then logs the health transitions and the change found by the
// last evaluation and calls the hooks, in order with other calls' notifications.
func (t *Tracker) finish(change *Change) {
	if change == nil && len(t.events) == 0 {
		t.mu.Unlock()
		return
	}
	events := slices.Clone(t.events)
	t.events = t.events[:0]
	hooks := t.hooks
	var toHead uint64
	if t.writer != nil {
		toHead = t.writer.head()
	}
	t.notifyMu.Lock()
	t.mu.Unlock()
	defer t.notifyMu.Unlock()
	for _, e := range events {
		switch {
		case e.refused > 0:
			t.log.Warn("beacon node table full: a new node's requests are served but it is not tracked and cannot be elected; list the beacon nodes you run with --bn",
				"bn", e.bn, "others", t.cfg.MaxOthers, "refused_total", e.refused, "next_warning_in", refusalLogEvery)
		case e.gone == forgottenExpired:
			t.log.Info("beacon node forgotten: idle too long", "bn", e.bn, "idle", e.idle.Round(time.Second), "idle_expiry", t.cfg.IdleExpiry)
		case e.gone == forgottenEvicted:
			t.log.Info("beacon node forgotten: silent, its place given to a new node", "bn", e.bn, "idle", e.idle.Round(time.Millisecond))
		case e.removed:
			t.log.Info("beacon node removed", "bn", e.bn)
		case e.first && e.to == "":
			t.log.Info("beacon node seen", "bn", e.bn, "healthy", true)
		case e.first:
			t.log.Info("beacon node seen", "bn", e.bn, "healthy", false, "reason", e.to.String())
		case e.to == "":
			t.log.Info("beacon node healthy", "bn", e.bn, "was", e.from.String())
		default:
			t.log.Info("beacon node unhealthy", "bn", e.bn, "reason", e.to.String())
		}
	}
	if change == nil {
		return
	}
	t.log.Info("writer changed", "from", change.From, "to", change.To,
		"reason", change.Reason.String(), "head_timestamp", toHead)
	for _, f := range hooks {
		f(*change)
	}
}

// maxTimestamp bounds the timestamps used in time arithmetic (2^33 s is the year 2242), so
// that nonsense values cannot overflow.
const maxTimestamp = 1 << 33

// wallLag returns how long ago timestamp ts (Unix seconds) was at now (Unix nanoseconds);
// 0 if in the future.
func wallLag(now int64, ts uint64) time.Duration {
	return time.Duration(max(now-int64(min(ts, maxTimestamp))*int64(time.Second), 0))
}

// aheadBy reports whether timestamp a is later than timestamp b by strictly more than margin.
func aheadBy(a, b uint64, margin time.Duration) bool {
	if a <= b {
		return false
	}
	d := min(a-b, maxTimestamp)
	return time.Duration(d)*time.Second > margin
}
