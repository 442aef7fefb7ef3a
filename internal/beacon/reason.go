package beacon

import "time"

// Reason says why a beacon node is unhealthy or why the writer changed.
type Reason string

// Reasons. A [Change] carries the reason the previous writer lost the role; [BN.Unhealthy]
// carries the reason a node is not healthy.
const (
	// ReasonFirst: the role went to a node because there was no writer yet.
	ReasonFirst Reason = "first beacon node"
	// ReasonSilent: no request for longer than [Config.SilenceTimeout] (or none ever).
	ReasonSilent Reason = "silent"
	// ReasonExternal: the node's beacon REST API says it is offline, syncing, optimistic or
	// that its execution client is offline (see [External]).
	ReasonExternal Reason = "unhealthy per beacon api"
	// ReasonNoForkchoice: the node still sends requests but no forkchoiceUpdated for longer
	// than [Config.SilenceTimeout], while another node has sent them in two later slots
	// (its fork-choice stream is lost, or it stopped following the chain).
	ReasonNoForkchoice Reason = "no forkchoiceUpdated"
	// ReasonNoHead: the node has shown no head timestamp yet (see [Observation]).
	ReasonNoHead Reason = "no head known"
	// ReasonWallLag: the node's head is older than [Config.MaxWallLag].
	ReasonWallLag Reason = "behind wall clock"
	// ReasonPeerAhead: another node's head is ahead of the writer's by more than
	// [Config.PeerMargin]. Only used for changes.
	ReasonPeerAhead Reason = "peer ahead"
	// ReasonRemoved: the writer was removed with [Tracker.Remove]. Only used for changes.
	ReasonRemoved Reason = "removed"
)

// String returns the reason as text.
func (r Reason) String() string { return string(r) }

// Change is one change of writer.
type Change struct {
	// From is the previous writer ("" when there was none).
	From string
	// To is the new writer ("" only when the last node was removed).
	To string
	// Reason is why From lost (or, for ReasonFirst, why To got) the role.
	Reason Reason
	// At is the tracker's clock when the change was decided.
	At time.Time
}
