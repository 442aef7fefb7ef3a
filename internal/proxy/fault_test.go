package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// The fault matrix: one execution client or beacon node misbehaves, and each case asserts
// what the beacon nodes got, what every EL got, and that nothing else was held up: the
// other ELs receive every request in order at normal latency and the beacon node's answer
// time is bounded. Each case logs one line
//
//	FAULT <case>/<mode> bn_answer_p50=<d> bn_answer_max=<d> healthy_delivery_max=<d> <what each EL got>
//
// so the numbers can be quoted (go test -run 'TestFault' -v ./internal/proxy | grep FAULT).

const (
	faultBlocks   = 6                      // blocks driven through each case
	faultFailover = 250 * time.Millisecond // Config.FailoverAfter in the matrix
	// Bounds, generous for -race on a small machine. Measured values are logged.
	fastAnswer      = 300 * time.Millisecond               // the BN answer when no EL stalls it
	stalledAnswer   = faultFailover + 400*time.Millisecond // a stalled primary: failover, then a follower
	healthyDelivery = 400 * time.Millisecond               // accept → arrival at a healthy EL
	laneDrainWait   = 15 * time.Second                     // for lanes that are expected to finish
	blackholeDial   = 2 * time.Second                      // the daemon's default --dial-timeout
	flapPeriod      = 3                                    // a flapping EL is up, then down, for this many requests
)

// timings collects beacon node answer times.
type timings struct {
	mu sync.Mutex
	d  []time.Duration
}

func (t *timings) add(d time.Duration) {
	t.mu.Lock()
	t.d = append(t.d, d)
	t.mu.Unlock()
}

func (t *timings) stats() (p50, worst time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.d) == 0 {
		return 0, 0
	}
	s := slices.Clone(t.d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// faultRig is a rig that also times every beacon node request and remembers when each
// request id was sent, so that arrival times at the ELs become delivery latencies.
type faultRig struct {
	*rig
	answers timings
	mu      sync.Mutex
	sentAt  map[string]time.Time // raw JSON-RPC id → when the BN sent it
	states  map[string]int       // "lane→state" → how many times the lane went there
}

func newFaultRig(t *testing.T, cfg Config, els []*fakeel.EL) *faultRig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewManual(time.Unix(int64(blockTS(1)), 0)), done: make(chan struct{}), els: els}
	if cfg.Instance == "" {
		cfg.Instance = "fault-proxy"
	}
	if cfg.Election.SlotDuration == 0 {
		cfg.Election = testElection()
	}
	if cfg.FailoverAfter == 0 {
		cfg.FailoverAfter = faultFailover
	}
	f := &faultRig{rig: r, sentAt: map[string]time.Time{}, states: map[string]int{}}
	cfg.Hooks.Lane.OnState = func(l *upstream.Lane, _, to upstream.State, _ error) {
		f.mu.Lock()
		f.states[l.Name()+"→"+to.String()]++
		f.mu.Unlock()
	}
	r.start(cfg)
	return f
}

// send posts body to path, times the answer and checks it is HTTP 200 with a JSON-RPC body
// addressed to the request.
func (f *faultRig) send(path, id string, body []byte) []byte {
	f.t.Helper()
	f.mu.Lock()
	f.sentAt[id] = time.Now()
	f.mu.Unlock()
	start := time.Now()
	code, ans := f.postTo(path, body)
	f.answers.add(time.Since(start))
	if code != http.StatusOK {
		f.t.Fatalf("%s %s: HTTP %d %s", path, id, code, ans)
	}
	if a := decode(f.t, ans); string(a.ID) != id {
		f.t.Fatalf("%s: answer addressed to %s: %s", id, a.ID, ans)
	}
	return ans
}

// block sends block n's newPayload and the head update to it as bn, at the slot's time.
func (f *faultRig) block(bn string, n uint64) (np, fcu []byte) {
	f.t.Helper()
	f.clk.Set(time.Unix(int64(blockTS(n)), 0))
	np = f.send("/bn/"+bn, fmt.Sprintf(`"%s-np%d"`, bn, n), newPayloadBody(fmt.Sprintf(`"%s-np%d"`, bn, n), n))
	fcu = f.send("/bn/"+bn, fmt.Sprintf(`"%s-fcu%d"`, bn, n), forkchoiceBody(fmt.Sprintf(`"%s-fcu%d"`, bn, n), n, false))
	return np, fcu
}

// drainLanes waits for the given lanes only (a hung lane never drains).
func (f *faultRig) drainLanes(idx ...int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), laneDrainWait)
	defer cancel()
	for _, i := range idx {
		if err := f.p.Lanes()[i].Drain(ctx); err != nil {
			f.t.Fatalf("lane %s did not drain: %v (%+v)", f.p.Lanes()[i].Name(), err, f.p.Lanes()[i].Stats())
		}
	}
}

// deliveryMax is the longest time between a BN sending a request and el receiving it.
func (f *faultRig) deliveryMax(el *fakeel.EL) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var worst time.Duration
	for _, rec := range el.Requests() {
		if at, ok := f.sentAt[rec.ID]; ok && rec.At.Sub(at) > worst {
			worst = rec.At.Sub(at)
		}
	}
	return worst
}

