package proxy

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// TestWriterIsNeverRefused: the writer's forkchoiceUpdated reaches every EL in order, whatever
// its head: a re-org to an ancestor, back to the tip, a build on the parent of the head (a
// proposer's re-org: the beacon node gets the EL's payloadId), the same build again.
func TestWriterIsNeverRefused(t *testing.T) {
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles)
		for n := uint64(1); n <= 3; n++ {
			r.clk.Set(time.Unix(int64(blockTS(n)), 0))
			r.post("bn1", newPayloadBody(fmt.Sprintf(`"np%d"`, n), n))
			r.post("bn1", forkchoiceBody(fmt.Sprintf(`"fcu%d"`, n), n, false))
		}
		r.clk.Set(time.Unix(int64(blockTS(4))-4, 0))
		steps := []struct {
			id    string
			head  uint64
			build bool
		}{
			{"reorg-to-1", 1, false},
			{"back-to-3", 3, false},
			{"build-on-2", 2, true}, // head 3 is late: the proposer builds on its parent
			{"build-on-2-again", 2, true},
		}
		for _, s := range steps {
			r.waitIdle() // one at a time: none of them is superseded in a queue
			_, ans := r.post("bn1", forkchoiceBody(`"`+s.id+`"`, s.head, s.build))
			status, pid := payloadStatus(t, ans)
			want := "VALID"
			if !r.p.Direct() {
				want = "SYNCING"
			}
			if status != want {
				t.Fatalf("%s: answered %s, want %s", s.id, ans, want)
			}
			if r.p.Direct() && s.build && (pid == nil || *pid == "") {
				t.Fatalf("%s: no payloadId in %s", s.id, ans)
			}
		}
		r.waitIdle()
		want := []string{"fcu1", "fcu2", "fcu3", "reorg-to-1", "back-to-3", "build-on-2", "build-on-2-again"}
		for _, el := range r.els {
			if got := fcuIDs(el); !slices.Equal(got, quoted(want)) {
				t.Errorf("%s got %v, want %v", el.Name, got, want)
			}
		}
		for _, l := range r.p.Lanes() {
			if n := l.Stats().Drops[upstream.DropStaleHead]; n != 0 {
				t.Errorf("%s dropped %d stale heads from the writer", l.Name(), n)
			}
		}
	})
}

// TestTooDeepReorgPassesThrough: an EL's -38006 (too deep re-org) reaches the writer
// unchanged.
func TestTooDeepReorgPassesThrough(t *testing.T) {
	r := newRig(t, direct3)
	r.post("bn1", newPayloadBody(`"np1"`, 1))
	r.post("bn1", forkchoiceBody(`"fcu1"`, 1, false))
	r.waitIdle()
	for _, el := range r.els {
		el.SetError("engine_forkchoiceUpdatedV3", engine.CodeTooDeepReorg, "Too deep reorg")
	}
	_, ans := r.post("bn1", forkchoiceBody(`"deep"`, 0, false))
	a := decode(t, ans)
	if a.Error == nil || a.Error.Code != engine.CodeTooDeepReorg || a.Error.Message != "Too deep reorg" || string(a.ID) != `"deep"` {
		t.Fatalf("answer %s, want the EL's -38006 unchanged", ans)
	}
}

// TestNewWriterBehindIsRefused: after a failover, the new writer's head updates that are
// older than the head the ELs already have are refused (answered SYNCING) until it reaches
// that head; from then on it is the writer the ELs follow, and its re-orgs pass.
func TestNewWriterBehindIsRefused(t *testing.T) {
	r := newRig(t, direct3)
	for n := uint64(1); n <= 5; n++ {
		r.clk.Set(time.Unix(int64(blockTS(n)), 0))
		r.post("bn1", newPayloadBody(fmt.Sprintf(`"np%d"`, n), n))
		r.post("bn1", forkchoiceBody(fmt.Sprintf(`"bn1-fcu%d"`, n), n, false))
	}
	r.waitIdle()
	// bn1 goes silent; bn2, a slot behind it, takes over.
	r.clk.Set(time.Unix(int64(blockTS(5))+30, 0))
	_, ans := r.post("bn2", forkchoiceBody(`"bn2-fcu3"`, 3, false))
	if w, _ := r.p.Tracker().Writer(); w != "bn2" {
		t.Fatalf("writer %q, want bn2 after bn1 went silent", w)
	}
	if s, _ := payloadStatus(t, ans); s != "SYNCING" {
		t.Fatalf("the new writer's stale head was answered %s, want SYNCING", ans)
	}
	for _, id := range []string{"bn2-fcu5", "bn2-fcu4"} {
		n := uint64(id[len(id)-1] - '0')
		_, ans := r.post("bn2", forkchoiceBody(`"`+id+`"`, n, false))
		if s, _ := payloadStatus(t, ans); s != "VALID" {
			t.Fatalf("%s answered %s, want VALID", id, ans)
		}
		r.waitIdle()
	}
	want := []string{"bn1-fcu1", "bn1-fcu2", "bn1-fcu3", "bn1-fcu4", "bn1-fcu5", "bn2-fcu5", "bn2-fcu4"}
	for _, el := range r.els {
		if got := fcuIDs(el); !slices.Equal(got, quoted(want)) {
			t.Errorf("%s got %v, want %v", el.Name, got, want)
		}
	}
}

// quoted is ids as JSON strings, the way the fake ELs record them.
func quoted(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = `"` + id + `"`
	}
	return out
}

// TestWriterWithoutForkchoiceIsReplaced: a writer whose forkchoiceUpdated stream is lost
// (its newPayloads still come) while another beacon node sends forkchoiceUpdated is replaced
// within two slots, and the ELs follow the other beacon node from then on.
func TestWriterWithoutForkchoiceIsReplaced(t *testing.T) {
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles)
		for n := uint64(1); n <= 4; n++ {
			r.clk.Set(time.Unix(int64(blockTS(n)), 0).Add(time.Second))
			for _, bn := range []string{"bn1", "bn2"} {
				r.post(bn, newPayloadBody(fmt.Sprintf(`"%s-np%d"`, bn, n), n))
			}
			for _, bn := range []string{"bn1", "bn2"} {
				if bn == "bn1" && n > 1 {
					continue // bn1's fork-choice stream is lost after slot 1
				}
				r.post(bn, forkchoiceBody(fmt.Sprintf(`"%s-fcu%d"`, bn, n), n, false))
			}
			r.waitIdle()
		}
		// bn1's last fcU is at slot 1; bn2's at slots 2 and 3 make it the writer at slot 3.
		want := quoted([]string{"bn1-fcu1", "bn2-fcu3", "bn2-fcu4"})
		for _, el := range r.els {
			if got := fcuIDs(el); !slices.Equal(got, want) {
				t.Errorf("%s got %v, want %v", el.Name, got, want)
			}
		}
		if w, _ := r.p.tracker.Writer(); w != "bn2" {
			t.Fatalf("writer %q, want bn2", w)
		}
	})
}
