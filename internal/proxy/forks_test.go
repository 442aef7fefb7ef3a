package proxy

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// fork is an Engine API generation as the tests' beacon nodes speak it: the newPayload and
// forkchoiceUpdated versions, with the parameters each carries (execution-apis
// cancun.md … bogota.md).
type fork struct {
	name    string
	np, fcu int // engine_newPayloadV<np>, engine_forkchoiceUpdatedV<fcu>
}

// forks lists the generations the tests drive: Cancun (the helpers' default), Prague,
// Amsterdam (newPayloadV5 with blockAccessList and slotNumber, forkchoiceUpdatedV4 with a
// third parameter, custodyColumns) and Bogota (newPayloadV6 with a fifth parameter,
// inclusionListTransactions; forkchoiceUpdatedV5).
func forks() []fork {
	return []fork{{"cancun", 3, 3}, {"prague", 4, 3}, {"amsterdam", 5, 4}, {"bogota", 6, 5}}
}

// fcuParams is how many parameters engine_forkchoiceUpdatedV<v> has.
func fcuParams(v int) int {
	if v >= 4 {
		return 3
	}
	return 2
}

// newPayload is block n as this fork's newPayload, with the given JSON id.
func (f fork) newPayload(id string, n uint64) []byte {
	body := newPayloadBody(id, n) // V3: [payload, hashes, beaconRoot]
	body = bytes.Replace(body, []byte(`"engine_newPayloadV3"`), fmt.Appendf(nil, `"engine_newPayloadV%d"`, f.np), 1)
	if f.np >= 5 { // ExecutionPayloadV4
		body = bytes.Replace(body, []byte(`"excessBlobGas":"0x0"}`),
			fmt.Appendf(nil, `"excessBlobGas":"0x0","blockAccessList":"0xc0","slotNumber":"0x%x"}`, n), 1)
	}
	var extra string
	if f.np >= 4 { // executionRequests
		extra += `,["0x00` + strings.Repeat("ab", 20) + `"]`
	}
	if f.np >= 6 { // inclusionListTransactions
		extra += `,["0x02f86b01"]`
	}
	return append(body[:len(body)-2], extra+"]}"...)
}

// forkchoice is a head update to block n as this fork's forkchoiceUpdated, with or without
// payload attributes; V4 and later carry custodyColumns.
func (f fork) forkchoice(id string, n uint64, attrs bool) []byte {
	body := forkchoiceBody(id, n, attrs) // V3: [state, attributes|null]
	body = bytes.Replace(body, []byte(`"engine_forkchoiceUpdatedV3"`), fmt.Appendf(nil, `"engine_forkchoiceUpdatedV%d"`, f.fcu), 1)
	if attrs && f.fcu >= 4 { // PayloadAttributesV4, V5
		a := fmt.Sprintf(`,"slotNumber":"0x%x","targetGasLimit":"0x3938700"`, n+1)
		if f.fcu >= 5 {
			a += `,"inclusionListTransactions":[]`
		}
		i := bytes.LastIndex(body, []byte("}]}"))
		body = append(body[:i:i], a+"}]}"...)
	}
	if f.fcu >= 4 {
		body = append(body[:len(body)-2], `,"0x0000000000000000000000000000ffff"]}`...)
	}
	return body
}

// driveFork sends blocks from..to as bn in fork f's shapes (newPayload then
// forkchoiceUpdated), waiting for the lanes after each block like a slot would.
func driveFork(r *rig, f fork, bn string, from, to uint64) {
	for n := from; n <= to; n++ {
		r.clk.Set(time.Unix(int64(blockTS(n)), 0))
		r.post(bn, f.newPayload(fmt.Sprintf(`"np%d"`, n), n))
		r.post(bn, f.forkchoice(fmt.Sprintf(`"fcu%d"`, n), n, false))
		r.waitIdle()
	}
}

// TestCatchUpEveryFork: an EL that missed 42 blocks is caught up in every fork's shapes. The
// replay moves the EL's head every replayHeadEvery blocks with the writer's forkchoiceUpdated
// version, whose V4 and later take a third parameter, custodyColumns: the replay sends it
// null (custody unchanged until the writer's own update), and a strict EL accepts it.
func TestCatchUpEveryFork(t *testing.T) {
	const down, back = 4, 46 // el2 misses blocks 4..45
	for _, f := range forks() {
		t.Run(f.name, func(t *testing.T) {
			r, els := chainRig(t, 2)
			els[1].mu.Lock()
			els[1].record = true
			els[1].mu.Unlock()
			driveFork(r, f, "bn1", 1, down-1)
			els[1].setDown(true)
			driveFork(r, f, "bn1", down, back-1)
			els[1].setDown(false)
			driveFork(r, f, "bn1", back, back)
			st := r.p.Lanes()[1].Stats()
			if st.CatchUps == 0 || st.CatchUp.Err != "" || st.Lost {
				t.Fatalf("catch-up %+v (lost %v, %d catch-ups), want blocks %d..%d replayed", st.CatchUp, st.Lost, st.CatchUps, down, back-1)
			}
			checkDelivered(t, "el2", els[1], back)
			for i, el := range els {
				if h := el.headNumber(); h != back {
					t.Errorf("el%d head %d, want %d", i+1, h, back)
				}
			}
		})
	}
}

