// Package divergence detects execution clients (ELs) that give the same block verdicts that
// cannot both be right.
//
// Every EL gets the same newPayload and forkchoiceUpdated requests, in the same order. When
// one EL answers VALID for a block and another answers INVALID (or INVALID_BLOCK_HASH) for it,
// at least one of them is wrong: a consensus bug, a corrupt database, or a client on the
// wrong fork. That is a divergence, and an operator must hear about it once.
//
// SYNCING and ACCEPTED are not verdicts: the EL could not (yet) validate the block. Against
// VALID they mean the EL lags, which the status page shows as lag; they are ignored here.
// INVALID and INVALID_BLOCK_HASH agree with each other (both reject the block).
//
// A newPayload for block B and a forkchoiceUpdated naming B as head are verdicts on the same
// block, so they are compared with each other too (execution-apis src/engine/paris.md
// §Payload validation: VALID for a head means the head and its ancestors are valid).
//
// Two beacon nodes may send different bytes that claim the same block hash (a damaged copy,
// or wrong expectedBlobVersionedHashes, which the hash does not cover). An INVALID answer to a
// newPayload is about the bytes the EL was given, so it is compared only with newPayload
// verdicts on the same copy ([Detector.ObserveCopy]); a VALID one holds for the block.
//
// A [Detector] is pure bookkeeping: it starts no goroutine, keeps a bounded number of blocks
// and divergences, and is safe for concurrent use.
package divergence

import (
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/bounded"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// Defaults of [Options].
const (
	DefaultBlocks  = 1024 // about three and a half hours of mainnet slots
	DefaultRecent  = 32
	maxVerdictsPer = 16 // ELs remembered per block; more are configured only by mistake
)

// Verdict is one EL's final answer about a block.
type Verdict struct {
	// EL is the execution client's configured name.
	EL string
	// Class is the request that carried the verdict: newPayload or forkchoiceUpdated.
	Class engine.Class
	// Status is VALID, INVALID or INVALID_BLOCK_HASH.
	Status engine.Status
	// Copy tells apart newPayload copies of the block whose bytes differ (0: the first
	// copy, or a forkchoiceUpdated).
	Copy uint64
}

// Divergence is one block on which two ELs disagree.
type Divergence struct {
	// Block is the block's hash (the newPayload block, or the forkchoiceUpdated head).
	Block engine.Hash
	// Class is the class of the request whose answer revealed the divergence.
	Class engine.Class
	// Valid is an EL that answered VALID.
	Valid Verdict
	// Invalid is an EL that answered INVALID or INVALID_BLOCK_HASH.
	Invalid Verdict
	// At is when the second, contradicting verdict arrived.
	At time.Time
}

// Options configures a Detector. Zero fields take the defaults.
type Options struct {
	// Blocks bounds the blocks whose verdicts are remembered; the oldest are forgotten
	// first. Default 1024.
	Blocks int
	// Recent bounds the divergences kept for [Detector.Recent]. Default 32.
	Recent int
	// Clock stamps divergences. Default the wall clock.
	Clock clock.Clock
}

// Detector remembers the ELs' final verdicts per block and reports each divergent block once.
type Detector struct {
	clk clock.Clock

	mu     sync.Mutex
	blocks *bounded.Map[engine.Hash, *entry]
	recent []Divergence // ring of the newest divergences, oldest at rnext once full
	rnext  int
	total  uint64
}

type entry struct {
	verdicts []Verdict // each EL's latest final verdict per class
	reported bool
}

// New returns an empty detector.
func New(o Options) *Detector {
	if o.Blocks <= 0 {
		o.Blocks = DefaultBlocks
	}
	if o.Recent <= 0 {
		o.Recent = DefaultRecent
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	return &Detector{
		clk:    o.Clock,
		blocks: bounded.New[engine.Hash, *entry](o.Blocks),
		recent: make([]Divergence, 0, o.Recent),
	}
}

// Observe records that el answered status for block in a request of class. It returns the
// divergence when this answer contradicts another EL's final verdict on the same block (in
// either class; an EL is only compared with other ELs) and
// the block was not reported before; otherwise nil. Statuses that are not final (SYNCING,
// ACCEPTED, unknown or empty) are ignored, as are a zero block hash and an empty EL name.
func (d *Detector) Observe(el string, class engine.Class, block engine.Hash, status engine.Status) *Divergence {
	return d.ObserveCopy(el, class, block, 0, status)
}

// ObserveCopy is Observe for one copy of the block's bytes: copyID identifies them among the
// newPayloads that claim the same block hash (see the package documentation).
func (d *Detector) ObserveCopy(el string, class engine.Class, block engine.Hash, copyID uint64, status engine.Status) *Divergence {
	if !status.Final() || block.IsZero() || el == "" {
		return nil
	}
	v := Verdict{EL: el, Class: class, Status: status, Copy: copyID}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.blocks.Get(block)
	if !ok {
		e = &entry{}
		d.blocks.Put(block, e)
	}
	found := false
	for i := range e.verdicts {
		if e.verdicts[i].EL == el && e.verdicts[i].Class == class && e.verdicts[i].Copy == copyID {
			e.verdicts[i], found = v, true
			break
		}
	}
	if !found && len(e.verdicts) < maxVerdictsPer {
		e.verdicts = append(e.verdicts, v)
	}
	if e.reported {
		return nil
	}
	for _, o := range e.verdicts {
		if o.EL == el || valid(o.Status) == valid(status) || !comparable(o, v) {
			continue
		}
		div := Divergence{Block: block, Class: class, Valid: o, Invalid: v, At: d.clk.Now()}
		if valid(status) {
			div.Valid, div.Invalid = v, o
		}
		e.reported = true
		d.total++
		d.keep(div)
		return &div
	}
	return nil
}

// comparable reports whether two verdicts are on the same thing: an INVALID newPayload
// verdict is on the bytes the EL was given, so only a newPayload verdict on the same copy
// can contradict it.
func comparable(a, b Verdict) bool {
	onBytes := func(v Verdict) bool { return v.Class == engine.ClassNewPayload && !valid(v.Status) }
	if onBytes(a) || onBytes(b) {
		return a.Class == b.Class && a.Copy == b.Copy
	}
	return true
}

// valid reports whether a final status accepts the block.
func valid(s engine.Status) bool { return s == engine.StatusValid }

// keep stores a divergence in the recent ring. Called with d.mu held.
func (d *Detector) keep(div Divergence) {
	if len(d.recent) < cap(d.recent) {
		d.recent = append(d.recent, div)
		return
	}
	d.recent[d.rnext] = div
	d.rnext = (d.rnext + 1) % len(d.recent)
}

// Recent returns the newest divergences, newest first.
func (d *Detector) Recent() []Divergence {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Divergence, 0, len(d.recent))
	for i := range d.recent {
		// Walk backwards from the newest: the slot before rnext (or the last appended).
		j := (d.rnext - 1 - i + 2*len(d.recent)) % len(d.recent)
		out = append(out, d.recent[j])
	}
	return out
}

// Total returns how many divergent blocks were found since the detector was made.
func (d *Detector) Total() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.total
}
