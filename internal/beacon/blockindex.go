package beacon

import (
	"sync"

	"github.com/sync-proxy/sync-proxy/internal/bounded"
)

// DefaultBlockIndexCapacity is the capacity [NewBlockIndex] uses when given none: 8192
// blocks, about 27 hours of mainnet blocks.
const DefaultBlockIndexCapacity = 8192

// Entry is what a [BlockIndex] knows about one block.
type Entry struct {
	// Number is the block number.
	Number uint64
	// Timestamp is the block's timestamp in Unix seconds.
	Timestamp uint64
	// Parent is the parent block's hash.
	Parent [32]byte
}

// BlockIndex maps execution block hashes to their number, timestamp and parent, for the
// blocks the proxy has seen in newPayload requests. The proxy uses it to turn the head hash
// of a forkchoiceUpdated into a head timestamp ([Observation.HeadTimestamp]).
//
// It is bounded: when full, adding a new block forgets the block added longest ago (FIFO).
// A block older than the capacity is no longer a plausible head, and a head the index
// cannot resolve is treated as unknown, never as new. It is safe for concurrent use.
type BlockIndex struct {
	mu      sync.Mutex
	entries *bounded.Map[[32]byte, Entry]
}

// NewBlockIndex returns an empty index holding at most capacity blocks
// ([DefaultBlockIndexCapacity] when capacity < 1).
func NewBlockIndex(capacity int) *BlockIndex {
	if capacity < 1 {
		capacity = DefaultBlockIndexCapacity
	}
	return &BlockIndex{entries: bounded.New[[32]byte, Entry](capacity)}
}

// Add records a block. Adding a hash that is already present changes nothing (a block hash
// names one block, and every beacon node sends the same newPayload), and does not refresh
// its age.
func (x *BlockIndex) Add(hash [32]byte, number, timestamp uint64, parent [32]byte) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.entries.Get(hash); ok {
		return
	}
	x.entries.Put(hash, Entry{Number: number, Timestamp: timestamp, Parent: parent})
}

// Lookup returns what the index knows about the block with this hash.
func (x *BlockIndex) Lookup(hash [32]byte) (Entry, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.entries.Get(hash)
}

// Len returns the number of blocks held.
func (x *BlockIndex) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.entries.Len()
}

// Cap returns the most blocks the index holds.
func (x *BlockIndex) Cap() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.entries.Cap()
}
