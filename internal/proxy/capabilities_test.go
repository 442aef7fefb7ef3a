package proxy

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// capabilitiesBody is an engine_exchangeCapabilities request with the given methods.
func capabilitiesBody(id string, methods ...string) []byte {
	list, _ := json.Marshal(append([]string{}, methods...))
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"engine_exchangeCapabilities","params":[%s]}`, id, list)
}

// capabilitiesAnswer decodes an exchangeCapabilities answer; code is the JSON-RPC error code.
func capabilitiesAnswer(t *testing.T, body []byte) (methods []string, code int) {
	t.Helper()
	a := decode(t, body)
	if a.Error != nil {
		return nil, a.Error.Code
	}
	if err := json.Unmarshal(a.Result, &methods); err != nil {
		t.Fatalf("result %s: %v", a.Result, err)
	}
	return methods, 0
}

// sentCapabilities returns the lists el received in engine_exchangeCapabilities requests.
func sentCapabilities(t *testing.T, el *fakeel.EL) [][]string {
	t.Helper()
	var out [][]string
	for _, rec := range el.Requests() {
		if rec.Method != engine.MethodExchangeCapabilities {
			continue
		}
		var req struct {
			Params [][]string `json:"params"`
		}
		if err := json.Unmarshal(rec.Body, &req); err != nil || len(req.Params) != 1 {
			t.Fatalf("%s got %s: %v", el.Name, rec.Body, err)
		}
		out = append(out, req.Params[0])
	}
	return out
}

const (
	npV3  = engine.MethodNewPayloadV3
	npV4  = engine.MethodNewPayloadV4
	fcuV3 = engine.MethodForkchoiceUpdatedV3
	gpV3  = engine.MethodGetPayloadV3
	gpV4  = engine.MethodGetPayloadV4
	gbV1  = engine.MethodGetBlobsV1
	gbV2  = engine.MethodGetBlobsV2
	gbV4  = engine.MethodGetBlobsV4
	cvV1  = engine.MethodGetClientVersionV1
	exch  = engine.MethodExchangeCapabilities
)

// TestExchangeCapabilitiesIntersection: the beacon node is told what every EL supports and
// sync-proxy routes; getPayload only counts the ELs that build.
func TestExchangeCapabilitiesIntersection(t *testing.T) {
	all := routable()
	tests := []struct {
		name  string
		roles []upstream.Role
		els   [][]string // nil: the EL refuses (HTTP 500)
		want  []string   // nil: an error
	}{
		{
			name:  "ELs disagree",
			roles: []upstream.Role{upstream.RolePrimary, upstream.RoleFollower, upstream.RoleSyncOnly},
			els: [][]string{
				{npV3, npV4, fcuV3, gpV3, gpV4, gbV1, gbV2, cvV1, exch, "engine_futureMethodV1"},
				{exch, cvV1, gbV2, gpV4, fcuV3, npV4, "engine_futureMethodV1"},
				{npV4, fcuV3, gbV2, cvV1}, // sync-only: never asked for a payload
			},
			want: []string{fcuV3, npV4, gpV4, gbV2, cvV1},
		},
		{
			name:  "an EL that does not answer is left out",
			roles: direct3,
			els:   [][]string{{npV4, fcuV3, gpV4}, nil, {npV4, fcuV3, gpV4, gbV2}},
			want:  []string{fcuV3, npV4, gpV4},
		},
		{
			name:  "relays do not count",
			roles: []upstream.Role{upstream.RolePrimary, upstream.RoleRelay},
			els:   [][]string{{npV4, fcuV3, gpV4}, {npV3}},
			want:  []string{fcuV3, npV4, gpV4},
		},
		{
			name:  "no EL answers",
			roles: direct3,
			els:   [][]string{nil, nil, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.roles)
			for i, list := range tt.els {
				if list == nil {
					r.els[i].Set(fakeel.HTTP500, 0)
					continue
				}
				r.els[i].SetCapabilities(list...)
			}
			_, body := r.post("bn1", capabilitiesBody(`1`, all...))
			got, code := capabilitiesAnswer(t, body)
			if tt.want == nil {
				if code != engine.CodeServerError {
					t.Fatalf("answer %s, want a server error", body)
				}
				return
			}
			if code != 0 || !slices.Equal(got, tt.want) {
				t.Fatalf("answer %s, want %q", body, tt.want)
			}
			for i, el := range r.els {
				lists := sentCapabilities(t, el)
				if tt.roles[i] == upstream.RoleRelay {
					if len(lists) != 0 {
						t.Errorf("relay %s was asked for capabilities", el.Name)
					}
					continue
				}
				// First the empty probe, then the beacon node's list narrowed to what every EL
				// supports; an EL that does not answer is probed once.
				want := [][]string{{}, tt.want}
				if tt.els[i] == nil {
					want = want[:1]
				}
				if !slices.EqualFunc(lists, want, slices.Equal) {
					t.Errorf("%s received %q, want %q", el.Name, lists, want)
				}
			}
		})
	}
}

// TestExchangeCapabilitiesStableList: every EL gets one list, the intersection of the beacon
// nodes' lists, whichever beacon node asks; it is not sent again while nothing changed.
func TestExchangeCapabilitiesStableList(t *testing.T) {
	r := newRig(t, direct3)
	withV4 := []string{npV4, fcuV3, gpV4, gbV2, gbV4, exch}
	withoutV4 := []string{npV4, fcuV3, gpV4, gbV2}
	for _, el := range r.els {
		el.SetCapabilities(npV4, fcuV3, gpV4, gbV2, gbV4)
	}
	steps := []struct {
		bn      string
		list    []string
		wantEL  [][]string // what each EL has received in total
		comment string
	}{
		{"bn1", withV4, [][]string{{}, {npV4, fcuV3, gpV4, gbV2, gbV4}}, "the probe, then the first list, without exchangeCapabilities itself"},
		{"bn2", withoutV4, [][]string{{}, {npV4, fcuV3, gpV4, gbV2, gbV4}, {npV4, fcuV3, gpV4, gbV2}}, "the intersection changed"},
		{"bn1", withV4, [][]string{{}, {npV4, fcuV3, gpV4, gbV2, gbV4}, {npV4, fcuV3, gpV4, gbV2}}, "nothing changed: nothing sent"},
		{"bn2", withoutV4, [][]string{{}, {npV4, fcuV3, gpV4, gbV2, gbV4}, {npV4, fcuV3, gpV4, gbV2}}, "nothing changed: nothing sent"},
	}
	for i, s := range steps {
		_, body := r.post(s.bn, capabilitiesBody(fmt.Sprint(i), s.list...))
		got, code := capabilitiesAnswer(t, body)
		if want := []string{fcuV3, npV4, gpV4, gbV2, gbV4}; code != 0 || !slices.Equal(got, want) {
			t.Fatalf("step %d: answer %s, want %q (what the ELs support)", i, body, want)
		}
		for _, el := range r.els {
			sortedIn := func(l [][]string) [][]string {
				out := make([][]string, len(l))
				for k, x := range l {
					out[k] = slices.Clone(x)
					slices.Sort(out[k])
				}
				return out
			}
			if got, want := sortedIn(sentCapabilities(t, el)), sortedIn(s.wantEL); !slices.EqualFunc(got, want, slices.Equal) {
				t.Fatalf("step %d (%s): %s received %q, want %q", i, s.comment, el.Name, got, want)
			}
		}
	}
}

// TestExchangeCapabilitiesRefresh: a cached list is fetched again once it is older than the
// refresh interval, or after the EL failed a request.
func TestExchangeCapabilitiesRefresh(t *testing.T) {
	r := newRig(t, direct3, func(c *Config) { c.CapabilitiesRefresh = time.Minute })
	for _, el := range r.els {
		el.SetCapabilities(npV4, fcuV3, gpV4)
	}
	ask := func(step string, want ...string) {
		t.Helper()
		_, body := r.post("bn1", capabilitiesBody(`1`, npV4, fcuV3, gpV4, gbV2))
		if got, code := capabilitiesAnswer(t, body); code != 0 || !slices.Equal(got, want) {
			t.Fatalf("%s: answer %s, want %q", step, body, want)
		}
	}

	ask("first", fcuV3, npV4, gpV4)
	for _, el := range r.els {
		el.SetCapabilities(npV4, fcuV3, gpV4, gbV2) // upgraded
	}
	r.clk.Advance(59 * time.Second)
	ask("cached", fcuV3, npV4, gpV4)
	r.clk.Advance(time.Second)
	ask("refreshed", fcuV3, npV4, gpV4, gbV2)
	for _, el := range r.els {
		// The probe and the first list; then, once stale, the old list (which promises only
		// what the ELs were known to support) and the list widened by their new answers.
		want := [][]string{{}, {fcuV3, npV4, gpV4}, {fcuV3, npV4, gpV4}, {fcuV3, npV4, gpV4, gbV2}}
		if got := sentCapabilities(t, el); !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%s received %q, want %q", el.Name, got, want)
		}
	}
	// The primary fails a read (it may be restarting): its list is fetched again.
	r.els[0].Set(fakeel.HTTP500, 0)
	r.els[1].Set(fakeel.HTTP500, 0)
	r.els[2].Set(fakeel.HTTP500, 0)
	r.post("bn1", []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
	for _, el := range r.els {
		el.Set(fakeel.Normal, 0)
	}
	r.els[0].SetCapabilities(npV4, fcuV3)
	ask("after a failure", fcuV3, npV4)
}

// TestExchangeCapabilitiesBadParams: a request without a list is refused as an EL would.
func TestExchangeCapabilitiesBadParams(t *testing.T) {
	r := newRig(t, direct3)
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"engine_exchangeCapabilities","params":[]}`,
		`{"jsonrpc":"2.0","id":1,"method":"engine_exchangeCapabilities","params":["x"]}`,
		`{"jsonrpc":"2.0","id":1,"method":"engine_exchangeCapabilities","params":[[1]]}`,
	} {
		_, ans := r.post("bn1", []byte(body))
		if _, code := capabilitiesAnswer(t, ans); code != engine.CodeInvalidParams {
			t.Errorf("%s: answer %s, want invalid params", body, ans)
		}
	}
	for _, el := range r.els {
		if n := len(el.Requests()); n != 0 {
			t.Errorf("%s got %d requests", el.Name, n)
		}
	}
}

