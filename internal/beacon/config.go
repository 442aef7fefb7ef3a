package beacon

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidConfig is wrapped by every problem [Config.Validate] reports.
var ErrInvalidConfig = errors.New("invalid beacon config")

// ErrNilClock is returned by [NewTracker] when no clock is given.
var ErrNilClock = errors.New("beacon tracker needs a clock")

// Default thresholds of [Config], in slots: [SlotConfig] scales them to a slot length.
const (
	DefaultSilenceSlots    = 1.5
	DefaultMaxWallLagSlots = 3
	DefaultPeerMarginSlots = 1
)

// DefaultSlotDuration is mainnet's slot length.
const DefaultSlotDuration = 12 * time.Second

// Defaults of the beacon-node table's bounds ([Config.MaxOthers], [Config.IdleExpiry]).
const (
	DefaultMaxOthers  = 64
	DefaultIdleExpiry = 10 * time.Minute
)

// Config holds the thresholds of writer election. The zero value is invalid; start from
// [DefaultConfig].
type Config struct {
	// SlotDuration is the chain's slot length: 12s on mainnet (default). Payload timestamps
	// sit exactly on slot starts. It is used to report lag in slots and to check that the
	// other thresholds are not shorter than one slot.
	SlotDuration time.Duration

	// SilenceTimeout is how long a beacon node may send nothing before it is unhealthy
	// ("silent"). Default 18s (1.5 slots); must be at least one slot, since a beacon node
	// may speak only once per slot. Silence is "strictly longer than": a node whose last
	// request is exactly SilenceTimeout old is still healthy. It also bounds forkchoiceUpdated
	// silence: a node that sent none for longer, while another node kept sending them in
	// later slots, is unhealthy ("no forkchoiceUpdated"; see doc.go).
	SilenceTimeout time.Duration

	// MaxWallLag is how far the head's timestamp may trail the wall clock before the node
	// is unhealthy ("behind wall clock"). Default 36s (3 slots): a head normally trails by
	// less than one slot, and by less than two after a missed slot. 0 disables the check;
	// otherwise at least one slot.
	MaxWallLag time.Duration

	// PeerMargin is how far another healthy node's head must be ahead of the writer's (strictly
	// more than this, for longer than half a slot) for it to take the role ("peer ahead").
	// Default 12s (1 slot), so two nodes racing on the same block, which are at most one slot
	// apart, never swap the role. It must be at least one slot for the same reason.
	PeerMargin time.Duration

	// Genesis is the chain's genesis time (Unix seconds): slot s starts at
	// Genesis + s·SlotDuration. 0 means unknown; then a head slot reported by a beacon node's
	// REST API ([External.HeadSlot]) is shown but cannot count as progress, and [BN.HeadSlot]
	// is 0.
	Genesis uint64

	// Configured names the beacon nodes given with --bn. They keep their place in the
	// table for the tracker's life, whatever they do (see "The table" in doc.go).
	Configured []string

	// MaxOthers caps the nodes in the table that are not Configured: a node identified by a
	// path, relay header or address the operator never listed. 0 means
	// [DefaultMaxOthers] (64).
	MaxOthers int

	// IdleExpiry is how long a node that is not Configured may send nothing before it is
	// forgotten. 0 means [DefaultIdleExpiry] (10 minutes); otherwise at least
	// SilenceTimeout, so that only silent nodes are forgotten.
	IdleExpiry time.Duration
}

// DefaultConfig returns the mainnet defaults: [SlotConfig] of 12s slots, so an 18s silence
// timeout, a 36s wall-clock lag and a 12s peer margin. The genesis time is left unknown: it
// depends on the network.
func DefaultConfig() Config { return SlotConfig(DefaultSlotDuration) }

