package proxy

import (
	"fmt"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

func chainRig(t *testing.T, n int) (*rig, []*chainEL) {
	r := &rig{t: t, clk: clock.NewManual(time.Unix(int64(blockTS(1)), 0)), done: make(chan struct{})}
	cfg := Config{Instance: "catchup", Election: testElection()}
	var els []*chainEL
	for i := range n {
		c := newChainEL(t)
		els = append(els, c)
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: fmt.Sprintf("el%d", i+1), URL: c.srv.URL, Role: upstream.RoleFollower, CatchUpInterval: time.Millisecond})
	}
	r.start(cfg)
	return r, els
}

// drive sends blocks from..to as bn in Cancun's shapes (see driveFork).
func drive(r *rig, bn string, from, to uint64) { driveFork(r, forks()[0], bn, from, to) }

// TestCatchUp: an EL that was unreachable for ten blocks gets them replayed in order when it
// returns, and is back on the head at the first block after its return.
func TestCatchUp(t *testing.T) {
	r, els := chainRig(t, 3)
	drive(r, "bn1", 1, 9)
	els[1].setDown(true)
	drive(r, "bn1", 10, 20)
	if got := els[1].headNumber(); got != 9 {
		t.Fatalf("down EL head %d, want 9", got)
	}
	els[1].setDown(false)
	drive(r, "bn1", 21, 21)
	for i, el := range els {
		if got := el.headNumber(); got != 21 {
			t.Errorf("el%d head %d, want 21", i+1, got)
		}
	}
	st := r.p.Lanes()[1].Stats()
	// Blocks 10..20, and 21 too when its first send (answered SYNCING) triggered the catch-up.
	if st.CatchUp.Replayed < 11 || st.CatchUp.Replayed > 12 || st.CatchUp.Gap || st.CatchUp.ELHead.Number != 9 {
		t.Fatalf("catch-up %+v, want blocks 10..20(21) replayed from head 9", st.CatchUp)
	}
	for i := 1; i < len(els[1].heads); i++ {
		if els[1].heads[i] < els[1].heads[i-1] {
			t.Fatalf("the returning EL's head moved back: %v", els[1].heads)
		}
	}
}

// TestCatchUpGap: an EL further behind than the ring gets the newest head (to sync over
// p2p) and its status says so.
func TestCatchUpGap(t *testing.T) {
	r, els := chainRig(t, 2)
	// The ring holds blocks 12..16 exactly (bodies are read into buffers of their length).
	r.p.replay.maxBytes = 0
	for n := uint64(12); n <= 16; n++ {
		r.p.replay.maxBytes += int64(len(newPayloadBody(fmt.Sprintf(`"np%d"`, n), n)))
	}
	drive(r, "bn1", 1, 3)
	els[1].setDown(true)
	drive(r, "bn1", 4, 15)
	els[1].setDown(false)
	drive(r, "bn1", 16, 16)
	st := r.p.Lanes()[1].Stats()
	if !st.CatchUp.Gap || st.CatchUp.Replayed != 0 {
		t.Fatalf("catch-up %+v, want a gap", st.CatchUp)
	}
	if blocks, _ := r.p.replay.stats(); blocks != 5 {
		t.Fatalf("ring holds %d blocks, want 5", blocks)
	}
}

// TestStaleHeadAfterRestart: a proxy that has just started (no block index) never moves an
// EL back, even for a head it has not seen: it asks the EL.
func TestStaleHeadAfterRestart(t *testing.T) {
	r1, els := chainRig(t, 1)
	drive(r1, "bn1", 1, 20)
	r1.close()

	r := &rig{t: t, clk: r1.clk, done: make(chan struct{})}
	r.start(Config{Instance: "restarted", Election: testElection(),
		ELs: []upstream.Config{{Name: "el1", URL: els[0].srv.URL, Role: upstream.RoleFollower}}})
	r.post("bn-restarting", forkchoiceBody(`"stale"`, 15, false))
	r.waitIdle()
	if got := els[0].headNumber(); got != 20 {
		t.Fatalf("EL head %d after a stale update from a restarted proxy, want 20", got)
	}
	// Refused live, and again when a catch-up offered it as the newest update.
	if st := r.p.Lanes()[0].Stats(); st.Drops[upstream.DropStaleHead] == 0 {
		t.Fatalf("drops %v, want the stale head counted", st.Drops)
	}
	// The next real block still goes through.
	r.post("bn-restarting", newPayloadBody(`"np21"`, 21))
	r.post("bn-restarting", forkchoiceBody(`"fcu21"`, 21, false))
	r.waitIdle()
	if got := els[0].headNumber(); got != 21 {
		t.Fatalf("EL head %d, want 21", got)
	}
}

// TestCatchUpIncludesTriggeringBlock: an EL restarted and lost blocks 10..20 without the
// proxy seeing a failure; the newPayload that found it missing a parent (and so triggered
// the catch-up) is newer than the writer's last head; it is replayed too, so a single
// catch-up brings the EL to the head (found with real geth: the EL stayed a block behind).
func TestCatchUpIncludesTriggeringBlock(t *testing.T) {
	r, els := chainRig(t, 2)
	drive(r, "bn1", 1, 20)
	els[1].rewind(9)
	before := r.p.Lanes()[1].Stats().CatchUps
	r.clk.Set(time.Unix(int64(blockTS(21)), 0))
	r.post("bn1", newPayloadBody(`"np21"`, 21))
	r.post("bn1", forkchoiceBody(`"fcu21"`, 21, false))
	r.waitIdle()
	st := r.p.Lanes()[1].Stats()
	if got := els[1].headNumber(); got != 21 || st.CatchUps != before+1 {
		t.Fatalf("returning EL head %d after %d catch-ups, want 21 after one (last: %+v)", got, st.CatchUps-before, st.CatchUp)
	}
}
