package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// TestReads: blobs, payload bodies, the eth_* methods of the engine port and unknown engine_
// methods are answered by the primary, or by a follower when the primary fails; answers of
// tens of MB pass.
func TestReads(t *testing.T) {
	// Payload bodies have 10 s to come; blobs 1 s, which -race cannot meet for tens of MB
	// (without it, 16 MiB of blobs take under 100 ms).
	bigBodies := json.RawMessage(`[{"transactions":["0x` + strings.Repeat("ab", 12<<20) + `"],"withdrawals":[]}]`) // 24 MiB
	bigBlobs := json.RawMessage(`[{"blob":"0x` + strings.Repeat("ab", 2<<20) + `","proofs":[]}]`)                  // 4 MiB
	tests := []struct {
		name        string
		method      string
		roles       []upstream.Role
		primaryDown bool
		result      json.RawMessage // set on every EL; nil keeps the fake's default
		wantFrom    int             // the EL that must answer
	}{
		{name: "blobs from the primary", method: engine.MethodGetBlobsV2, roles: direct3, wantFrom: 0},
		{name: "blobs from a follower", method: engine.MethodGetBlobsV2, roles: direct3, primaryDown: true, wantFrom: 1},
		{name: "512 KiB of blobs", method: engine.MethodGetBlobsV2, roles: direct3, primaryDown: true, result: bigBlobs, wantFrom: 1},
		{name: "24 MiB of payload bodies", method: engine.MethodGetPayloadBodiesByRangeV1, roles: direct3, primaryDown: true, result: bigBodies, wantFrom: 1},
		{name: "payload bodies", method: engine.MethodGetPayloadBodiesByRangeV1, roles: direct3, primaryDown: true, wantFrom: 1},
		{name: "eth_ method", method: "eth_getBlockByNumber", roles: direct3, primaryDown: true, wantFrom: 1},
		{name: "unknown engine_ method", method: "engine_getSomethingNewV9", roles: direct3, primaryDown: true, wantFrom: 1},
		{
			name: "a sync-only EL may serve blobs", method: engine.MethodGetBlobsV1, primaryDown: true, wantFrom: 1,
			roles: []upstream.Role{upstream.RolePrimary, upstream.RoleSyncOnly, upstream.RoleFollower},
		},
		{
			name: "never a relay", method: engine.MethodGetBlobsV1, primaryDown: true, wantFrom: 2,
			roles: []upstream.Role{upstream.RolePrimary, upstream.RoleRelay, upstream.RoleFollower},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.roles)
			for i, el := range r.els {
				res := tt.result
				if res == nil {
					res = json.RawMessage(fmt.Sprintf(`{"from":%q}`, el.Name))
				}
				el.SetResult(tt.method, res)
				if i == 0 && tt.primaryDown {
					el.Set(fakeel.HTTP500, 0)
				}
			}
			code, body := r.post("bn1", fmt.Appendf(nil, `{"jsonrpc":"2.0","id":4,"method":%q,"params":[]}`, tt.method))
			if tt.result != nil { // compared as bytes: decoding tens of MB is slow under -race
				if want := engine.ResultResponse(json.RawMessage("4"), tt.result); code != 200 || !bytes.Equal(body, want) {
					t.Fatalf("HTTP %d, %d bytes %.200s; want the %d-byte answer", code, len(body), body, len(want))
				}
			} else {
				a := decode(t, body)
				if code != 200 || a.Error != nil || string(a.ID) != "4" {
					t.Fatalf("HTTP %d %.200s", code, body)
				}
				if want := fmt.Sprintf(`{"from":%q}`, r.els[tt.wantFrom].Name); string(a.Result) != want {
					t.Fatalf("result %s, want %s", a.Result, want)
				}
			}
			for i, el := range r.els {
				asked := false
				for _, m := range el.Methods() {
					asked = asked || m == tt.method
				}
				if want := i == tt.wantFrom || (i == 0 && tt.primaryDown); asked != want {
					t.Errorf("%s asked = %v, want %v", el.Name, asked, want)
				}
			}
		})
	}
}

