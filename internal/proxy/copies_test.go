package proxy

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// TestBlockCopiesPlan: an answer is reused only for the same bytes.
func TestBlockCopiesPlan(t *testing.T) {
	a0, a1 := &upstream.Slot{}, &upstream.Slot{} // copy A's slots on lanes 0 and 1
	b0, b1 := &upstream.Slot{}, &upstream.Slot{}
	failed := map[*upstream.Slot]bool{a1: true} // lane 1 failed to deliver copy A
	resend := func(s *upstream.Slot) bool { return failed[s] }
	const A, B, C = 0xa1, 0xb1, 0xc1

	var none *blockCopies
	if reuse, diff := none.plan(A, 2, resend); diff || reuse[0] != nil || reuse[1] != nil {
		t.Fatalf("first copy: reuse %v, different %v; want every lane sent", reuse, diff)
	}
	b := &blockCopies{}
	b.record(A, []*upstream.Slot{a0, a1})
	cases := []struct {
		name     string
		fp       uint64
		wantDiff bool
		want     []*upstream.Slot
	}{
		{"the same bytes reuse each lane's answer, except where it must be sent again", A, false, []*upstream.Slot{a0, nil}},
		{"other bytes are sent everywhere, whatever the first copy earned", B, true, []*upstream.Slot{nil, nil}},
	}
	for _, tc := range cases {
		reuse, diff := b.plan(tc.fp, 2, resend)
		if diff != tc.wantDiff || reuse[0] != tc.want[0] || reuse[1] != tc.want[1] {
			t.Errorf("%s: reuse %v, different %v; want %v, %v", tc.name, reuse, diff, tc.want, tc.wantDiff)
		}
	}
	b.record(B, []*upstream.Slot{b0, b1})
	if reuse, diff := b.plan(B, 2, resend); diff || reuse[0] != b0 || reuse[1] != b1 {
		t.Errorf("second copy again: reuse %v, different %v", reuse, diff)
	}
	// A bounded number of copies; the first stays.
	for i := range maxCopies + 2 {
		b.record(C+uint64(i)<<8, []*upstream.Slot{nil, nil})
	}
	if len(b.copies) != maxCopies || b.copies[0].fp != A {
		t.Errorf("%d copies, first %x; want %d, first %x", len(b.copies), b.copies[0].fp, maxCopies, A)
	}
	if _, diff := b.plan(B, 2, resend); !diff {
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
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles)
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
		for _, el := range r.els {
			var got []string
			for _, rec := range el.Requests() {
				if rec.Class == engine.ClassNewPayload && rec.Block.Hash == blockHash(2) {
					got = append(got, rec.ID)
				}
			}
			if fmt.Sprint(got) != `["bad" "good"]` {
				t.Errorf("%s got copies %v of block 2, want the bad one and the good one once each", el.Name, got)
			}
		}
		if n := r.p.PayloadCopies(); n != 1 {
			t.Errorf("different copies counted %d, want 1", n)
		}
		if n := r.p.Divergence().Total(); n != 0 {
			t.Errorf("%d divergences reported: a bad copy is not the ELs disagreeing", n)
		}
		r.p.replay.mu.Lock()
		kept := r.p.replay.byHash[blockHash(2)]
		keptBad := bytes.Contains(kept.Body, []byte(badMarker))
		r.p.replay.mu.Unlock()
		if keptBad {
			t.Errorf("the replay ring keeps the bad copy of block 2")
		}
	})
}