// received is what one fake EL got: newPayload block numbers and forkchoiceUpdated head
// numbers (via names), in arrival order.
type received struct {
	nps, heads []uint64
	unknown    int // forkchoiceUpdated heads not in names
}

func receivedBy(el *fakeel.EL, names map[engine.Hash]uint64) received {
	var g received
	for _, rec := range el.Requests() {
		switch rec.Class {
		case engine.ClassNewPayload:
			g.nps = append(g.nps, rec.Block.Number)
		case engine.ClassForkchoice:
			if n, ok := names[rec.Head]; ok {
				g.heads = append(g.heads, n)
			} else {
				g.unknown++
			}
		}
	}
	return g
}

func (g received) String() string {
	s := fmt.Sprintf("np=%d fcu=%d", len(g.nps), len(g.heads)+g.unknown)
	if len(g.heads) > 0 {
		s += fmt.Sprintf(" head=%d", g.heads[len(g.heads)-1])
	}
	return s
}

// chainNames maps blockHash(n) to n for n in [0, upTo].
func chainNames(upTo uint64) map[engine.Hash]uint64 {
	m := make(map[engine.Hash]uint64, upTo+1)
	for n := range upTo + 1 {
		m[blockHash(n)] = n
	}
	return m
}

// requireComplete fails unless g holds blocks 1..n exactly once each, in order, and head
// updates that never go back and end at n.
func requireComplete(t *testing.T, who string, g received, n uint64) {
	t.Helper()
	want := make([]uint64, 0, n)
	for i := uint64(1); i <= n; i++ {
		want = append(want, i)
	}
	if !slices.Equal(g.nps, want) {
		t.Errorf("%s got newPayloads %v, want %v", who, g.nps, want)
	}
	requireHeadsForward(t, who, g.heads)
	if len(g.heads) == 0 || g.heads[len(g.heads)-1] != n || g.unknown != 0 {
		t.Errorf("%s got heads %v (+%d unknown), want them to end at %d", who, g.heads, g.unknown, n)
	}
}

// requireHeadsForward fails if a head update names an older block than the one before.
func requireHeadsForward(t *testing.T, who string, heads []uint64) {
	t.Helper()
	for i := 1; i < len(heads); i++ {
		if heads[i] < heads[i-1] {
			t.Errorf("%s: head moved back from %d to %d (%v)", who, heads[i-1], heads[i], heads)
			return
		}
	}
}

func laneSummary(l *upstream.Lane) string {
	st := l.Stats()
	var drops []string
	for r, n := range st.Drops {
		if n > 0 {
			drops = append(drops, fmt.Sprintf("%s:%d", r, n))
		}
	}
	sort.Strings(drops)
	s := fmt.Sprintf("lane=%s ok=%d failed=%d queued=%d", st.State, st.Delivered, st.Failed, st.QueueDepth)
	if len(drops) > 0 {
		s += " drops=" + strings.Join(drops, ",")
	}
	if st.CatchUps > 0 {
		s += fmt.Sprintf(" catchups=%d", st.CatchUps)
	}
	return s
}

// blackhole is a dialer for an EL whose address does not answer: every connect hangs until
// the dial timeout, as when SYNs are dropped.
type blackhole struct {
	release chan struct{}
	dials   atomic.Int64
}

func (b *blackhole) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	b.dials.Add(1)
	t := time.NewTimer(blackholeDial)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-b.release:
	}
	return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("connect to %s: i/o timeout (blackholed)", addr)}
}

// flappingEL is a chainEL (imports only blocks whose parent it has, serves its head) that is
// up for flapPeriod requests, then down (connections broken) for flapPeriod, and so on,
// until healed.
type flappingEL struct {
	*chainEL
	srv    *httptest.Server
	n      atomic.Int64
	healed atomic.Bool
}

