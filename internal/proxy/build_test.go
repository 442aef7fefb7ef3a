package proxy

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// getPayloadBody is an engine_getPayloadV3 for payload id pid.
func getPayloadBody(id, pid string) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"engine_getPayloadV3","params":["%s"]}`, id, pid)
}

// startBuild has bn send block 1 and a forkchoiceUpdated on it with payload attributes,
// and returns the payloadId it got.
func (r *rig) startBuild(bn string) string {
	r.t.Helper()
	r.post(bn, newPayloadBody(`"np"`, 1))
	code, body := r.post(bn, forkchoiceBody(`"fcu"`, 1, true))
	s, pid := payloadStatus(r.t, body)
	if code != 200 || s != "VALID" || pid == nil {
		r.t.Fatalf("forkchoiceUpdated with attributes: HTTP %d %s", code, body)
	}
	return *pid
}

// built is what a fake EL's getPayload answer says about the build.
type built struct {
	BuiltBy   string `json:"builtBy"`
	PayloadID string `json:"payloadId"`
}

// payloadAnswer decodes a getPayload answer; code is the JSON-RPC error code (0 for a result).
func payloadAnswer(t *testing.T, body []byte) (b built, code int, id string) {
	t.Helper()
	a := decode(t, body)
	if a.Error != nil {
		return built{}, a.Error.Code, string(a.ID)
	}
	if err := json.Unmarshal(a.Result, &b); err != nil {
		t.Fatalf("getPayload result %s: %v", a.Result, err)
	}
	return b, 0, string(a.ID)
}

// gotGetPayload lists the payload ids el was asked for.
func gotGetPayload(el *fakeel.EL) []string {
	var ids []string
	for _, rec := range el.Requests() {
		if rec.Class == engine.ClassGetPayload {
			ids = append(ids, rec.PayloadID)
		}
	}
	return ids
}

// TestGetPayloadRouting: getPayload goes to the EL that issued the payloadId, whatever
// happened to the primary in between.
func TestGetPayloadRouting(t *testing.T) {
	syncOnly := []upstream.Role{upstream.RolePrimary, upstream.RoleSyncOnly, upstream.RoleFollower}
	tests := []struct {
		name  string
		roles []upstream.Role
		// beforeBuild and afterBuild script the ELs around the forkchoiceUpdated.
		beforeBuild, afterBuild func(r *rig)
		wantBuiltBy             []string // any of
		wantAsked               []int    // ELs that must have been asked for the payload
		notAsked                []int    // ELs that must not have been
		maxTook                 time.Duration
	}{
		{
			name: "primary issued and answers", roles: direct3,
			wantBuiltBy: []string{"el1"}, wantAsked: []int{0}, notAsked: []int{1, 2}, maxTook: 500 * time.Millisecond,
		},
		{
			name: "primary died between forkchoiceUpdated and getPayload", roles: direct3,
			afterBuild:  func(r *rig) { r.els[0].Close() },
			wantBuiltBy: []string{"el2", "el3"}, maxTook: 500 * time.Millisecond,
		},
		{
			name: "primary refuses getPayload", roles: direct3,
			afterBuild:  func(r *rig) { r.els[0].Set(fakeel.HTTP500, 0) },
			wantBuiltBy: []string{"el2", "el3"}, wantAsked: []int{0}, maxTook: 500 * time.Millisecond,
		},
		{
			name: "primary hangs on getPayload", roles: direct3,
			afterBuild:  func(r *rig) { r.els[0].Set(fakeel.Hang, 0) },
			wantBuiltBy: []string{"el2", "el3"}, wantAsked: []int{0}, maxTook: 900 * time.Millisecond,
		},
		{
			name: "primary down when the build was asked for: a follower builds", roles: direct3,
			beforeBuild: func(r *rig) {
				r.els[0].Set(fakeel.HTTP500, 0)
				r.els[2].SetPayloadIDBase(1 << 62) // el3 issues another id: only el2's is routed
				r.els[2].Set(fakeel.Slow, 300*time.Millisecond)
			},
			wantBuiltBy: []string{"el2"}, wantAsked: []int{1}, notAsked: []int{0, 2}, maxTook: 500 * time.Millisecond,
		},
		{
			name: "primary down, the follower builds, the sync-only EL never", roles: syncOnly,
			beforeBuild: func(r *rig) { r.els[0].Set(fakeel.HTTP500, 0) },
			wantBuiltBy: []string{"el3"}, wantAsked: []int{2}, notAsked: []int{0, 1}, maxTook: 500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, tt.roles)
			for _, el := range r.els {
				el.SetStrictPayloads(true)
			}
			if tt.beforeBuild != nil {
				tt.beforeBuild(r)
			}
			pid := r.startBuild("bn1")
			r.waitIdle()
			if tt.afterBuild != nil {
				tt.afterBuild(r)
			}
			start := time.Now()
			_, body := r.post("bn1", getPayloadBody(`"gp"`, pid))
			took := time.Since(start)
			b, code, id := payloadAnswer(t, body)
			if code != 0 || !slices.Contains(tt.wantBuiltBy, b.BuiltBy) || b.PayloadID != pid || id != `"gp"` {
				t.Fatalf("getPayload(%s) = %s; want a payload built by %v", pid, body, tt.wantBuiltBy)
			}
			if took > tt.maxTook {
				t.Errorf("getPayload took %v, want under %v", took, tt.maxTook)
			}
			for _, i := range tt.wantAsked {
				if got := gotGetPayload(r.els[i]); !slices.Contains(got, pid) {
					t.Errorf("%s was asked for %v, want %s", r.els[i].Name, got, pid)
				}
			}
			for _, i := range tt.notAsked {
				if got := gotGetPayload(r.els[i]); len(got) != 0 {
					t.Errorf("%s was asked for payloads %v; it did not issue %s or was not needed", r.els[i].Name, got, pid)
				}
			}
			for i, role := range tt.roles {
				if role != upstream.RoleSyncOnly {
					continue
				}
				for _, rec := range r.els[i].Requests() {
					if rec.Attrs {
						t.Errorf("sync-only %s got a forkchoiceUpdated with payload attributes", r.els[i].Name)
					}
				}
			}
		})
	}
}

// TestGetPayloadUnknownID: an id no EL issued gets -38001; within one PayloadIDTTL of
// start-up (an id from before a restart) the ELs that build are asked first.
func TestGetPayloadUnknownID(t *testing.T) {
	roles := []upstream.Role{upstream.RolePrimary, upstream.RoleSyncOnly, upstream.RoleFollower, upstream.RoleRelay}
	const ttl = time.Minute
	tests := []struct {
		name      string
		strict    bool          // the ELs answer -38001 for ids they did not issue
		sinceBoot time.Duration // clock advance after the proxy started
		build     bool          // a build happened (at start-up), and its id is asked for
		wantCode  int
		wantAsked []int
	}{
		{name: "after start-up: answered by sync-proxy", strict: true, sinceBoot: ttl, wantCode: engine.CodeUnknownPayload},
		{name: "after start-up, lenient ELs: still never forwarded", sinceBoot: 2 * ttl, wantCode: engine.CodeUnknownPayload},
		{name: "expired", build: true, sinceBoot: ttl, wantCode: engine.CodeUnknownPayload},
		{name: "just before expiry", build: true, sinceBoot: ttl - time.Second, wantAsked: []int{0}},
		{name: "after a restart: every builder says unknown", strict: true, sinceBoot: ttl - time.Second, wantCode: engine.CodeUnknownPayload, wantAsked: []int{0, 2}},
		{name: "after a restart: the primary has it", wantAsked: []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, roles, func(c *Config) { c.PayloadIDTTL = ttl })
			pid := "0x00000000000000ab"
			for _, el := range r.els {
				el.SetStrictPayloads(tt.strict)
			}
			if tt.build {
				pid = r.startBuild("bn1")
				r.waitIdle()
			}
			r.clk.Advance(tt.sinceBoot)
			_, body := r.post("bn1", getPayloadBody(`7`, pid))
			b, code, id := payloadAnswer(t, body)
			if code != tt.wantCode || id != `7` {
				t.Fatalf("getPayload(%s) = %s; want code %d", pid, body, tt.wantCode)
			}
			if code == 0 && b.BuiltBy != "el1" {
				t.Fatalf("payload built by %q, want the primary", b.BuiltBy)
			}
			for i, el := range r.els {
				if asked := len(gotGetPayload(el)) > 0; asked != slices.Contains(tt.wantAsked, i) {
					t.Errorf("%s asked = %v, want %v", el.Name, asked, !asked)
				}
			}
		})
	}
}

// TestGetPayloadOtherIssuerID: when the ELs issued different ids for the same build and the
// book knows the build, a getPayload for the primary's id goes to a follower with the
// follower's own id, and the beacon node gets it under its request id.
func TestGetPayloadOtherIssuerID(t *testing.T) {
	r := newRig(t, direct3)
	d := &upstream.Delivery{}
	r.p.builders.issue("0x01", 0, true, d)
	r.p.builders.issue("0x02", 1, false, d)
	r.p.builders.issue("0x03", 2, false, &upstream.Delivery{}) // another build
	r.els[0].Close()
	_, body := r.post("bn1", getPayloadBody(`"x"`, "0x01"))
	b, code, id := payloadAnswer(t, body)
	if code != 0 || b.BuiltBy != "el2" || b.PayloadID != "0x02" || id != `"x"` {
		t.Fatalf("getPayload(0x01) = %s; want el2's payload 0x02 under id \"x\"", body)
	}
	if got := gotGetPayload(r.els[2]); len(got) != 0 {
		t.Fatalf("el3 was asked for %v; it built another payload", got)
	}
}

// TestGetPayloadIssuerSaysUnknown: an issuer that answers -38001 passes the turn on.
func TestGetPayloadIssuerSaysUnknown(t *testing.T) {
	r := newRig(t, direct3)
	pid := r.startBuild("bn1")
	r.waitIdle()
	r.els[0].SetError(engine.MethodGetPayloadV3, engine.CodeUnknownPayload, "Unknown payload")
	_, body := r.post("bn1", getPayloadBody(`1`, pid))
	if b, code, _ := payloadAnswer(t, body); code != 0 || b.BuiltBy == "el1" {
		t.Fatalf("getPayload = %s; want a follower's payload", body)
	}
	for _, el := range r.els {
		el.SetError(engine.MethodGetPayloadV3, engine.CodeUnknownPayload, "Unknown payload")
	}
	_, body = r.post("bn1", getPayloadBody(`2`, pid))
	if _, code, _ := payloadAnswer(t, body); code != engine.CodeUnknownPayload {
		t.Fatalf("getPayload = %s; want -38001 when every issuer says so", body)
	}
}

// TestBuildBook: ordering, expiry, bounds and build groups.
func TestBuildBook(t *testing.T) {
	type op struct {
		id      string
		lane    int
		primary bool
		group   int // 0: none
		advance time.Duration
	}
	tests := []struct {
		name  string
		ops   []op
		ask   string
		want  []target
		state buildState
	}{
		{"primary first", []op{{id: "a", lane: 2}, {id: "a", lane: 0, primary: true}, {id: "a", lane: 1}},
			"a", []target{{0, ""}, {2, ""}, {1, ""}}, buildKnown},
		{"issued again by the same lane", []op{{id: "a", lane: 1}, {id: "a", lane: 1}},
			"a", []target{{1, ""}}, buildKnown},
		{"unknown", []op{{id: "a", lane: 1}}, "b", nil, buildUnknown},
		{"expired", []op{{id: "a", lane: 1}, {advance: time.Minute}}, "a", nil, buildExpired},
		{"a second issue does not extend the life", []op{{id: "a", lane: 1}, {advance: 59 * time.Second}, {id: "a", lane: 2}, {advance: time.Second}},
			"a", nil, buildExpired},
		{"issued again after expiry: a new build", []op{{id: "a", lane: 1}, {advance: time.Minute}, {id: "a", lane: 2}},
			"a", []target{{2, ""}}, buildKnown},
		{"other ids of the same build follow", []op{{id: "p", lane: 0, primary: true, group: 1}, {id: "q", lane: 1, group: 1}, {id: "r", lane: 2, group: 2}, {id: "s", lane: 2, group: 1}},
			"p", []target{{0, ""}, {1, "q"}, {2, "s"}}, buildKnown},
		{"expired ids of the same build do not", []op{{id: "q", lane: 1, group: 1}, {advance: 30 * time.Second}, {id: "p", lane: 0, primary: true, group: 1}, {advance: 30 * time.Second}},
			"p", []target{{0, ""}}, buildKnown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewManual(time.Unix(1_700_000_000, 0))
			b := newBuildBook(clk, time.Minute)
			groups := map[int]*upstream.Delivery{}
			for _, o := range tt.ops {
				clk.Advance(o.advance)
				if o.id == "" {
					continue
				}
				var g *upstream.Delivery
				if o.group != 0 {
					if groups[o.group] == nil {
						groups[o.group] = &upstream.Delivery{}
					}
					g = groups[o.group]
				}
				b.issue(o.id, o.lane, o.primary, g)
			}
			got, st := b.route(tt.ask)
			if st != tt.state || !slices.Equal(got, tt.want) {
				t.Fatalf("route(%s) = %v, %v; want %v, %v", tt.ask, got, st, tt.want, tt.state)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		b := newBuildBook(clock.NewManual(time.Unix(0, 0)), time.Hour)
		for i := range buildBookSize + 10 {
			b.issue(fmt.Sprint(i), 0, true, nil)
		}
		if _, ok := b.get("9"); ok {
			t.Fatal("the oldest ids were kept past the bound")
		}
		if _, ok := b.get("10"); !ok {
			t.Fatal("id 10 was forgotten too early")
		}
		if b.items.Len() != buildBookSize {
			t.Fatalf("%d ids kept, want %d", b.items.Len(), buildBookSize)
		}
	})
}

// TestPayloadIDTTL: the default lifetime follows the slot duration.
func TestPayloadIDTTL(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want time.Duration
	}{
		{Config{PayloadIDTTL: time.Second}, time.Second},
		{Config{}, defaultPayloadIDTTL},
	} {
		if got := payloadIDTTL(tt.cfg); got != tt.want {
			t.Errorf("payloadIDTTL(%+v) = %v, want %v", tt.cfg, got, tt.want)
		}
	}
	c := Config{}
	c.Election.SlotDuration = 6 * time.Second
	if got := payloadIDTTL(c); got != 60*time.Second {
		t.Errorf("payloadIDTTL(6s slots) = %v, want 60s", got)
	}
}
