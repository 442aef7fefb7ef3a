package proxy

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/loadgen"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// TestBlockCopiesPlan: an answer is reused only for the same bytes; a copy that matches
// nothing is known to differ only once the first copy's fingerprint is known.
func TestBlockCopiesPlan(t *testing.T) {
	a0, a1 := &upstream.Slot{}, &upstream.Slot{} // the first copy's slots on lanes 0 and 1
	b0, b1 := &upstream.Slot{}, &upstream.Slot{}
	failed := map[*upstream.Slot]bool{a1: true} // lane 1 failed to deliver the first copy
	resend := func(s *upstream.Slot) bool { return failed[s] }
	const A, B, C = 0xa1, 0xb1, 0xc1

	b := &blockCopies{}
	b.record(-1, 0, []*upstream.Slot{a0, a1}) // the first copy, not fingerprinted
	if i, reuse, diff := b.plan(A, 2, resend); i != -1 || diff || reuse[0] != nil || reuse[1] != nil {
		t.Fatalf("first copy unknown: match %d, reuse %v, different %v; want sent everywhere, not known to differ", i, reuse, diff)
	}
	b.firstFP.Store(A) // a later copy had it fingerprinted
	cases := []struct {
		name      string
		fp        uint64
		wantMatch int
		wantDiff  bool
		want      []*upstream.Slot
	}{
		{"the same bytes reuse each lane's answer, except where it must be sent again", A, 0, false, []*upstream.Slot{a0, nil}},
		{"other bytes are sent everywhere, whatever the first copy earned", B, -1, true, []*upstream.Slot{nil, nil}},
	}
	for _, tc := range cases {
		i, reuse, diff := b.plan(tc.fp, 2, resend)
		if i != tc.wantMatch || diff != tc.wantDiff || reuse[0] != tc.want[0] || reuse[1] != tc.want[1] {
			t.Errorf("%s: match %d, reuse %v, different %v; want %d, %v, %v", tc.name, i, reuse, diff, tc.wantMatch, tc.want, tc.wantDiff)
		}
	}
	b.record(-1, B, []*upstream.Slot{b0, b1})
	if i, reuse, diff := b.plan(B, 2, resend); i != 1 || diff || reuse[0] != b0 || reuse[1] != b1 {
		t.Errorf("second copy again: match %d, reuse %v, different %v", i, reuse, diff)
	}
	// A bounded number of copies; the first stays.
	for i := range maxCopies + 2 {
		b.record(-1, C+uint64(i)<<8, []*upstream.Slot{nil, nil})
	}
	if len(b.copies) != maxCopies || b.find(A) != 0 {
		t.Errorf("%d copies, first copy at %d; want %d, at 0", len(b.copies), b.find(A), maxCopies)
	}
	if _, _, diff := b.plan(B, 2, resend); !diff {
		t.Errorf("a forgotten copy must be sent again")
	}
}

// TestCopyPrint: the fingerprint ignores the id and the whitespace around the params, and
// sees any other difference.
func TestCopyPrint(t *testing.T) {
	seed := maphash.MakeSeed()
	fp := func(body []byte) uint64 {
		t.Helper()
		req, err := engine.Inspect(body)
		if err != nil {
			t.Fatal(err)
		}
		return copyPrint(seed, &req)
	}
	good := newPayloadBody(`"bn1"`, 7)
	same := bytes.Replace(newPayloadBody(`42`, 7), []byte(`"params":[`), []byte("\"params\" : \n["), 1)
	if fp(good) != fp(same) {
		t.Errorf("another id and whitespace changed the fingerprint")
	}
	for name, other := range map[string][]byte{
		"versioned hashes": badCopyBody(`"bn2"`, 7),
		"method":           bytes.Replace(good, []byte("engine_newPayloadV3"), []byte("engine_newPayloadV4"), 1),
		"one byte":         bytes.Replace(good, []byte(`"gasUsed":"0x0"`), []byte(`"gasUsed":"0x1"`), 1),
	} {
		if fp(other) == fp(good) {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
	if fp(good) == 0 {
		t.Errorf("a fingerprint of 0 means unknown")
	}
}

// badMarker is in the expectedBlobVersionedHashes of badCopyBody only.
const badMarker = "0x01badbad"

// badCopyBody is block n as newPayloadBody has it, but with expectedBlobVersionedHashes the
// block's transactions do not match: the block hash does not cover them.
func badCopyBody(id string, n uint64) []byte {
	vh := fmt.Sprintf(`["%s%056x"],"0x`, badMarker, 0)
	return bytes.Replace(newPayloadBody(id, n), []byte(`[],"0x`), []byte(vh), 1)
}

// TestBadCopyDoesNotPoisonDedup: one beacon node's bad copy of a block is answered INVALID;
// another's good copy of the same claimed hash is still sent and answered VALID; later copies
// of either reuse the answer their own bytes earned.
func TestBadCopyDoesNotPoisonDedup(t *testing.T) {
	for _, ring := range []int64{0, -1} { // the default ring, and none
		t.Run(fmt.Sprintf("replay-bytes=%d", ring), func(t *testing.T) { badCopyCase(t, ring) })
	}
}

func badCopyCase(t *testing.T, ring int64) {
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles, func(c *Config) { c.ReplayBytes = ring })
		for _, el := range r.els {
			el.SetBadCopy([]byte(badMarker))
		}
		r.post("bn1", newPayloadBody(`"np1"`, 1))
		r.post("bn1", forkchoiceBody(`"fcu1"`, 1, false))
		r.waitIdle()
		want := func(bn string, body []byte, status string) {
			t.Helper()
			_, ans := r.post(bn, body)
			if !r.p.Direct() {
				status = "SYNCING"
			}
			if s, _ := payloadStatus(t, ans); s != status {
				t.Fatalf("%s: answered %s, want %s", bn, ans, status)
			}
		}
		want("bn2", badCopyBody(`"bad"`, 2), "INVALID")
		want("bn1", newPayloadBody(`"good"`, 2), "VALID")
		r.waitIdle()
		want("bn3", newPayloadBody(`"good-again"`, 2), "VALID")
		want("bn4", badCopyBody(`"bad-again"`, 2), "INVALID")
		r.waitIdle()
		r.wantNewPayloads(`["np1" "bad" "good"]`)
		if n := r.p.PayloadCopies(); n != 1 {
			t.Errorf("different copies counted %d, want 1", n)
		}
		if n := r.p.Divergence().Total(); n != 0 {
			t.Errorf("%d divergences reported: a bad copy is not the ELs disagreeing", n)
		}
		if ring < 0 {
			return
		}
		r.p.replay.mu.Lock()
		kept := r.p.replay.byHash[blockHash(2)]
		keptBad := kept == nil || bytes.Contains(kept.Body, []byte(badMarker))
		r.p.replay.mu.Unlock()
		if keptBad {
			t.Errorf("the replay ring keeps the bad copy of block 2, or none")
		}
	})
}