func newFlappingEL(t *testing.T) *flappingEL {
	f := &flappingEL{chainEL: newChainEL(t)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.n.Add(1) - 1
		f.setDown(!f.healed.Load() && (n/flapPeriod)%2 == 1)
		f.serve(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// faultyEL is the misbehaving EL of one matrix case.
type faultyEL struct {
	url       string
	transport http.RoundTripper
	catchUp   time.Duration // the lane's CatchUpInterval; 0 is the default
	el        *fakeel.EL    // when the fault is a fakeel behaviour
	flap      *flappingEL
	got       func() string
	// drains is whether its lane finishes what it was given within laneDrainWait.
	drains bool
	// check asserts what it received after faultBlocks blocks (and, if heal is set, one
	// more block after healing).
	check func(t *testing.T, f *faultRig, lane *upstream.Lane)
	heal  func()
	// end ends what the fault itself keeps running (a hung connect), when the case is done.
	end func()
}

type elFault struct {
	name  string
	stall bool // a primary with this fault answers late or never: the BN waits FailoverAfter
	make  func(t *testing.T) *faultyEL
	// statuses the BN may get in direct mode when this EL is primary (default VALID).
	directStatuses []string
}

// fakeFault is a fakeel with behaviour b that records every request and fails it.
func fakeFault(b fakeel.Behavior, delay time.Duration, wantState upstream.State) func(t *testing.T) *faultyEL {
	return func(t *testing.T) *faultyEL {
		el := fakeel.New("faulty", nil)
		el.SetChain(engine.Block{Hash: blockHash(0), Timestamp: blockTS(0)})
		el.Set(b, delay)
		names := chainNames(faultBlocks + 1)
		return &faultyEL{
			url: el.URL(), el: el, drains: true, catchUp: 50 * time.Millisecond,
			got: func() string { return receivedBy(el, names).String() },
			check: func(t *testing.T, f *faultRig, lane *upstream.Lane) {
				// Block 1 reached it and failed: it may not have it, so the lane sent
				// nothing that builds on it (each later block, each head update to one, would
				// be SYNCING at best): it is lost. Once the EL answers again, a catch-up
				// sends it blocks 1..6 in order, then block 7 and its head leave the queue.
				g := receivedBy(el, names)
				if len(g.nps) == 0 || g.nps[0] != 1 {
					t.Errorf("faulty EL got newPayloads %v, want block 1 first", g.nps)
				} else {
					g.nps = g.nps[1:]
				}
				requireComplete(t, "healed EL", g, faultBlocks+1)
				if st := lane.Stats(); st.Failed == 0 || st.State != upstream.StateUp || st.Lost ||
					st.Drops[upstream.DropBehind] < 2*(faultBlocks-1) {
					t.Errorf("faulty lane %+v: want block 1 failed, the rest refused, then up and found", st)
				}
				if wantState != upstream.StateDown && f.sawState(lane.Name(), wantState) == 0 {
					t.Errorf("faulty lane never went %s", wantState)
				}
			},
			heal: func() { el.Set(fakeel.Normal, 0) },
		}
	}
}

var elFaults = []elFault{
	{name: "none", make: func(t *testing.T) *faultyEL {
		el := fakeel.New("faulty", nil)
		names := chainNames(faultBlocks)
		return &faultyEL{url: el.URL(), el: el, drains: true,
			got: func() string { return receivedBy(el, names).String() },
			check: func(t *testing.T, _ *faultRig, _ *upstream.Lane) {
				requireComplete(t, "control EL", receivedBy(el, names), faultBlocks)
			}}
	}},
	{name: "el-refuses-connections", make: func(t *testing.T) *faultyEL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + ln.Addr().String()
		ln.Close() // nothing listens there now: connect gets RST
		return &faultyEL{url: url, drains: true,
			got: func() string { return "nothing (connection refused)" },
			check: func(t *testing.T, _ *faultRig, lane *upstream.Lane) {
				// Block 1 failed; nothing that builds on it is sent, the lane stays lost and
				// its catch-ups fail.
				if st := lane.Stats(); st.State != upstream.StateDown || st.Failed == 0 || st.Delivered != 0 || !st.Lost ||
					st.Drops[upstream.DropBehind] < 2*(faultBlocks-1) || st.CatchUps == 0 || st.CatchUp.Err == "" {
					t.Errorf("refusing EL's lane %+v: want down and lost, block 1 failed, the rest refused, heals failing", st)
				}
			}}
	}},
	{name: "el-unreachable", stall: true, make: func(t *testing.T) *faultyEL {
		b := &blackhole{release: make(chan struct{})}
		tr := &http.Transport{DialContext: b.dial, Proxy: nil}
		t.Cleanup(tr.CloseIdleConnections)
		return &faultyEL{url: "http://127.0.0.1:9", transport: tr, end: sync.OnceFunc(func() { close(b.release) }),
			got: func() string { return fmt.Sprintf("nothing (%d connects hung)", b.dials.Load()) },
			check: func(t *testing.T, _ *faultRig, lane *upstream.Lane) {
				// Connects hang: the lane is stuck on its first request and the rest wait
				// in its queue (superseded head updates dropped), bounded.
				if b.dials.Load() == 0 {
					t.Errorf("no connect was attempted")
				}
				if st := lane.Stats(); st.Delivered != 0 || st.QueueDepth > 2*faultBlocks {
					t.Errorf("unreachable EL's lane %+v", st)
				}
			}}
	}},
	{name: "el-accepts-never-answers", stall: true, make: func(t *testing.T) *faultyEL {
		el := fakeel.New("faulty", nil)
		el.Set(fakeel.Hang, 0)
		names := chainNames(faultBlocks)
		return &faultyEL{url: el.URL(), el: el,
			got: func() string { return receivedBy(el, names).String() + " (hung on the first)" },
			check: func(t *testing.T, _ *faultRig, lane *upstream.Lane) {
				// One request in flight (the newPayload of block 1), the rest queued:
				// nothing is sent out of order or twice.
				g := receivedBy(el, names)
				if !slices.Equal(g.nps, []uint64{1}) || len(g.heads) != 0 {
					t.Errorf("hung EL got %v / heads %v, want only block 1's newPayload", g.nps, g.heads)
				}
				if st := lane.Stats(); !st.InFlight || st.Delivered != 0 {
					t.Errorf("hung EL's lane %+v", st)
				}
			}}
	}},
	{name: "el-slow-400ms", stall: true, make: func(t *testing.T) *faultyEL {
		el := fakeel.New("faulty", nil)
		el.Set(fakeel.Slow, 400*time.Millisecond)
		names := chainNames(faultBlocks)
		return &faultyEL{url: el.URL(), el: el, drains: true,
			got: func() string { return receivedBy(el, names).String() },
			check: func(t *testing.T, _ *faultRig, lane *upstream.Lane) {
				// It gets every block, in order, later; queued head updates that a newer
				// one replaced may be skipped, never reordered.
				g := receivedBy(el, names)
				if !slices.Equal(g.nps, []uint64{1, 2, 3, 4, 5, 6}) {
					t.Errorf("slow EL got newPayloads %v", g.nps)
				}
				requireHeadsForward(t, "slow EL", g.heads)
				if len(g.heads) == 0 || g.heads[len(g.heads)-1] != faultBlocks {
					t.Errorf("slow EL heads %v, want them to end at %d", g.heads, faultBlocks)
				}
				if st := lane.Stats(); st.Failed != 0 {
					t.Errorf("slow EL's lane %+v: a 400 ms EL must not fail", st)
				}
			}}
	}},
	{name: "el-flapping", directStatuses: []string{"VALID", "SYNCING"}, make: func(t *testing.T) *faultyEL {
		fl := newFlappingEL(t)
		return &faultyEL{url: fl.srv.URL, flap: fl, drains: true, catchUp: time.Millisecond,
			got: func() string {
				fl.mu.Lock()
				defer fl.mu.Unlock()
				return fmt.Sprintf("imported=%d head=%d requests=%d", len(fl.blocks)-1, fl.head.Number, fl.n.Load())
			},
			check: func(t *testing.T, _ *faultRig, lane *upstream.Lane) {
				// After healing and one more block, it holds the whole chain and is on the
				// head: what it missed while down was replayed, in order.
				fl.mu.Lock()
				defer fl.mu.Unlock()
				for n := uint64(1); n <= faultBlocks+1; n++ {
					if _, ok := fl.blocks[blockHash(n)]; !ok {
						t.Errorf("flapping EL is missing block %d", n)
					}
				}
				if fl.head.Number != faultBlocks+1 {
					t.Errorf("flapping EL head %d, want %d", fl.head.Number, faultBlocks+1)
				}
				for i := 1; i < len(fl.heads); i++ {
					if fl.heads[i] < fl.heads[i-1] {
						t.Errorf("flapping EL's head moved back: %v", fl.heads)
						break
					}
				}
				if st := lane.Stats(); st.Failed == 0 || st.CatchUps == 0 {
					t.Errorf("flapping lane %+v: want failures and a catch-up", st)
				}
			},
			heal: func() { fl.healed.Store(true); fl.setDown(false) }}
	}},
	{name: "el-garbage", make: fakeFault(fakeel.Garbage, 0, upstream.StateDown)},
	{name: "el-http500", make: fakeFault(fakeel.HTTP500, 0, upstream.StateDown)},
	{name: "el-http401", make: fakeFault(fakeel.Unauthorized, 0, upstream.StateUnauthorized)},
	{name: "el-http413", make: fakeFault(fakeel.HTTP413, 0, upstream.StateDown)},
}

// sawState counts lane state changes to s (recorded by the fault rig's hooks).
func (f *faultRig) sawState(lane string, s upstream.State) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.states[lane+"→"+s.String()]
}

// TestFaultMatrixEL: one EL misbehaves; in mirror mode (it is a follower) and in direct mode
// (it is the primary, the worst place for it).
func TestFaultMatrixEL(t *testing.T) {
	type mode struct {
		name   string
		direct bool
		faulty int // index of the faulty EL among three
	}
	modes := []mode{{"mirror", false, 1}, {"direct-primary", true, 0}, {"direct-follower", true, 1}}
	for _, fc := range elFaults {
		for _, m := range modes {
			t.Run(fc.name+"/"+m.name, func(t *testing.T) {
				runELFault(t, fc, m.direct, m.faulty)
			})
		}
	}
}

func runELFault(t *testing.T, fc elFault, direct bool, faulty int) {
	bad := fc.make(t)
	if bad.end != nil {
		defer bad.end() // before the rig's leftover check, a cleanup
	}
	var healthy []*fakeel.EL
	var healthyIdx []int
	cfg := Config{}
	var els []*fakeel.EL
	for i := range 3 {
		role := upstream.RoleFollower
		if direct && i == 0 {
			role = upstream.RolePrimary
		}
		if i == faulty {
			cfg.ELs = append(cfg.ELs, upstream.Config{Name: fmt.Sprintf("el%d", i+1), URL: bad.url, Role: role,
				Transport: bad.transport, CatchUpInterval: bad.catchUp})
			if bad.el != nil {
				els = append(els, bad.el)
			}
			continue
		}
		el := fakeel.New(fmt.Sprintf("el%d", i+1), nil)
		els = append(els, el)
		healthy, healthyIdx = append(healthy, el), append(healthyIdx, i)
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: el.Name, URL: el.URL(), Role: role})
	}
	f := newFaultRig(t, cfg, els)

	wantStatus := []string{"SYNCING"}
	if direct {
		wantStatus = []string{"VALID"}
		if faulty == 0 && fc.directStatuses != nil {
			wantStatus = fc.directStatuses
		}
	}
	for n := uint64(1); n <= faultBlocks; n++ {
		np, fcu := f.block("bn1", n)
		for _, ans := range [][]byte{np, fcu} {
			if s, _ := payloadStatus(t, ans); !slices.Contains(wantStatus, s) {
				t.Errorf("block %d: the BN got %s, want one of %v", n, ans, wantStatus)
			}
		}
	}
	p50, worst := f.answers.stats()
	f.drainLanes(healthyIdx...)
	var deliveryWorst time.Duration
	for _, el := range healthy {
		requireComplete(t, el.Name, receivedBy(el, chainNames(faultBlocks)), faultBlocks)
		deliveryWorst = max(deliveryWorst, f.deliveryMax(el))
	}
	gotBefore := bad.got()
	if bad.drains && bad.heal == nil {
		f.drainLanes(faulty)
	}
	if bad.heal != nil {
		f.drainLanes(faulty)
		bad.heal()
		f.block("bn1", faultBlocks+1)
		f.drainLanes(append(healthyIdx, faulty)...)
	}
	bad.check(t, f, f.p.Lanes()[faulty])

	bound := fastAnswer
	if direct && faulty == 0 && fc.stall {
		bound = stalledAnswer
	}
	if worst > bound {
		t.Errorf("the BN waited up to %v, want at most %v", worst, bound)
	}
	if deliveryWorst > healthyDelivery {
		t.Errorf("a healthy EL got a request %v after the BN sent it, want at most %v", deliveryWorst, healthyDelivery)
	}
	var gotList []string
	for i, el := range f.p.Lanes() {
		if i == faulty {
			gotList = append(gotList, fmt.Sprintf("%s[faulty]={%s; after heal: %s; %s}", el.Name(), gotBefore, bad.got(), laneSummary(el)))
			continue
		}
		gotList = append(gotList, fmt.Sprintf("%s={%s}", el.Name(), receivedBy(f.els[slices.IndexFunc(f.els, func(e *fakeel.EL) bool { return e.Name == el.Name() })], chainNames(faultBlocks+1))))
	}
	t.Logf("FAULT %s bn_answer_p50=%v bn_answer_max=%v healthy_delivery_max=%v %s",
		t.Name()[len("TestFaultMatrixEL/"):], p50.Round(time.Microsecond*10), worst.Round(time.Microsecond*10),
		deliveryWorst.Round(time.Microsecond*10), strings.Join(gotList, " "))
}

