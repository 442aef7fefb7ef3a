// Package headguard decides whether a forkchoiceUpdated may move an execution client's head.
//
// The rule is narrow on purpose: an EL must follow any re-org above finality
// (execution-apis PR #786), so the proxy must not be stricter than the EL. The writer, the
// beacon node the election chose, is never refused: its updates reach the EL in order,
// whether they re-org to an ancestor or a sibling, build on the parent of the head (a
// proposer's re-org), or repeat a head with new payload attributes. The guard refuses one
// thing: the first updates of a *new* writer (after a failover, or after the proxy started)
// whose head is older than the head the EL already has. The new writer owns the EL's head
// from its first update that is not older; from then on its updates pass whatever their head.
//
// Writers are told apart by their term: a number the proxy raises each time the beacon node
// whose forkchoiceUpdated it forwards changes. Term 0 marks an update from a beacon node that
// is not the writer (a build on the writer's head, which the proxy lets through): it is
// checked like a new writer's and never takes ownership.
//
// Overtaking (a queued update that a newer one from the same writer replaces) is the lane
// queue's business, not the guard's.
package headguard

import (
	"errors"
	"time"
)

// Update is one forkchoiceUpdated as the guard sees it.
type Update struct {
	// Term is the writer term that sent it; 0 for a beacon node that is not the writer.
	Term uint64
	// Known is set when the head block's timestamp is known; Timestamp is then its payload
	// timestamp (Unix seconds).
	Known     bool
	Timestamp uint64
}

// Verdict is the guard's decision.
type Verdict uint8

// Verdicts.
const (
	Forward Verdict = iota // send it to the EL
	Stale                  // a new writer's head older than the EL's: refuse it
)

func (v Verdict) String() string {
	if v == Stale {
		return "stale"
	}
	return "forward"
}

// Guard is one EL's head guard. It is not safe for concurrent use: a lane calls it under
// its own lock.
type Guard struct {
	allowance uint64 // seconds a new writer's head may be older than the EL's
	owner     uint64 // the term whose head the EL follows; 0: none yet
	head      uint64 // timestamp of the EL's head as far as the guard knows; 0: unknown
}

// New returns a guard. allowance is how much older (in payload timestamp seconds) than the
// EL's head a new writer's head may be and still be forwarded; it must not be negative.
func New(allowance time.Duration) (*Guard, error) {
	if allowance < 0 {
		return nil, errors.New("head allowance must not be negative")
	}
	return &Guard{allowance: uint64(allowance / time.Second)}, nil
}

// Check reports what Admit would decide, without recording anything.
func (g *Guard) Check(u Update) Verdict {
	switch {
	case u.Term != 0 && u.Term == g.owner:
		return Forward // the writer the EL follows: always, in order
	case !u.Known || g.head == 0:
		return Forward // nothing to compare with: the EL decides
	case u.Timestamp+g.allowance < g.head:
		return Stale
	}
	return Forward
}

// Admit decides on u and, when it is forwarded, records the EL's new head: the writer's
// term becomes the owner, and the head follows u even backwards (a re-org).
func (g *Guard) Admit(u Update) Verdict {
	v := g.Check(u)
	if v != Forward {
		return v
	}
	if u.Term != 0 {
		g.owner = u.Term
	}
	if u.Known {
		g.head = u.Timestamp
	}
	return Forward
}

// Observe records the head the EL reported itself (its latest block's timestamp): a head
// newer than the guard knew raises what a new writer is compared with, so a proxy that
// restarted cannot move an EL back. The owner keeps its place.
func (g *Guard) Observe(timestamp uint64) {
	if timestamp > g.head {
		g.head = timestamp
	}
}

// Owner returns the term whose updates pass unchecked; 0 when none has yet.
func (g *Guard) Owner() uint64 { return g.owner }

// Head returns the timestamp of the EL's head as far as the guard knows; 0 when unknown.
func (g *Guard) Head() uint64 { return g.head }