// TestSingleCopyIsNotFingerprinted: a block that arrives once (a burst from one beacon node)
// costs no fingerprint; its second copy has the first fingerprinted from the recent blocks
// and reuses its answer.
func TestSingleCopyIsNotFingerprinted(t *testing.T) {
	r := newRig(t, direct3)
	r.post("bn1", newPayloadBody(`"np1"`, 1))
	b, _ := r.p.payloads.get(blockHash(1))
	if fp := b.firstFP.Load(); fp != 0 {
		t.Fatalf("a block that arrived once was fingerprinted (%x)", fp)
	}
	r.waitIdle()
	_, ans := r.post("bn2", newPayloadBody(`"np1-bn2"`, 1))
	if s, _ := payloadStatus(t, ans); s != "VALID" {
		t.Fatalf("second copy answered %s", ans)
	}
	if b.firstFP.Load() == 0 {
		t.Fatalf("the second copy did not fingerprint the first")
	}
	r.waitIdle()
	r.wantNewPayloads(`["np1"]`)
	if n := r.p.PayloadCopies(); n != 0 {
		t.Errorf("different copies counted %d, want 0", n)
	}
}

// TestForgottenFirstCopyIsSentAgain: when the recent blocks no longer hold the first copy,
// a later copy cannot be compared with it: it is sent again (safe), and not counted as
// different.
func TestForgottenFirstCopyIsSentAgain(t *testing.T) {
	r := newRig(t, direct3, func(c *Config) { c.ReplayBytes = 1 }) // the ring keeps the newest block only
	r.post("bn1", newPayloadBody(`"np2"`, 2))
	r.post("bn1", newPayloadBody(`"np3"`, 3))
	r.waitIdle()
	_, ans := r.post("bn2", newPayloadBody(`"np2-bn2"`, 2))
	if s, _ := payloadStatus(t, ans); s != "VALID" {
		t.Fatalf("later copy answered %s", ans)
	}
	r.waitIdle()
	r.wantNewPayloads(`["np2" "np3" "np2-bn2"]`)
	if n := r.p.PayloadCopies(); n != 0 {
		t.Errorf("different copies counted %d, want 0: the bytes were never compared", n)
	}
}

// BenchmarkCopyPrint measures the fingerprint every newPayload gets on the request path, next
// to engine.Inspect of the same body (run both: go test -bench 'CopyPrint|Inspect300').
func BenchmarkCopyPrint(b *testing.B) {
	for _, shape := range []string{"np-300KB", "np-2MB"} {
		s, err := loadgen.ShapeByName(shape)
		if err != nil {
			b.Fatal(err)
		}
		tpl, err := loadgen.NewTemplate(s, 1)
		if err != nil {
			b.Fatal(err)
		}
		body := tpl.Clone()
		req, err := engine.Inspect(body)
		if err != nil {
			b.Fatal(err)
		}
		seed := maphash.MakeSeed()
		b.Run(shape+"/fingerprint", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				copyPrint(seed, &req)
			}
		})
		b.Run(shape+"/inspect", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := engine.Inspect(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// wantNewPayloads checks that every EL got exactly the newPayloads with these ids, in order
// (want as fmt.Sprint prints the raw ids).
func (r *rig) wantNewPayloads(want string) {
	r.t.Helper()
	for _, el := range r.els {
		if got := requestIDs(el, engine.ClassNewPayload); fmt.Sprint(got) != want {
			r.t.Errorf("%s got newPayloads %v, want %s", el.Name, got, want)
		}
	}
}