// forkHash is block n on fork f (fork 0 is the tests' main chain).
func forkHash(n uint64, f byte) engine.Hash {
	if f == 0 {
		return blockHash(n)
	}
	var b [9]byte
	binary.BigEndian.PutUint64(b[:], n)
	b[8] = f
	return engine.Hash(sha256.Sum256(b[:]))
}

// forkPayloadBody is newPayloadBody for block n with the given hash and parent.
func forkPayloadBody(id string, n uint64, hash, parent engine.Hash) []byte {
	b := newPayloadBody(id, n)
	b = bytes.Replace(b, []byte(blockHash(n).String()), []byte(hash.String()), 1)
	return bytes.Replace(b, []byte(blockHash(n-1).String()), []byte(parent.String()), 1)
}

// forkHeadBody is forkchoiceBody with the given head.
func forkHeadBody(id string, n uint64, head engine.Hash) []byte {
	return bytes.Replace(forkchoiceBody(id, n, false), []byte(blockHash(n).String()), []byte(head.String()), 1)
}

// bnFault is a beacon node misbehaving in front of three healthy ELs. run drives it and
// returns what the report line should add; the common checks (every EL got every block once,
// in order, and heads that never go back) run after it.
type bnFault struct {
	name string
	// blocks is how many main-chain blocks the case sends.
	blocks uint64
	run    func(t *testing.T, f *faultRig, direct bool) string
}