// TestSyncOnlyNeverBuilds: a sync-only EL follows the writer's head but never sees payload
// attributes, and is never asked for a payload, even when every other EL is down.
func TestSyncOnlyNeverBuilds(t *testing.T) {
	r := newRig(t, []upstream.Role{upstream.RolePrimary, upstream.RoleSyncOnly})
	r.post("bn1", newPayloadBody(`1`, 1))
	r.els[0].Set(fakeel.HTTP500, 0)
	code, body := r.post("bn1", forkchoiceBody(`2`, 1, true))
	a := decode(t, body)
	if code != 200 || a.Error == nil {
		t.Fatalf("forkchoiceUpdated with attributes and only a sync-only EL up: %s; want an error, not its answer without a build", body)
	}
	r.waitIdle()
	_, body = r.post("bn1", getPayloadBody(`3`, "0x0000000000000001"))
	if a := decode(t, body); a.Error == nil {
		t.Fatalf("getPayload answered %s, want an error", body)
	}
	fcus := 0
	for _, rec := range r.els[1].Requests() {
		switch {
		case rec.Class == engine.ClassForkchoice && rec.Attrs:
			t.Errorf("the sync-only EL got payload attributes")
		case rec.Class == engine.ClassForkchoice:
			fcus++
		case rec.Class == engine.ClassGetPayload:
			t.Errorf("the sync-only EL was asked for a payload")
		}
	}
	if fcus != 1 {
		t.Errorf("the sync-only EL got %d forkchoiceUpdated, want 1 (without attributes)", fcus)
	}
}

// TestReadBudgets: a read waits as long as its method's budget, not the Engine API's default
// second: an eth_call that takes 1.5 s (geth's EVM timeout is 5 s) is answered by the primary.
// An operator's shorter budget for a method moves on to a follower when the primary takes
// longer; and the beacon node gets an error, never silence, when no EL answers within two
// budgets.
func TestReadBudgets(t *testing.T) {
	slow := func(method string, d time.Duration) func(fakeel.Received) {
		return func(r fakeel.Received) {
			if r.Method == method {
				time.Sleep(d) // the EL's own time: real time, as the lane's timeout is
			}
		}
	}
	budgets, err := engine.NewBudgets(map[string]time.Duration{"eth_chainId": 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, direct3, func(c *Config) { c.Budgets = budgets })
	for _, el := range r.els {
		el.SetResult("eth_call", json.RawMessage(fmt.Sprintf(`{"from":%q}`, el.Name)))
		el.SetResult("eth_chainId", json.RawMessage(fmt.Sprintf(`{"from":%q}`, el.Name)))
	}
	r.els[0].OnRequest(slow("eth_call", 1500*time.Millisecond))
	start := time.Now()
	_, body := r.post("bn1", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_call","params":[{},"latest"]}`))
	if a := decode(t, body); a.Error != nil || string(a.Result) != `{"from":"el1"}` {
		t.Fatalf("a 1.5 s eth_call: %s after %v, want the primary's answer", body, time.Since(start))
	}

	r.els[0].OnRequest(slow("eth_chainId", time.Second))
	start = time.Now()
	_, body = r.post("bn1", []byte(`{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}`))
	took := time.Since(start)
	if a := decode(t, body); a.Error != nil || string(a.Result) != `{"from":"el2"}` || took >= time.Second {
		t.Fatalf("eth_chainId with a 300 ms budget and a primary taking 1 s: %s after %v, want el2's answer sooner", body, took)
	}
	if st := r.p.Lanes()[0].Stats(); st.State == upstream.StateDown {
		t.Fatalf("the primary's slow read made it %s", st.State)
	}

	for _, el := range r.els {
		el.OnRequest(slow("eth_chainId", time.Second))
	}
	start = time.Now()
	_, body = r.post("bn1", []byte(`{"jsonrpc":"2.0","id":3,"method":"eth_chainId","params":[]}`))
	took = time.Since(start)
	a := decode(t, body)
	if a.Error == nil || a.Error.Code != engine.CodeServerError || took >= time.Second {
		t.Fatalf("every EL slower than two budgets: %s after %v, want a -32000 error within about 600 ms", body, took)
	}
}
