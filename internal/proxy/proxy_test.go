package proxy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

var (
	mirror3 = []upstream.Role{upstream.RoleFollower, upstream.RoleFollower, upstream.RoleFollower}
	direct3 = []upstream.Role{upstream.RolePrimary, upstream.RoleFollower, upstream.RoleFollower}
)

// TestOrderedFanOut: 1,000 newPayload/forkchoiceUpdated pairs sent by 3 concurrent beacon
// nodes reach each of 3 ELs in order, each block once per EL, and only the writer's
// forkchoiceUpdated reaches any EL.
func TestOrderedFanOut(t *testing.T) {
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles)
		const blocks = 1000
		// bn0 speaks first, so it is elected; then the three race on every block, as beacon
		// nodes do: each slot all of them send the slot's block, in whatever order.
		r.post("bn0", newPayloadBody(`"bn0-np-0"`, 1))
		for n := uint64(1); n <= blocks; n++ {
			r.clk.Set(time.Unix(int64(blockTS(n))+1, 0))
			concurrently(3, func(i int) {
				bn := fmt.Sprintf("bn%d", i)
				if code, body := r.post(bn, newPayloadBody(fmt.Sprintf(`"%s-np-%d"`, bn, n), n)); code != 200 {
					t.Errorf("%s newPayload %d: HTTP %d %s", bn, n, code, body)
				}
				if code, body := r.post(bn, forkchoiceBody(fmt.Sprintf(`"%s-fcu-%d"`, bn, n), n, false)); code != 200 {
					t.Errorf("%s forkchoiceUpdated %d: HTTP %d %s", bn, n, code, body)
				}
			})
		}
		r.waitIdle()
		if w, _ := r.p.Tracker().Writer(); w != "bn0" {
			t.Fatalf("writer = %q, want bn0", w)
		}
		for _, el := range r.els {
			var blocksSeen []uint64
			lastHead := uint64(0)
			seen := map[engine.Hash]bool{}
			for _, rec := range el.Requests() {
				switch rec.Class {
				case engine.ClassNewPayload:
					if seen[rec.Block.Hash] {
						t.Fatalf("%s got block %d twice", el.Name, rec.Block.Number)
					}
					seen[rec.Block.Hash] = true
					blocksSeen = append(blocksSeen, rec.Block.Number)
				case engine.ClassForkchoice:
					if !strings.HasPrefix(rec.ID, `"bn0-`) {
						t.Fatalf("%s got a forkchoiceUpdated from a beacon node that is not the writer: id %s", el.Name, rec.ID)
					}
					var n uint64
					fmt.Sscanf(strings.Trim(rec.ID, `"`), "bn0-fcu-%d", &n)
					if n < lastHead {
						t.Fatalf("%s: forkchoiceUpdated head %d after head %d", el.Name, n, lastHead)
					}
					if !seen[rec.Head] {
						t.Fatalf("%s: forkchoiceUpdated head %d before its newPayload", el.Name, n)
					}
					lastHead = n
				}
			}
			if len(blocksSeen) != blocks || !slices.IsSorted(blocksSeen) {
				t.Fatalf("%s got %d blocks (want %d, in order; sorted=%v)", el.Name, len(blocksSeen), blocks, slices.IsSorted(blocksSeen))
			}
			if lastHead != blocks {
				t.Fatalf("%s: last head %d, want %d", el.Name, lastHead, blocks)
			}
		}
	})
}