// fcuIDs lists the ids of the forkchoiceUpdated requests el received.
func fcuIDs(el *fakeel.EL) []string { return requestIDs(el, engine.ClassForkchoice) }

// requestIDs lists, in arrival order, the raw ids of the requests of a class el received.
func requestIDs(el *fakeel.EL, class engine.Class) []string {
	var ids []string
	for _, rec := range el.Requests() {
		if rec.Class == class {
			ids = append(ids, rec.ID)
		}
	}
	return ids
}

func writerOf(f *faultRig) string {
	w, _ := f.p.Tracker().Writer()
	return w
}

var bnFaults = []bnFault{
	{name: "bn-silent", blocks: 8, run: func(t *testing.T, f *faultRig, _ bool) string {
		// bn1 writes blocks 1..3 and goes silent; bn2 sends every block throughout. bn2
		// takes over at its first request more than the silence timeout (1.5 slots) after
		// bn1's last: block 5. Block 4's head update waits for that.
		changedAt := uint64(0)
		for n := uint64(1); n <= 8; n++ {
			if n <= 3 {
				f.block("bn1", n)
			}
			f.block("bn2", n)
			if changedAt == 0 && writerOf(f) == "bn2" {
				changedAt = n
			}
			f.waitIdle() // slots are 12 s apart: the lanes are idle before the next
		}
		if changedAt != 5 {
			t.Errorf("bn2 became the writer at block %d, want 5 (first slot after 18 s of silence)", changedAt)
		}
		f.waitIdle()
		for _, el := range f.els {
			ids := fcuIDs(el)
			if slices.Contains(ids, `"bn2-fcu4"`) || !slices.Contains(ids, `"bn2-fcu5"`) || !slices.Contains(ids, `"bn1-fcu3"`) {
				t.Errorf("%s got head updates %v", el.Name, ids)
			}
		}
		return fmt.Sprintf("writer bn1→bn2 at block %d", changedAt)
	}},
	{name: "bn-stale", blocks: 8, run: func(t *testing.T, f *faultRig, direct bool) string {
		// bn2 sees every block but announces a head three slots old.
		for n := uint64(1); n <= 8; n++ {
			f.block("bn1", n)
			f.send("/bn/bn2", fmt.Sprintf(`"bn2-np%d"`, n), newPayloadBody(fmt.Sprintf(`"bn2-np%d"`, n), n))
			old := max(n, 4) - 3
			ans := f.send("/bn/bn2", fmt.Sprintf(`"bn2-fcu%d"`, n), forkchoiceBody(fmt.Sprintf(`"bn2-fcu%d"`, n), old, false))
			if s, pid := payloadStatus(t, ans); pid != nil || (s != "SYNCING" && !(direct && s == "VALID")) {
				t.Errorf("stale BN got %s", ans)
			}
			f.waitIdle()
		}
		if w := writerOf(f); w != "bn1" {
			t.Errorf("writer %s, want bn1", w)
		}
		f.waitIdle()
		for _, el := range f.els {
			for _, id := range fcuIDs(el) {
				if strings.HasPrefix(id, `"bn2`) {
					t.Errorf("%s got the stale BN's head update %s", el.Name, id)
				}
			}
		}
		return "writer stays bn1; stale heads filtered"
	}},
	{name: "bn-restarting", blocks: 10, run: func(t *testing.T, f *faultRig, _ bool) string {
		// bn1 writes 1..6 (bn2 follows), restarts and announces heads 2..4 for three slots
		// while bn2 goes on with 7..9, then catches up: both send 10.
		for n := uint64(1); n <= 6; n++ {
			f.block("bn1", n)
			f.block("bn2", n)
			f.waitIdle()
		}
		changedAt := uint64(0)
		for n := uint64(7); n <= 9; n++ {
			f.clk.Set(time.Unix(int64(blockTS(n)), 0))
			f.send("/bn/bn1", fmt.Sprintf(`"bn1-stale%d"`, n), forkchoiceBody(fmt.Sprintf(`"bn1-stale%d"`, n), n-5, false))
			f.block("bn2", n)
			if changedAt == 0 && writerOf(f) == "bn2" {
				changedAt = n
			}
			f.waitIdle()
		}
		for n := uint64(7); n <= 10; n++ { // bn1 catches up
			f.send("/bn/bn1", fmt.Sprintf(`"bn1-np%d"`, n), newPayloadBody(fmt.Sprintf(`"bn1-np%d"`, n), n))
		}
		f.block("bn1", 10)
		f.block("bn2", 10)
		if w := writerOf(f); changedAt != 7 || w != "bn2" {
			t.Errorf("writer changed at block %d, is %s; want bn2 from block 7 on (sticky after bn1 caught up)", changedAt, w)
		}
		f.waitIdle()
		for _, el := range f.els {
			for _, id := range fcuIDs(el) {
				if strings.HasPrefix(id, `"bn1-stale`) {
					t.Errorf("%s got the restarting BN's stale head %s", el.Name, id)
				}
			}
		}
		return fmt.Sprintf("writer bn1→bn2 at block %d, stays bn2", changedAt)
	}},
	{name: "bn-two-forks-same-slot", blocks: 6, run: func(t *testing.T, f *faultRig, _ bool) string {
		// bn1 (the writer) and bn2 each send their own block for slots 2..6, at the same
		// time; bn2's is a sibling of bn1's on fork 1.
		f.block("bn1", 1)
		f.block("bn2", 1)
		for n := uint64(2); n <= 6; n++ {
			f.clk.Set(time.Unix(int64(blockTS(n)), 0))
			concurrently(2, func(i int) {
				if i == 0 {
					f.send("/bn/bn1", fmt.Sprintf(`"bn1-np%d"`, n), newPayloadBody(fmt.Sprintf(`"bn1-np%d"`, n), n))
					f.send("/bn/bn1", fmt.Sprintf(`"bn1-fcu%d"`, n), forkchoiceBody(fmt.Sprintf(`"bn1-fcu%d"`, n), n, false))
					return
				}
				f.send("/bn/bn2", fmt.Sprintf(`"bn2-np%d"`, n), forkPayloadBody(fmt.Sprintf(`"bn2-np%d"`, n), n, forkHash(n, 1), blockHash(n-1)))
				ans := f.send("/bn/bn2", fmt.Sprintf(`"bn2-fcu%d"`, n), forkHeadBody(fmt.Sprintf(`"bn2-fcu%d"`, n), n, forkHash(n, 1)))
				if s, _ := payloadStatus(t, ans); s != "SYNCING" {
					t.Errorf("the other fork's BN got %s, want SYNCING", ans)
				}
			})
			f.waitIdle()
		}
		f.waitIdle()
		for _, el := range f.els {
			forkBlocks := 0
			for _, rec := range el.Requests() {
				if rec.Class == engine.ClassNewPayload && rec.Block.Hash != blockHash(rec.Block.Number) {
					forkBlocks++
				}
			}
			if forkBlocks != 5 {
				t.Errorf("%s got %d fork-1 newPayloads, want 5 (every BN's block is imported)", el.Name, forkBlocks)
			}
		}
		return "only bn1's fork reaches heads"
	}},
}

