// Package upstream delivers Engine API requests to execution clients (ELs).
//
// Each EL has one [Lane]: a FIFO served by a single goroutine with one request in flight, so
// the order in which the proxy accepted requests is the order the EL sees them. The spec
// requires this for engine_forkchoiceUpdated ("the EL MUST process them in the order
// received", execution-apis src/engine/common.md §Message ordering).
//
// A lane never blocks its caller: [Lane.Enqueue] only takes a lock, appends and signals. What
// a slow or dead EL costs is one goroutine, its share of the backlog budget and one
// connection. The lanes share one budget in bytes (backlog.Budget): when it is spent, a lane
// already behind sheds first, else the one with the most queued; it sheds its newest blocks
// (backlog.Policy) and is behind until it has drained and healed from the recent blocks
// ([Replay]). A queued forkchoiceUpdated without
// payload attributes is dropped when a newer one arrives (it would be overwritten at once); the
// head guard (package headguard) never refuses the writer the EL follows, and refuses a new
// writer's update whose head is older than the EL's until that writer reaches it. Every drop completes its [Slot] with a [DropReason] and is counted.
//
// Every request is sent with a token minted for that EL's own secret at the moment of sending
// (see jwtauth.Signer), so a request that waited in the queue still carries a fresh iat.
//
// The body bytes are shared by every lane: a [Delivery] is built once per inbound request and
// each lane holds a [Slot] that points at it.
package upstream
