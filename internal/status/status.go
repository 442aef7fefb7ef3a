// Package status builds a read-only snapshot of a running proxy and serves it on the
// operations listener: as JSON at /status and as a self-refreshing HTML page at /.
//
// A [Snapshot] is built on demand from the proxy's own views (lane Stats, the beacon
// tracker's Snapshot, the divergence detector's Recent list); nothing here holds state or
// starts goroutines. The metrics collector reads the same snapshot, so the page, /status and
// /metrics always agree.
//
// Lag is measured in slots against the newest head anyone has shown: for an EL,
// (newest head timestamp among the ELs and beacon nodes − the EL's head timestamp) / slot
// duration. An EL that answers SYNCING or ACCEPTED while another EL answers VALID is lagging
// too, not diverging (see package divergence).
package status

import (
	"net/url"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// LagToleranceSlots is how many slots an EL's head may trail the newest head and still be
// in sync: the head moves on every EL only once each answers the forkchoiceUpdated, so one
// slot of difference is a race, not lag.
const LagToleranceSlots = 1.0

// Sync states of an EL, as shown in [EL.Sync].
const (
	SyncInSync  = "in-sync" // head within LagToleranceSlots of the newest head
	SyncLagging = "lagging" // head further behind, or SYNCING/ACCEPTED where another EL says VALID
	SyncUnknown = "unknown" // no head with a known timestamp yet
	SyncBehind  = "behind"  // shed blocks for the backlog budget; not yet healed
	SyncLost    = "lost"    // did not answer a newPayload; not yet caught up
)

// Options configures what Build adds to the proxy's own views. Zero fields take defaults.
type Options struct {
	// Version and Commit identify the build.
	Version string
	Commit  string
	// SlotDuration converts timestamps to slots. Default 12s.
	SlotDuration time.Duration
	// Clock is "now" for ages. Default the wall clock.
	Clock clock.Clock
	// Refresh is how often the HTML page reloads itself. Default 5s.
	Refresh time.Duration
}

func (o Options) withDefaults() Options {
	if o.SlotDuration <= 0 {
		o.SlotDuration = 12 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Refresh <= 0 {
		o.Refresh = 5 * time.Second
	}
	return o
}

// Snapshot is the proxy's state at one moment, as served at /status.
type Snapshot struct {
	// Version and Commit identify the build.
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	// Now is when the snapshot was taken.
	Now time.Time `json:"now"`
	// Mode is "direct" (beacon nodes get the primary EL's answers) or "mirror".
	Mode string `json:"mode"`
	// SlotSeconds is the slot duration used for lag.
	SlotSeconds float64 `json:"slot_seconds"`
	// Writer is the beacon node whose forkchoiceUpdated moves the ELs ("" when none).
	Writer string `json:"writer"`
	// Ready is /readyz's verdict; NotReady says why not.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
	// NewestHeadTimestamp is the newest head timestamp shown by any EL or beacon node.
	NewestHeadTimestamp uint64 `json:"newest_head_timestamp"`
	// BNs are the beacon nodes, by name.
	BNs []BN `json:"bns"`
	// BNTable is how many beacon nodes the table holds and what its bounds turned away.
	BNTable BNTable `json:"bn_table"`
	// ELs are the execution clients and relays, in configuration order.
	ELs []EL `json:"els"`
	// Divergences are the newest blocks on which ELs disagreed, newest first;
	// DivergenceTotal counts all since start.
	Divergences     []Divergence `json:"divergences"`
	DivergenceTotal uint64       `json:"divergence_total"`
	// Backlog is what the lanes hold against their shared byte budget.
	Backlog Backlog `json:"backlog"`
}

// Backlog is the lanes' shared byte budget (--backlog-bytes) and what it holds.
type Backlog struct {
	// BudgetBytes is the budget; Bytes what is held now, a body shared by several ELs
	// counted once; PeakBytes the most held since start.
	BudgetBytes int64 `json:"budget_bytes"`
	Bytes       int64 `json:"bytes"`
	PeakBytes   int64 `json:"peak_bytes"`
}

// BNTable is the bounded table of beacon nodes (see package beacon, "The table").
type BNTable struct {
	// Configured counts the nodes given with --bn that have been seen: they stay.
	Configured int `json:"configured"`
	// Others counts the other nodes, at most MaxOthers; each is forgotten after
	// IdleExpirySeconds without a request.
	Others            int     `json:"others"`
	MaxOthers         int     `json:"max_others"`
	IdleExpirySeconds float64 `json:"idle_expiry_seconds"`
	// Refused counts requests from new nodes served but not tracked, the table being full
	// of others that still talk; Expired the others forgotten when idle; Evicted the
	// silent others whose place went to a new node.
	Refused uint64 `json:"refused"`
	Expired uint64 `json:"expired"`
	Evicted uint64 `json:"evicted"`
}

// BN is one beacon node.
type BN struct {
	// Name identifies the node (configured name, or the address it was identified by).
	Name string `json:"name"`
	// Configured reports that it was given with --bn: it keeps its place in the table.
	Configured bool `json:"configured"`
	// Writer reports whether it holds the writer role.
	Writer bool `json:"writer"`
	// Healthy reports whether it passes every health rule; Unhealthy says which failed.
	Healthy   bool   `json:"healthy"`
	Unhealthy string `json:"unhealthy,omitempty"`
	// FirstSeen and LastSeen are its first and latest Engine API requests.
	FirstSeen *time.Time `json:"first_seen,omitempty"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	// LastSeenAgoSeconds is Now − LastSeen (absent when never seen).
	LastSeenAgoSeconds *float64 `json:"last_seen_ago_seconds,omitempty"`
	// Requests counts its Engine API requests.
	Requests uint64 `json:"requests"`
	// HeadTimestamp is its head's timestamp (0 = none yet); HeadTime the same as a time.
	HeadTimestamp uint64     `json:"head_timestamp"`
	HeadTime      *time.Time `json:"head_time,omitempty"`
	// HeadHash is the head block named by its latest forkchoiceUpdated.
	HeadHash engine.Hash `json:"head_hash,omitzero"`
	// HeadSlot is the head slot its beacon API reports, when polled.
	HeadSlot *uint64 `json:"head_slot,omitempty"`
	// LagSlots is how far its head trails the wall clock, in slots.
	LagSlots float64 `json:"lag_slots"`
	// BeaconAPI is what its beacon REST API reported, when polled.
	BeaconAPI *BeaconAPI `json:"beacon_api,omitempty"`
}

// BeaconAPI is a beacon node's own view of its health (/eth/v1/node/syncing).
type BeaconAPI struct {
	// Offline reports that the REST API could not be reached.
	Offline bool `json:"offline"`
	// Syncing, Optimistic and ELOffline are the API's is_syncing, is_optimistic and
	// el_offline.
	Syncing    bool `json:"syncing"`
	Optimistic bool `json:"optimistic"`
	ELOffline  bool `json:"el_offline"`
	// HeadSlot and SyncDistance are the API's head_slot and sync_distance.
	HeadSlot     uint64 `json:"head_slot"`
	SyncDistance uint64 `json:"sync_distance"`
	// At is when the API was polled.
	At time.Time `json:"at"`
}

// EL is one execution client (or chained sync-proxy, role relay).
type EL struct {
	// Name is the configured name; URL its endpoint without credentials.
	Name string `json:"name"`
	URL  string `json:"url"`
	// Role is primary, follower, sync-only or relay.
	Role string `json:"role"`
	// State is the lane's view: unknown, up, down or unauthorized. Reachable is State == up.
	State     string `json:"state"`
	Reachable bool   `json:"reachable"`
	// LastStatus is the payload status of its last newPayload or forkchoiceUpdated answer.
	LastStatus string `json:"last_status,omitempty"`
	// Sync is in-sync, lagging or unknown (see the Sync constants).
	Sync string `json:"sync"`
	// LagSlots is how far its head trails the newest head, in slots (absent when unknown).
	LagSlots *float64 `json:"lag_slots,omitempty"`
	// Head is the last head it answered VALID to a forkchoiceUpdated for.
	Head *Block `json:"head,omitempty"`
	// LastValid is the newest block it answered VALID to a newPayload for.
	LastValid *Block `json:"last_valid,omitempty"`
	// QueueDepth is how many requests wait for it; InFlight whether one is being sent.
	QueueDepth int  `json:"queue_depth"`
	InFlight   bool `json:"in_flight"`
	// BacklogBytes is what its queue and the request in flight hold of the backlog budget.
	BacklogBytes int64 `json:"backlog_bytes"`
	// Behind is set while it has shed blocks for the backlog budget and not yet healed
	// (Sync is then "behind"); BehindSince is when it fell behind.
	Behind      bool       `json:"behind"`
	BehindSince *time.Time `json:"behind_since,omitempty"`
	// Lost is set while it may lack a block it did not answer for: nothing that builds on
	// it is sent until a catch-up has sent it again (Sync is then "lost", unless behind).
	Lost bool `json:"lost"`
	// ShedBlocks and ShedBytes count the blocks it was not sent from the queue (the heal sends
	// them from the recent blocks); Heals counts the heals.
	ShedBlocks uint64 `json:"shed_blocks"`
	ShedBytes  uint64 `json:"shed_bytes"`
	Heals      uint64 `json:"heals"`
	// Delivered and Failed count requests that did or did not get a JSON-RPC answer.
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// Drops counts requests never sent, by reason.
	Drops map[string]uint64 `json:"drops"`
	// Deduplicated counts newPayloads not sent because the EL already had the block.
	Deduplicated uint64 `json:"deduplicated"`
	// LastError is the last failure and when it happened.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// LastOKAt is the last JSON-RPC answer.
	LastOKAt *time.Time `json:"last_ok_at,omitempty"`
	// LatencySeconds is how long its last request took.
	LatencySeconds float64 `json:"latency_seconds"`
}

// Block is a block as far as the proxy knows it (Number and Timestamp 0 when unknown).
type Block struct {
	// Hash is the block hash.
	Hash engine.Hash `json:"hash"`
	// Number is the block number.
	Number uint64 `json:"number"`
	// Timestamp is the block's timestamp in Unix seconds.
	Timestamp uint64 `json:"timestamp"`
}

// Divergence is one block on which two ELs gave contradicting verdicts.
type Divergence struct {
	// Block is the block's hash.
	Block engine.Hash `json:"block"`
	// Class is the method class whose answer revealed it (new-payload or forkchoice).
	Class string `json:"class"`
	// ValidEL answered VALID; InvalidEL answered InvalidStatus (INVALID or
	// INVALID_BLOCK_HASH).
	ValidEL       string `json:"valid_el"`
	InvalidEL     string `json:"invalid_el"`
	InvalidStatus string `json:"invalid_status"`
	// At is when the contradicting answer arrived.
	At time.Time `json:"at"`
}

// Build takes a snapshot of p.
func Build(p *proxy.Proxy, o Options) Snapshot {
	o = o.withDefaults()
	now := o.Clock.Now()
	s := Snapshot{
		Version:     o.Version,
		Commit:      o.Commit,
		Now:         now,
		Mode:        "mirror",
		SlotSeconds: o.SlotDuration.Seconds(),
		BNs:         []BN{},
		ELs:         []EL{},
		Divergences: []Divergence{},
	}
	if p.Direct() {
		s.Mode = "direct"
	}
	for _, b := range p.Tracker().Snapshot() {
		v := BN{
			Name: b.Name, Configured: b.Configured, Writer: b.Writer, Healthy: b.Healthy, Unhealthy: b.Unhealthy.String(),
			FirstSeen: timePtr(b.FirstSeen), LastSeen: timePtr(b.LastSeen), Requests: b.Requests,
			HeadTimestamp: b.HeadTimestamp, LagSlots: b.LagSlots,
		}
		v.HeadHash = engine.Hash(b.HeadHash)
		if !b.LastSeen.IsZero() {
			ago := max(now.Sub(b.LastSeen), 0).Seconds()
			v.LastSeenAgoSeconds = &ago
		}
		if b.HeadTimestamp != 0 {
			t := time.Unix(int64(min(b.HeadTimestamp, 1<<33)), 0).UTC()
			v.HeadTime = &t
		}
		if e := b.External; e.Known {
			v.BeaconAPI = &BeaconAPI{
				Offline: e.Offline, Syncing: e.Syncing, Optimistic: e.Optimistic, ELOffline: e.ELOffline,
				HeadSlot: e.HeadSlot, SyncDistance: e.SyncDistance, At: e.At,
			}
			if !e.Offline {
				slot := e.HeadSlot
				v.HeadSlot = &slot
			}
		}
		if b.Writer {
			s.Writer = b.Name
		}
		s.NewestHeadTimestamp = max(s.NewestHeadTimestamp, b.HeadTimestamp)
		s.BNs = append(s.BNs, v)
	}
	tb := p.Tracker().Table()
	s.BNTable = BNTable{
		Configured: tb.Configured, Others: tb.Others, MaxOthers: tb.MaxOthers,
		IdleExpirySeconds: tb.IdleExpiry.Seconds(), Refused: tb.Refused, Expired: tb.Expired, Evicted: tb.Evicted,
	}
	stats := make([]upstream.Stats, 0, len(p.Lanes()))
	anyValid := false
	for _, l := range p.Lanes() {
		st := l.Stats()
		stats = append(stats, st)
		s.NewestHeadTimestamp = max(s.NewestHeadTimestamp, st.Head.Timestamp)
		anyValid = anyValid || (st.Role != upstream.RoleRelay && st.LastStatus == engine.StatusValid)
	}
	for _, st := range stats {
		s.ELs = append(s.ELs, buildEL(st, s.NewestHeadTimestamp, o.SlotDuration, anyValid))
	}
	u := p.Backlog().Usage()
	s.Backlog = Backlog{BudgetBytes: u.Limit, Bytes: u.Total, PeakBytes: u.Peak}
	s.NotReady = notReady(s)
	s.Ready = s.NotReady == ""
	if d := p.Divergence(); d != nil {
		for _, dv := range d.Recent() {
			s.Divergences = append(s.Divergences, Divergence{
				Block: dv.Block, Class: dv.Class.String(), ValidEL: dv.Valid.EL, InvalidEL: dv.Invalid.EL,
				InvalidStatus: dv.Invalid.Status.String(), At: dv.At,
			})
		}
		s.DivergenceTotal = d.Total()
	}
	return s
}

// buildEL turns a lane's stats into its status; newest is the newest head timestamp anyone
// showed and anyValid whether some EL's last verdict was VALID.
func buildEL(st upstream.Stats, newest uint64, slot time.Duration, anyValid bool) EL {
	e := EL{
		Name: st.Name, URL: redact(st.URL), Role: st.Role.String(), State: st.State.String(),
		Reachable: st.State == upstream.StateUp, LastStatus: st.LastStatus.String(), Sync: SyncUnknown,
		QueueDepth: st.QueueDepth, InFlight: st.InFlight, Delivered: st.Delivered, Failed: st.Failed, Deduplicated: st.Deduplicated,
		BacklogBytes: st.HeldBytes, Behind: st.Behind, Lost: st.Lost, ShedBlocks: st.ShedBlocks, ShedBytes: st.ShedBytes, Heals: st.Heals,
		Drops:     make(map[string]uint64, len(st.Drops)),
		LastError: st.LastError, LastErrorAt: timePtr(st.LastErrorAt), LastOKAt: timePtr(st.LastOKAt),
		LatencySeconds: st.LastLatency.Seconds(),
	}
	for r, n := range st.Drops {
		e.Drops[string(r)] = n
	}
	if !st.Head.Hash.IsZero() {
		e.Head = &Block{Hash: st.Head.Hash, Number: st.Head.Number, Timestamp: st.Head.Timestamp}
	}
	if !st.LastValid.Hash.IsZero() {
		e.LastValid = &Block{Hash: st.LastValid.Hash, Number: st.LastValid.Number, Timestamp: st.LastValid.Timestamp}
	}
	if st.Head.Timestamp != 0 && newest >= st.Head.Timestamp {
		lag := float64(newest-st.Head.Timestamp) / slot.Seconds()
		e.LagSlots = &lag
		e.Sync = SyncInSync
		if lag > LagToleranceSlots {
			e.Sync = SyncLagging
		}
	}
	// SYNCING or ACCEPTED where another EL says VALID is lag, not divergence. A relay's
	// answer is another proxy's (SYNCING in mirror mode) and says nothing about its ELs.
	notYet := st.LastStatus == engine.StatusSyncing || st.LastStatus == engine.StatusAccepted
	if notYet && anyValid && st.Role != upstream.RoleRelay {
		e.Sync = SyncLagging
	}
	if st.Lost {
		e.Sync = SyncLost
	}
	if st.Behind {
		e.Sync = SyncBehind
		e.BehindSince = timePtr(st.BehindSince)
	}
	return e
}

// notReady is /readyz's rule: a writer is elected and at least one EL (not a relay) answers.
func notReady(s Snapshot) string {
	if s.Writer == "" {
		return "no writer: no beacon node has sent a request yet"
	}
	for _, e := range s.ELs {
		if e.Role != upstream.RoleRelay.String() && e.Reachable {
			return ""
		}
	}
	return "no execution client is reachable"
}

// redact drops credentials from a URL ("http://user:pass@host" → "http://host").
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