// TestFaultMatrixBN: a beacon node misbehaves; in mirror and direct mode.
func TestFaultMatrixBN(t *testing.T) {
	for _, fc := range bnFaults {
		for _, direct := range []bool{false, true} {
			mode := "mirror"
			if direct {
				mode = "direct"
			}
			t.Run(fc.name+"/"+mode, func(t *testing.T) {
				var els []*fakeel.EL
				cfg := Config{}
				for i := range 3 {
					el := fakeel.New(fmt.Sprintf("el%d", i+1), nil)
					els = append(els, el)
					role := upstream.RoleFollower
					if direct && i == 0 {
						role = upstream.RolePrimary
					}
					cfg.ELs = append(cfg.ELs, upstream.Config{Name: el.Name, URL: el.URL(), Role: role})
				}
				f := newFaultRig(t, cfg, els)
				extra := fc.run(t, f, direct)
				f.waitIdle()
				names := chainNames(fc.blocks)
				var got []string
				for _, el := range els {
					g := receivedBy(el, names)
					requireHeadsForward(t, el.Name, g.heads)
					if g.unknown != 0 {
						t.Errorf("%s got %d head updates to blocks off the writer's chain", el.Name, g.unknown)
					}
					if len(g.heads) == 0 || g.heads[len(g.heads)-1] != fc.blocks {
						t.Errorf("%s heads %v, want them to end at %d", el.Name, g.heads, fc.blocks)
					}
					seen := map[engine.Hash]int{}
					for _, rec := range el.Requests() {
						if rec.Class == engine.ClassNewPayload {
							seen[rec.Block.Hash]++
						}
					}
					for n := uint64(1); n <= fc.blocks; n++ {
						if seen[blockHash(n)] != 1 {
							t.Errorf("%s got block %d %d times, want once", el.Name, n, seen[blockHash(n)])
						}
					}
					got = append(got, fmt.Sprintf("%s={%s %s}", el.Name, g, laneSummary(f.p.Lanes()[slices.IndexFunc(f.p.Lanes(), func(l *upstream.Lane) bool { return l.Name() == el.Name })])))
				}
				p50, worst := f.answers.stats()
				if worst > fastAnswer {
					t.Errorf("a BN waited %v, want at most %v", worst, fastAnswer)
				}
				t.Logf("FAULT %s/%s bn_answer_p50=%v bn_answer_max=%v %s; %s", fc.name, mode,
					p50.Round(10*time.Microsecond), worst.Round(10*time.Microsecond), extra, strings.Join(got, " "))
			})
		}
	}
}