// TestFollowersAddNoLatency: with one follower that never answers and one that answers after
// 2 s, a beacon node's request in direct mode returns in the primary's time, and goroutines
// and memory stay flat over 10,000 requests. The backlog budget (2 MiB) is spent by the
// two stalled followers, which fall behind; the primary never sheds.
func TestFollowersAddNoLatency(t *testing.T) {
	r := newRig(t, direct3, withBacklog(2<<20))
	r.els[1].Set(fakeel.Hang, 0)
	r.els[2].Set(fakeel.Slow, 2*time.Second)

	const requests = 10000
	var lat []time.Duration
	var baseGoroutines int
	var baseHeap uint64
	for i := range requests {
		n := uint64(i + 1)
		body := newPayloadBody(fmt.Sprintf("%d", i), n)
		if i%2 == 1 {
			body = forkchoiceBody(fmt.Sprintf("%d", i), n-1, false)
		}
		start := time.Now()
		code, ans := r.post("bn1", body)
		lat = append(lat, time.Since(start))
		if code != 200 {
			t.Fatalf("request %d: HTTP %d", i, code)
		}
		if s, _ := payloadStatus(t, ans); s != "VALID" {
			t.Fatalf("request %d: status %s, want the primary's VALID", i, s)
		}
		if i == 1000 { // queues are full by now: the steady state
			baseGoroutines, baseHeap = goroutinesAndHeap()
		}
	}
	goroutines, heap := goroutinesAndHeap()
	slices.Sort(lat)
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("beacon node latency over %d requests: p50 %v p99 %v max %v; goroutines %d→%d; heap %d→%d KiB",
		requests, p50, p99, worst, baseGoroutines, goroutines, baseHeap>>10, heap>>10)
	if p99 > 50*time.Millisecond {
		t.Errorf("p99 %v: followers are adding latency", p99)
	}
	if goroutines > baseGoroutines+10 {
		t.Errorf("goroutines grew from %d to %d", baseGoroutines, goroutines)
	}
	if heap > baseHeap+32<<20 {
		t.Errorf("heap grew from %d to %d KiB", baseHeap>>10, heap>>10)
	}
	st := r.p.Lanes()[1].Stats()
	if !st.Behind || st.ShedBlocks == 0 || st.Drops[upstream.DropShed] == 0 {
		t.Errorf("the hung follower's lane is not behind: %+v", st)
	}
	if p := r.p.Lanes()[0].Stats(); p.ShedBlocks != 0 || p.Behind {
		t.Errorf("the primary shed %d blocks", p.ShedBlocks)
	}
	if u := r.p.Backlog().Usage(); u.Peak > u.Limit+1<<20 {
		t.Errorf("backlog peaked at %d bytes, budget %d", u.Peak, u.Limit)
	}
}

func goroutinesAndHeap() (int, uint64) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return runtime.NumGoroutine(), m.HeapAlloc
}

// TestWriterFailover: the writer loses the role at the first request after the silence
// timeout, driven by the injected clock.
func TestWriterFailover(t *testing.T) {
	r := newRig(t, mirror3, withElection(beacon.Config{SlotDuration: 12 * time.Second, SilenceTimeout: 18 * time.Second, PeerMargin: 12 * time.Second}))
	r.post("bn1", newPayloadBody(`1`, 1))
	r.post("bn1", forkchoiceBody(`2`, 1, false))
	r.waitIdle() // so the next update does not supersede this one in the queues
	r.post("bn2", newPayloadBody(`3`, 1))
	r.post("bn2", forkchoiceBody(`"bn2-a"`, 1, false)) // filtered: bn1 writes

	r.clk.Advance(18 * time.Second) // exactly the timeout: bn1 is still the writer
	r.post("bn2", forkchoiceBody(`"bn2-b"`, 1, false))
	if w, _ := r.p.Tracker().Writer(); w != "bn1" {
		t.Fatalf("writer after exactly the silence timeout = %q, want bn1", w)
	}
	r.clk.Advance(time.Millisecond)
	r.post("bn2", newPayloadBody(`4`, 2))
	r.post("bn2", forkchoiceBody(`"bn2-c"`, 2, false)) // the first request after the timeout
	if w, _ := r.p.Tracker().Writer(); w != "bn2" {
		t.Fatalf("writer after the silence timeout = %q, want bn2", w)
	}
	r.post("bn1", forkchoiceBody(`"bn1-late"`, 1, false)) // the old writer is back, behind
	r.waitIdle()
	for _, el := range r.els {
		var ids []string
		for _, rec := range el.Requests() {
			if rec.Class == engine.ClassForkchoice {
				ids = append(ids, rec.ID)
			}
		}
		if want := []string{`2`, `"bn2-c"`}; !slices.Equal(ids, want) {
			t.Errorf("%s got forkchoiceUpdated ids %v, want %v", el.Name, ids, want)
		}
	}
}