// TestExchangeCapabilitiesNoELToldWhatAnotherLacks: a method one EL lacks is never announced
// to any EL (geth switches its blob cache to cell mode when told engine_getBlobsV4), neither
// on first contact nor when an EL that was down comes back older; once every EL supports it,
// every EL is told.
func TestExchangeCapabilitiesNoELToldWhatAnotherLacks(t *testing.T) {
	r := newRig(t, direct3, func(c *Config) { c.CapabilitiesRefresh = time.Minute })
	bnList := []string{npV4, fcuV3, gpV4, gbV2, gbV4, exch}
	r.els[0].SetCapabilities(npV4, fcuV3, gpV4, gbV2, gbV4)
	r.els[1].SetCapabilities(npV4, fcuV3, gpV4, gbV2) // older: no getBlobsV4
	r.els[2].Set(fakeel.HTTP500, 0)                   // down
	r.els[2].SetCapabilities(npV4, fcuV3, gpV4, gbV2)
	ask := func(step string, want ...string) {
		t.Helper()
		_, body := r.post("bn1", capabilitiesBody(`1`, bnList...))
		if got, code := capabilitiesAnswer(t, body); code != 0 || !slices.Equal(got, want) {
			t.Fatalf("%s: answer %s, want %q", step, body, want)
		}
	}
	told := func(el *fakeel.EL) (last []string, v4 bool) {
		for _, l := range sentCapabilities(t, el) {
			last, v4 = l, v4 || slices.Contains(l, gbV4)
		}
		return last, v4
	}

	ask("first contact", fcuV3, npV4, gpV4, gbV2)
	for _, el := range r.els {
		if last, v4 := told(el); v4 || (el != r.els[2] && !slices.Equal(last, []string{fcuV3, npV4, gpV4, gbV2})) {
			t.Fatalf("first contact: %s received %q", el.Name, sentCapabilities(t, el))
		}
	}

	// el2 is upgraded; its list is fetched again once stale. el3 is still down.
	r.els[1].SetCapabilities(npV4, fcuV3, gpV4, gbV2, gbV4)
	r.clk.Advance(time.Minute)
	ask("el2 upgraded", fcuV3, npV4, gpV4, gbV2, gbV4)
	for _, el := range r.els[:2] {
		if last, _ := told(el); !slices.Contains(last, gbV4) {
			t.Fatalf("el2 upgraded: %s last received %q, want getBlobsV4 announced", el.Name, last)
		}
	}

	// el3 comes back without getBlobsV4: the others are told the narrower list again, and el3
	// never hears of getBlobsV4.
	r.els[2].Set(fakeel.Normal, 0)
	ask("el3 back", fcuV3, npV4, gpV4, gbV2)
	for _, el := range r.els {
		last, v4 := told(el)
		if slices.Contains(last, gbV4) || (el == r.els[2] && v4) {
			t.Fatalf("el3 back: %s received %q", el.Name, sentCapabilities(t, el))
		}
	}
}