// TestFaultProxyRestart: sync-proxy is restarted between two slots (a new Proxy on the same
// ELs, empty block index, no writer). In the first slot after the restart a lagging beacon
// node speaks first and announces an old head the new proxy has never seen; the current
// one sends the slot's block. Within that one slot the new proxy has its writer, its block
// index and every lane's head guard back, and no EL's head ever moved back.
func TestFaultProxyRestart(t *testing.T) {
	for _, direct := range []bool{false, true} {
		mode := "mirror"
		if direct {
			mode = "direct"
		}
		t.Run(mode, func(t *testing.T) {
			var chain []*chainEL
			cfg := Config{}
			for i := range 3 {
				c := newChainEL(t)
				chain = append(chain, c)
				role := upstream.RoleFollower
				if direct && i == 0 {
					role = upstream.RolePrimary
				}
				cfg.ELs = append(cfg.ELs, upstream.Config{Name: fmt.Sprintf("el%d", i+1), URL: c.srv.URL, Role: role, CatchUpInterval: time.Millisecond})
			}
			before := newFaultRig(t, cfg, nil)
			for n := uint64(1); n <= 10; n++ {
				before.block("bn1", n)
				before.block("bn2", n)
				before.waitIdle()
			}
			before.close()

			cfg.Instance = "restarted"
			f := newFaultRig(t, cfg, nil)
			f.clk.Set(time.Unix(int64(blockTS(11)), 0))
			stale := f.send("/bn/bn2", `"bn2-stale8"`, forkchoiceBody(`"bn2-stale8"`, 8, false))
			f.block("bn1", 11)
			f.send("/bn/bn2", `"bn2-np11"`, newPayloadBody(`"bn2-np11"`, 11))
			f.send("/bn/bn2", `"bn2-stale9"`, forkchoiceBody(`"bn2-stale9"`, 9, false))
			f.waitIdle()

			// One slot later: the state is rebuilt.
			if w := writerOf(f); w != "bn1" {
				t.Errorf("writer after one slot: %q, want bn1", w)
			}
			if _, ok := f.p.blocks.Lookup(blockHash(11)); !ok {
				t.Errorf("block 11 is not in the new proxy's index")
			}
			for _, l := range f.p.Lanes() {
				if st := l.Stats(); st.SentHead.Number != 11 {
					t.Errorf("%s: head guard at %d, want 11", l.Name(), st.SentHead.Number)
				}
			}
			if s, pid := payloadStatus(t, stale); s != "SYNCING" || pid != nil {
				t.Errorf("the stale head after the restart was answered %s, want SYNCING", stale)
			}
			f.block("bn1", 12)
			f.block("bn2", 12)
			f.waitIdle()
			var got []string
			for i, c := range chain {
				c.mu.Lock()
				heads := slices.Clone(c.heads)
				head := c.head.Number
				c.mu.Unlock()
				requireHeadsForward(t, fmt.Sprintf("el%d", i+1), heads)
				if head != 12 {
					t.Errorf("el%d head %d, want 12", i+1, head)
				}
				got = append(got, fmt.Sprintf("el%d={head=%d heads=%v %s}", i+1, head, heads[len(heads)-3:], laneSummary(f.p.Lanes()[i])))
			}
			p50, worst := f.answers.stats()
			if worst > fastAnswer {
				t.Errorf("a BN waited %v after the restart, want at most %v", worst, fastAnswer)
			}
			t.Logf("FAULT proxy-restart/%s bn_answer_p50=%v bn_answer_max=%v writer=%s after 1 slot, index+guards rebuilt; %s", mode,
				p50.Round(10*time.Microsecond), worst.Round(10*time.Microsecond), writerOf(f), strings.Join(got, " "))
		})
	}
}