// TestIdentityByAddress: a beacon node at [::1] and one at 127.0.0.1 are two beacon nodes.
func TestIdentityByAddress(t *testing.T) {
	r := newRig(t, mirror3)
	for _, remote := range []string{"[::1]:40000", "127.0.0.1:40000", "[::1]:40001", "[::ffff:127.0.0.1]:40002"} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(newPayloadBody(`1`, 1))))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		r.p.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: HTTP %d", remote, rec.Code)
		}
	}
	var names []string
	for _, bn := range r.p.Tracker().Snapshot() {
		names = append(names, bn.Name)
	}
	if want := []string{"127.0.0.1", "::1"}; !slices.Equal(names, want) {
		t.Fatalf("beacon nodes = %v, want %v", names, want)
	}
}

func TestIdentify(t *testing.T) {
	r := newRig(t, mirror3)
	r.p.cfg.TrustedProxies = mustPrefixes("10.0.0.1/32", "fd00::/64")
	for _, tc := range []struct {
		name, remote, path, xff, relayBN, jwt string
		want                                  Identity
	}{
		{name: "jwt wins", remote: "127.0.0.1:1", path: "/bn/x", jwt: "lh1", want: Identity{"lh1", "jwt"}},
		{name: "path", remote: "127.0.0.1:1", path: "/bn/teku-2", want: Identity{"teku-2", "path"}},
		{name: "bad path name", remote: "127.0.0.1:1", path: "/bn/a%20b", want: Identity{"127.0.0.1", "address"}},
		{name: "ipv6", remote: "[2001:db8::1]:9", want: Identity{"2001:db8::1", "address"}},
		{name: "xff untrusted ignored", remote: "192.0.2.7:1", xff: "198.51.100.1", want: Identity{"192.0.2.7", "address"}},
		{name: "xff trusted", remote: "10.0.0.1:1", xff: "198.51.100.1", want: Identity{"198.51.100.1", "forwarded"}},
		{name: "xff chain rightmost untrusted", remote: "10.0.0.1:1", xff: "203.0.113.9, 198.51.100.1, 10.0.0.1", want: Identity{"198.51.100.1", "forwarded"}},
		{name: "xff v6 trusted", remote: "[fd00::5]:1", xff: "2001:db8::7", want: Identity{"2001:db8::7", "forwarded"}},
		{name: "xff garbage", remote: "10.0.0.1:1", xff: "not-an-ip", want: Identity{"10.0.0.1", "address"}},
		{name: "relay header trusted", remote: "10.0.0.1:1", relayBN: "bn-a", want: Identity{"bn-a", "relay"}},
		{name: "relay header untrusted", remote: "192.0.2.7:1", relayBN: "bn-a", want: Identity{"192.0.2.7", "address"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/"
			}
			req := httptest.NewRequest(http.MethodPost, path, nil)
			req.RemoteAddr = tc.remote
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.relayBN != "" {
				req.Header.Set(upstream.HeaderBN, tc.relayBN)
			}
			if got, err := r.p.identify(req, tc.jwt); err != nil || got != tc.want {
				t.Fatalf("identify = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// TestDirectAnswers: the answers a beacon node gets in direct mode.
func TestDirectAnswers(t *testing.T) {
	r := newRig(t, direct3)
	// The writer's update is forwarded and answered by the primary.
	r.post("bn1", newPayloadBody(`1`, 1))
	code, body := r.post("bn1", forkchoiceBody(`"w"`, 1, true))
	if s, pid := payloadStatus(t, body); code != 200 || s != "VALID" || pid == nil {
		t.Fatalf("writer's forkchoiceUpdated: HTTP %d %s", code, body)
	}
	// A second beacon node's copy of the block is not sent again, and gets the answer with
	// its own id.
	code, body = r.post("bn2", newPayloadBody(`"bn2-np"`, 1))
	if a := decode(t, body); code != 200 || string(a.ID) != `"bn2-np"` {
		t.Fatalf("duplicate newPayload answer: HTTP %d %s", code, body)
	}
	// Its forkchoiceUpdated on the same head is not forwarded: it gets the ELs' verdict on
	// that head, with no payloadId.
	code, body = r.post("bn2", forkchoiceBody(`"bn2-fcu"`, 1, false))
	if s, pid := payloadStatus(t, body); code != 200 || s != "VALID" || pid != nil {
		t.Fatalf("non-writer forkchoiceUpdated: HTTP %d %s", code, body)
	}
	// On a head the ELs have not judged: SYNCING.
	r.post("bn2", newPayloadBody(`5`, 2))
	code, body = r.post("bn2", forkchoiceBody(`"bn2-fcu2"`, 2, false))
	if s, _ := payloadStatus(t, body); code != 200 || s != "SYNCING" {
		t.Fatalf("non-writer forkchoiceUpdated on an unjudged head: HTTP %d %s", code, body)
	}
	// A read goes to the primary.
	code, body = r.post("bn2", []byte(`{"jsonrpc":"2.0","id":9,"method":"eth_chainId","params":[]}`))
	if a := decode(t, body); code != 200 || string(a.Result) != `"0x10"` {
		t.Fatalf("eth_chainId: HTTP %d %s", code, body)
	}
	r.waitIdle()
	for _, el := range r.els {
		np := 0
		for _, m := range el.Methods() {
			if m == "engine_newPayloadV3" {
				np++
			}
		}
		if np != 2 {
			t.Errorf("%s got %d newPayloads, want 2 (one per block)", el.Name, np)
		}
	}
	if got := r.els[0].Methods(); !slices.Contains(got, "eth_chainId") || slices.Contains(r.els[1].Methods(), "eth_chainId") {
		t.Errorf("eth_chainId went to %v / %v, want the primary only", got, r.els[1].Methods())
	}
}

// TestPrimaryFailover: when the primary fails, the beacon node gets a follower's answer.
func TestPrimaryFailover(t *testing.T) {
	for _, tc := range []struct {
		name     string
		behavior fakeel.Behavior
		maxWait  time.Duration
	}{
		{"primary refuses", fakeel.HTTP500, 500 * time.Millisecond},
		{"primary garbage", fakeel.Garbage, 500 * time.Millisecond},
		{"primary hangs", fakeel.Hang, 3 * time.Second}, // FailoverAfter (1s) then the follower's answer
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, direct3)
			r.els[0].Set(tc.behavior, 0)
			start := time.Now()
			code, body := r.post("bn1", newPayloadBody(`7`, 1))
			took := time.Since(start)
			if s, _ := payloadStatus(t, body); code != 200 || s != "VALID" {
				t.Fatalf("HTTP %d %s", code, body)
			}
			if took > tc.maxWait {
				t.Fatalf("answer took %v, want under %v", took, tc.maxWait)
			}
		})
	}
	t.Run("all fail", func(t *testing.T) {
		r := newRig(t, direct3)
		for _, el := range r.els {
			el.Set(fakeel.HTTP500, 0)
		}
		code, body := r.post("bn1", newPayloadBody(`8`, 1))
		a := decode(t, body)
		if code != 200 || a.Error == nil || a.Error.Code != engine.CodeServerError || !strings.Contains(a.Error.Message, "el1: http status 500") {
			t.Fatalf("HTTP %d %s", code, body)
		}
	})
}

// TestMirrorAnswersAtOnce: in mirror mode the answer never waits for an EL.
func TestMirrorAnswersAtOnce(t *testing.T) {
	r := newRig(t, mirror3)
	for _, el := range r.els {
		el.Set(fakeel.Hang, 0)
	}
	for i, body := range [][]byte{newPayloadBody(`"np0"`, 1), forkchoiceBody(`"fcu0"`, 1, true), forkchoiceBody(`null`, 1, false)} {
		start := time.Now()
		code, ans := r.post("bn1", body)
		if took := time.Since(start); took > 200*time.Millisecond {
			t.Fatalf("request %d took %v", i, took)
		}
		if s, pid := payloadStatus(t, ans); code != 200 || s != "SYNCING" || pid != nil {
			t.Fatalf("request %d: HTTP %d %s", i, code, ans)
		}
	}
	_, ans := r.post("bn1", []byte(`{"jsonrpc":"2.0","id":3,"method":"engine_getPayloadV3","params":["0x0000000000000001"]}`))
	if a := decode(t, ans); a.Error == nil || a.Error.Code != engine.CodeMethodNotFound {
		t.Fatalf("getPayload in mirror mode: %s", ans)
	}
}

// TestBadInput: every bad request gets an answer with a body and nothing is forwarded.
func TestBadInput(t *testing.T) {
	r := newRig(t, direct3)
	big := make([]byte, 33<<20)
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        []byte
		wantHTTP    int
		wantCode    int
	}{
		{"get", http.MethodGet, "", nil, 405, 0},
		{"healthz", http.MethodGet, "", nil, 200, 0},
		{"put", http.MethodPut, "application/json", []byte(`{}`), 405, 0},
		{"wrong content type", http.MethodPost, "text/plain", []byte(`{}`), 415, 0},
		{"too large", http.MethodPost, "application/json", big, 413, 0},
		{"empty", http.MethodPost, "application/json", nil, 200, engine.CodeParseError},
		{"not json", http.MethodPost, "application/json", []byte(`hello`), 200, engine.CodeParseError},
		{"truncated", http.MethodPost, "application/json", newPayloadBody(`1`, 1)[:200], 200, engine.CodeParseError},
		{"empty batch", http.MethodPost, "application/json", []byte(`[]`), 200, engine.CodeInvalidRequest},
		{"no method", http.MethodPost, "application/json", []byte(`{"jsonrpc":"2.0","id":1}`), 200, engine.CodeInvalidRequest},
		{"bad params", http.MethodPost, "application/json", []byte(`{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadV3","params":[{"blockHash":"0x12"}]}`), 200, engine.CodeInvalidParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/"
			if tc.name == "healthz" {
				path = "/healthz"
			}
			req, _ := http.NewRequest(tc.method, r.srv.URL+path, strings.NewReader(string(tc.body)))
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			resp, err := r.srv.Client().Do(req)
			if err != nil {
				t.Fatalf("do: %v", err)
			}
			defer resp.Body.Close()
			var buf strings.Builder
			_, _ = fmt.Fprint(&buf, "")
			b := make([]byte, 4096)
			n, _ := resp.Body.Read(b)
			if resp.StatusCode != tc.wantHTTP {
				t.Fatalf("HTTP %d, want %d (%s)", resp.StatusCode, tc.wantHTTP, b[:n])
			}
			if n == 0 {
				t.Fatalf("empty body")
			}
			if tc.wantCode != 0 {
				if a := decode(t, b[:n]); a.Error == nil || a.Error.Code != tc.wantCode {
					t.Fatalf("answer %s, want error code %d", b[:n], tc.wantCode)
				}
			}
		})
	}
	r.waitIdle()
	for _, el := range r.els {
		if got := el.Requests(); len(got) != 0 {
			t.Errorf("%s received %d requests from bad input", el.Name, len(got))
		}
	}
}