// TestForkShapesForwardedAsSent: every fork's newPayload and forkchoiceUpdated reaches each
// EL with its params byte for byte as the beacon node sent them: Amsterdam's blockAccessList
// and slotNumber, forkchoiceUpdatedV4/V5's third parameter (custodyColumns), Bogota's fifth
// newPayload parameter (inclusionListTransactions). The one change is the spec'd one: a
// sync-only EL gets no payload attributes, and keeps custodyColumns. Bogota's
// PayloadStatusV2 (inclusionListSatisfied) reaches the beacon node.
func TestForkShapesForwardedAsSent(t *testing.T) {
	roles := []upstream.Role{upstream.RolePrimary, upstream.RoleFollower, upstream.RoleSyncOnly}
	for _, f := range forks() {
		t.Run(f.name, func(t *testing.T) {
			r := newRig(t, roles)
			for _, el := range r.els {
				el.KeepBodies(true)
			}
			var sent [][]byte
			for n := uint64(1); n <= 2; n++ {
				r.clk.Set(time.Unix(int64(blockTS(n)), 0))
				for _, body := range [][]byte{
					f.newPayload(fmt.Sprintf(`"np%d"`, n), n),
					f.forkchoice(fmt.Sprintf(`"fcu%d"`, n), n, false),
					f.forkchoice(fmt.Sprintf(`"build%d"`, n), n, true),
				} {
					sent = append(sent, body)
					_, ans := r.post("bn1", body)
					st, pid := payloadStatus(t, ans)
					req, _ := engine.Inspect(body)
					if st != "VALID" || req.HasAttributes != (pid != nil) {
						t.Fatalf("%s: answer %s", req.Method, ans)
					}
					if il := bytes.Contains(ans, []byte(`"inclusionListSatisfied":true`)); il != (f.np >= 6) {
						t.Errorf("%s: answer %s, inclusionListSatisfied passed through %v, want %v", req.Method, ans, il, f.np >= 6)
					}
					// Each lane delivers this request before the next is queued: a
					// queued head update that a newer one supersedes is dropped (the
					// sync-only lane's stripped build repeats the head update before
					// it), and this test is about shapes, not that queue policy.
					r.waitIdle()
				}
			}
			r.waitIdle()
			for i, el := range r.els {
				var got [][]byte
				for _, rec := range el.Requests() {
					if rec.Class == engine.ClassNewPayload || rec.Class == engine.ClassForkchoice {
						got = append(got, rec.Body)
					}
				}
				if len(got) != len(sent) {
					t.Fatalf("el%d got %d block and head requests, want %d", i+1, len(got), len(sent))
				}
				for j, body := range sent {
					want := body
					if roles[i] == upstream.RoleSyncOnly && bytes.Contains(body, []byte(`"build`)) {
						want, _ = engine.WithoutAttributes(body)
					}
					w, _ := engine.Inspect(want)
					g, err := engine.Inspect(got[j])
					if err != nil || g.Method != w.Method || !bytes.Equal(g.Params, w.Params) {
						t.Errorf("el%d (%v) request %d:\n got %s\nwant %s", i+1, roles[i], j, got[j], want)
					}
				}
			}
		})
	}
}

// TestForkErrorsPassThrough: an EL's -38006 (too deep re-org) to every fork's
// forkchoiceUpdated and -38005 (unsupported fork) to every fork's newPayload reach the
// beacon node unchanged, with its id.
func TestForkErrorsPassThrough(t *testing.T) {
	for _, f := range forks() {
		t.Run(f.name, func(t *testing.T) {
			r := newRig(t, direct3)
			r.post("bn1", f.newPayload(`"np1"`, 1))
			r.post("bn1", f.forkchoice(`"fcu1"`, 1, false))
			r.waitIdle()
			fcu := fmt.Sprintf("engine_forkchoiceUpdatedV%d", f.fcu)
			np := fmt.Sprintf("engine_newPayloadV%d", f.np)
			for _, el := range r.els {
				el.SetError(fcu, engine.CodeTooDeepReorg, "Too deep reorg")
				el.SetError(np, engine.CodeUnsupportedFork, "Unsupported fork")
			}
			for _, c := range []struct {
				body []byte
				id   string
				code int
				msg  string
			}{
				{f.forkchoice(`"deep"`, 0, false), `"deep"`, engine.CodeTooDeepReorg, "Too deep reorg"},
				{f.newPayload(`"np2"`, 2), `"np2"`, engine.CodeUnsupportedFork, "Unsupported fork"},
			} {
				_, ans := r.post("bn1", c.body)
				a := decode(t, ans)
				if a.Error == nil || a.Error.Code != c.code || a.Error.Message != c.msg || string(a.ID) != c.id {
					t.Errorf("answer %s, want the EL's %d %q unchanged", ans, c.code, c.msg)
				}
			}
		})
	}
}