// gatedEL is a chainEL that calls gate with each request before answering it.
type gatedEL struct {
	*chainEL
	srv  *httptest.Server
	gate atomic.Pointer[func(engine.Request)]
}

func newGatedEL(t *testing.T) *gatedEL {
	g := &gatedEL{chainEL: newChainEL(t)}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if f := g.gate.Load(); f != nil {
			if req, err := engine.Inspect(body); err == nil {
				(*f)(req)
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.serve(w, r)
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestFaultCatchUpTriggerBlock: an EL restarts without a clean shutdown and comes back at
// block 9, without blocks 10..20 it had answered VALID (geth rewinds to the last state it
// wrote), and the proxy saw no failure. Block 21's newPayload reaches it first, is
// answered SYNCING (no parent) and starts the catch-up; the
// beacon node's forkchoiceUpdated to 21 arrives while the replay runs, as it does when the
// BN sends it after its own EL validated 21. The EL must be on 21 at the end of the slot:
// the catch-up must also re-send block 21, or the head update names a block the EL never
// imported (geth then starts a beacon sync it cannot finish without peers).
func TestFaultCatchUpTriggerBlock(t *testing.T) {
	healthy, gated := newChainEL(t), newGatedEL(t)
	cfg := Config{Instance: "catchup-race", ELs: []upstream.Config{
		{Name: "el1", URL: healthy.srv.URL, Role: upstream.RoleFollower, CatchUpInterval: time.Millisecond},
		// As in production, catch-ups are throttled: a head update answered SYNCING right
		// after a catch-up does not start another one at once.
		{Name: "el2", URL: gated.srv.URL, Role: upstream.RoleFollower, CatchUpInterval: time.Second},
	}}
	f := newFaultRig(t, cfg, nil)
	drive(f.rig, "bn1", 1, 20)
	gated.rewind(9)
	// Let the throttle of the first-contact catch-up pass, so block 21 starts one.
	for deadline := time.Now().Add(5 * time.Second); time.Since(f.p.Lanes()[1].Stats().CatchUp.At) <= time.Second; {
		if time.Now().After(deadline) {
			t.Fatal("the lane's last catch-up never got older than its interval")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for n := uint64(21); n <= 21; n++ {
		replaying := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		gate := func(req engine.Request) {
			// The first replayed block: the catch-up has decided what to send.
			if req.Class == engine.ClassNewPayload && req.Block.Number < n {
				once.Do(func() { close(replaying) })
				<-release
			}
		}
		gated.gate.Store(&gate)
		f.clk.Set(time.Unix(int64(blockTS(n)), 0))
		f.send("/bn/bn1", fmt.Sprintf(`"np%d"`, n), newPayloadBody(fmt.Sprintf(`"np%d"`, n), n))
		select {
		case <-replaying:
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatalf("slot %d: no catch-up started", n)
		}
		f.send("/bn/bn1", fmt.Sprintf(`"fcu%d"`, n), forkchoiceBody(fmt.Sprintf(`"fcu%d"`, n), n, false))
		close(release)
		f.waitIdle()
		gated.gate.Store(nil)
		st := f.p.Lanes()[1].Stats()
		t.Logf("FAULT catch-up-trigger-block slot=%d el2_head=%d catch_up={el_head=%d replayed=%d}", n, gated.headNumber(), st.CatchUp.ELHead.Number, st.CatchUp.Replayed)
		if got := gated.headNumber(); got != n {
			gated.mu.Lock()
			_, has := gated.blocks[blockHash(n)]
			gated.mu.Unlock()
			t.Errorf("slot %d: the returning EL's head is %d, want %d (block %d imported: %v)", n, got, n, n, has)
		}
	}
	drive(f.rig, "bn1", 22, 22)
	if got := gated.headNumber(); got != 22 {
		t.Errorf("the next slot: the returning EL's head is %d, want 22", got)
	}
}