// SlotConfig returns the default thresholds for slots of the given length: silence 1.5
// slots, wall-clock lag 3 slots and peer margin 1 slot. On a 2s-slot devnet that is 3s, 6s
// and 2s, so a silent writer is replaced within two slots there as on mainnet. The genesis
// time is left unknown.
func SlotConfig(slot time.Duration) Config {
	return Config{
		SlotDuration:   slot,
		SilenceTimeout: Slots(DefaultSilenceSlots, slot),
		MaxWallLag:     Slots(DefaultMaxWallLagSlots, slot),
		PeerMargin:     Slots(DefaultPeerMarginSlots, slot),
	}
}

// Slots returns n slots of the given length, rounded to the nanosecond.
func Slots(n float64, slot time.Duration) time.Duration {
	return time.Duration(math.Round(n * float64(slot)))
}

// Validate reports every problem with c at once, joined with [errors.Join]; each wraps
// [ErrInvalidConfig]. It returns nil when c is usable.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	slotOK := c.SlotDuration > 0
	if !slotOK {
		bad("slot duration must be positive, got %s", c.SlotDuration)
	}
	switch {
	case c.SilenceTimeout <= 0:
		bad("silence timeout must be positive, got %s", c.SilenceTimeout)
	case slotOK && c.SilenceTimeout < c.SlotDuration:
		bad("silence timeout %s is shorter than one slot (%s): nodes that speak once a slot would look silent", c.SilenceTimeout, c.SlotDuration)
	}
	switch {
	case c.MaxWallLag < 0:
		bad("max wall-clock lag must be 0 (disabled) or positive, got %s", c.MaxWallLag)
	case c.MaxWallLag > 0 && slotOK && c.MaxWallLag < c.SlotDuration:
		bad("max wall-clock lag %s is shorter than one slot (%s): every head would look late", c.MaxWallLag, c.SlotDuration)
	}
	switch {
	case c.PeerMargin < 0:
		bad("peer margin must not be negative, got %s", c.PeerMargin)
	case slotOK && c.PeerMargin < c.SlotDuration:
		bad("peer margin %s is shorter than one slot (%s): nodes racing on the same block would swap the role every slot", c.PeerMargin, c.SlotDuration)
	}
	if c.MaxOthers < 0 {
		bad("the cap on unconfigured beacon nodes must not be negative, got %d", c.MaxOthers)
	}
	switch {
	case c.IdleExpiry < 0:
		bad("idle expiry must be 0 (the default) or positive, got %s", c.IdleExpiry)
	case c.IdleExpiry > 0 && c.IdleExpiry < c.SilenceTimeout:
		bad("idle expiry %s is shorter than the silence timeout %s: a node could be forgotten while it still counts as talking", c.IdleExpiry, c.SilenceTimeout)
	}
	for _, n := range c.Configured {
		if n == "" {
			bad("a configured beacon node has an empty name")
		}
	}
	if c.Genesis >= maxTimestamp {
		bad("genesis time %d is not a Unix time in seconds", c.Genesis)
	}
	return errors.Join(errs...)
}

// SlotTime returns the start (Unix seconds) of slot s, and false when the genesis time is
// unknown. Times past the year 2242 are clamped.
func (c Config) SlotTime(s uint64) (uint64, bool) {
	ms := uint64(c.SlotDuration / time.Millisecond)
	if c.Genesis == 0 || ms == 0 {
		return 0, false
	}
	if s > maxTimestamp*1000/ms {
		return maxTimestamp, true
	}
	return min(c.Genesis+s*ms/1000, maxTimestamp), true
}

// SlotAt returns the slot that timestamp ts (Unix seconds) falls in, and false when the
// genesis time is unknown or ts is before genesis.
func (c Config) SlotAt(ts uint64) (uint64, bool) {
	ms := uint64(c.SlotDuration / time.Millisecond)
	if c.Genesis == 0 || ms == 0 || ts < c.Genesis {
		return 0, false
	}
	return (min(ts, maxTimestamp) - c.Genesis) * 1000 / ms, true
}