// TestRelayLoop: a chained request that already passed this proxy is refused.
func TestRelayLoop(t *testing.T) {
	r := newRig(t, mirror3)
	r.p.cfg.TrustedProxies = mustPrefixes("127.0.0.1/32")
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/", strings.NewReader(string(newPayloadBody(`1`, 1))))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(upstream.HeaderVia, "other,test-proxy")
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	if a := decode(t, b[:n]); a.Error == nil || !strings.Contains(a.Error.Message, "loop") {
		t.Fatalf("answer %s, want a loop error", b[:n])
	}
	r.waitIdle()
	if got := r.els[0].Requests(); len(got) != 0 {
		t.Fatalf("a looping request was forwarded")
	}
}

// TestFailoverPrefersVerdicts: once the primary is late, a follower's VALID is used at once,
// but a follower's SYNCING does not beat the primary's VALID that is still coming.
func TestFailoverPrefersVerdicts(t *testing.T) {
	t.Run("follower verdict", func(t *testing.T) {
		r := newRig(t, direct3)
		r.els[0].Set(fakeel.Slow, 3*time.Second)
		r.els[1].SetStatus(engine.StatusSyncing)
		start := time.Now()
		_, body := r.post("bn1", newPayloadBody(`1`, 1))
		took := time.Since(start)
		if s, _ := payloadStatus(t, body); s != "VALID" || took > 2500*time.Millisecond {
			t.Fatalf("got %s after %v, want el3's VALID after the 1 s failover delay", s, took)
		}
	})
	t.Run("primary verdict beats follower SYNCING", func(t *testing.T) {
		r := newRig(t, direct3)
		r.els[0].Set(fakeel.Slow, 2*time.Second)
		r.els[1].SetStatus(engine.StatusSyncing)
		r.els[2].SetStatus(engine.StatusSyncing)
		_, body := r.post("bn1", newPayloadBody(`1`, 1))
		if s, _ := payloadStatus(t, body); s != "VALID" {
			t.Fatalf("got %s, want the primary's VALID", s)
		}
	})
}

// TestStuckPrimaryNotWaitedFor: with the primary hung, only the first request waits the
// failover delay; later ones get a follower's answer at once.
func TestStuckPrimaryNotWaitedFor(t *testing.T) {
	r := newRig(t, direct3)
	r.els[0].Set(fakeel.Hang, 0)
	for i := uint64(1); i <= 3; i++ {
		start := time.Now()
		_, body := r.post("bn1", newPayloadBody(fmt.Sprint(i), i))
		took := time.Since(start)
		if s, _ := payloadStatus(t, body); s != "VALID" {
			t.Fatalf("request %d: %s", i, s)
		}
		if i == 1 && took < time.Second {
			t.Fatalf("first request answered in %v, before the failover delay", took)
		}
		if i > 1 && took > 500*time.Millisecond {
			t.Fatalf("request %d waited %v for a primary known to be stuck", i, took)
		}
	}
}

// TestNonWriterBuilds: a validator behind a beacon node that is not the writer can still
// propose on the writer's head or a block extending it (the writer may have gone silent a
// moment ago); a build on anything else, and its plain head updates, are not forwarded.
func TestNonWriterBuilds(t *testing.T) {
	r := newRig(t, direct3)
	for n := uint64(1); n <= 5; n++ {
		r.post("bn1", newPayloadBody(fmt.Sprint(n), n))
		r.post("bn1", forkchoiceBody(fmt.Sprint(100+n), n, false))
	}
	r.post("bn2", newPayloadBody(`"bn2-np6"`, 6)) // bn1 (the writer) is quiet about block 6
	for _, tc := range []struct {
		name      string
		body      []byte
		forwarded bool
	}{
		{"build on the writer's head", forkchoiceBody(`"on5"`, 5, true), true},
		{"build on a block extending it", forkchoiceBody(`"on6"`, 6, true), true},
		{"build on an older block", forkchoiceBody(`"on4"`, 4, true), false},
		{"plain update", forkchoiceBody(`"plain6"`, 6, false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, body := r.post("bn2", tc.body)
			status, pid := payloadStatus(t, body)
			if got := pid != nil; got != tc.forwarded || (tc.forwarded && status != "VALID") {
				t.Fatalf("answer %s (payload id %v), want forwarded=%v", body, pid != nil, tc.forwarded)
			}
		})
	}
	r.waitIdle()
	if w, _ := r.p.Tracker().Writer(); w != "bn1" {
		t.Fatalf("writer %s, want bn1", w)
	}
}
