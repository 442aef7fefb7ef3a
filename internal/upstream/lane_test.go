package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/leftover"
)

func hash(n int) engine.Hash {
	var h engine.Hash
	h[0], h[31] = byte(n>>8), byte(n)
	return h
}

func npDelivery(t *testing.T, n int) *Delivery {
	t.Helper()
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"np%d","method":"engine_newPayloadV3","params":[{"parentHash":"%s","blockHash":"%s","blockNumber":"0x%x","timestamp":"0x%x","transactions":[]},[],"0x%064x"]}`,
		n, hash(n-1), hash(n), n, 1000+12*n, 0)
	return delivery(t, body)
}

func fcuDelivery(t *testing.T, id string, head int, attrs bool) *Delivery {
	t.Helper()
	a := "null"
	if attrs {
		a = fmt.Sprintf(`{"timestamp":"0x%x","prevRandao":"0x%064x","suggestedFeeRecipient":"0x%040x","withdrawals":[],"parentBeaconBlockRoot":"0x%064x"}`, 1000+12*(head+1), 0, 0, 0)
	}
	body := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%q,"method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":"%s","safeBlockHash":"%s","finalizedBlockHash":"%s"},%s]}`,
		id, hash(head), hash(head), hash(0), a)
	d := delivery(t, body)
	d.Head, d.HeadKnown = Block{Hash: hash(head), Number: uint64(head), Timestamp: uint64(1000 + 12*head)}, true
	return d
}

func delivery(t *testing.T, body []byte) *Delivery {
	t.Helper()
	req, err := engine.Inspect(body)
	if err != nil {
		t.Fatalf("inspect %s: %v", body, err)
	}
	return &Delivery{Req: req, Body: body, BN: "bn1", Received: time.Now()}
}

// budgetOf is a one-lane backlog budget that holds exactly the bodies of ds.
func budgetOf(t *testing.T, ds ...*Delivery) *backlog.Budget {
	t.Helper()
	var n int64
	for _, d := range ds {
		n += int64(cap(d.Body))
	}
	bl, err := backlog.New(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	return bl
}

// startLane runs a lane to el until the test ends.
func startLane(t *testing.T, cfg Config) *Lane {
	t.Helper()
	return startLaneLog(t, cfg, nil)
}

// startLaneLog is startLane with a logger. Once the test has ended and the lane stopped,
// nothing may be left behind: no goroutine, lane slot or backlog charge (see leftover).
func startLaneLog(t *testing.T, cfg Config, log *slog.Logger) *Lane {
	t.Helper()
	left := leftover.Check(t) // registered before the lane's stop, so it runs after it
	l, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	left.Add(l, l.cfg.Backlog)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// gate holds the fake EL's requests until opened.
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate(el *fakeel.EL) *gate {
	g := &gate{ch: make(chan struct{})}
	el.OnRequest(func(fakeel.Received) { <-g.ch })
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

func waitDone(t *testing.T, s *Slot) Result {
	t.Helper()
	select {
	case <-s.Done():
		return s.Result()
	case <-time.After(15 * time.Second):
		t.Fatalf("slot not done")
		return Result{}
	}
}

func TestLaneKeepsOrder(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	l := startLane(t, Config{Name: "el", URL: el.URL()})
	var want []string
	var last *Slot
	for n := 1; n <= 100; n++ {
		last = l.Enqueue(npDelivery(t, n))
		want = append(want, fmt.Sprintf(`"np%d"`, n))
		if n%10 == 0 {
			id := fmt.Sprintf("fcu%d", n)
			last = l.Enqueue(fcuDelivery(t, id, n, true)) // with attributes: never coalesced
			want = append(want, `"`+id+`"`)
		}
	}
	if r := waitDone(t, last); !r.OK() {
		t.Fatalf("last delivery failed: %v", r.Err)
	}
	got := forwardedIDs(el)
	if !slices.Equal(got, want) {
		t.Fatalf("order at the EL:\n got %v\nwant %v", got, want)
	}
	st := l.Stats()
	if st.Delivered != 111 /* 110 + the lane's head look-up */ || st.LastValid.Number != 100 || st.Head.Number != 100 || st.State != StateUp {
		t.Fatalf("stats %+v", st)
	}
}

func TestLaneCoalescesAndDrops(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	g := newGate(el)
	defer g.open()
	var mu sync.Mutex
	drops := map[DropReason]int{}
	first, a, b, c := npDelivery(t, 1), fcuDelivery(t, "a", 1, false), fcuDelivery(t, "b", 1, true), fcuDelivery(t, "c", 1, false)
	d2, d3, d4 := npDelivery(t, 2), npDelivery(t, 3), npDelivery(t, 4)
	// The budget holds what stays queued (a is gone once c supersedes it), not block 4.
	bl := budgetOf(t, first, b, c, d2, d3)
	budget := bl.Limit()
	clk := clock.NewManual(time.Unix(1000+12*2, 0)) // block 2's slot: b's build (slot 2) is current
	l := startLane(t, Config{Name: "el", URL: el.URL(), Backlog: bl, Clock: clk, Hooks: Hooks{OnDrop: func(_ *Lane, _ *Delivery, r DropReason) {
		mu.Lock()
		drops[r]++
		mu.Unlock()
	}}})

	s1 := l.Enqueue(first) // in flight, held at the gate
	if !el.WaitFor(1, 5*time.Second) {
		t.Fatal("first request never arrived")
	}
	sa := l.Enqueue(a)
	sb := l.Enqueue(b)
	sc := l.Enqueue(c) // supersedes a, not b (b starts a build)
	np2 := l.Enqueue(d2)
	np3 := l.Enqueue(d3) // the budget is full
	np4 := l.Enqueue(d4) // the newest block is shed: the lane is behind
	if st := l.Stats(); !st.Behind || st.ShedBlocks != 1 || st.HeldBytes != budget {
		t.Fatalf("after block 4: behind %v, shed %d, held %d of %d", st.Behind, st.ShedBlocks, st.HeldBytes, budget)
	}
	late := l.Enqueue(fcuDelivery(t, "late", 4, false)) // a head the EL cannot have yet
	stale := l.Enqueue(fcuDelivery(t, "stale", 0, false))

	for _, tc := range []struct {
		name string
		s    *Slot
		want DropReason
	}{{"a", sa, DropSuperseded}, {"np4", np4, DropShed}, {"late", late, DropBehind}, {"stale", stale, DropStaleHead}} {
		r := waitDone(t, tc.s)
		var de *DeliveryError
		if !errors.As(r.Err, &de) || de.Kind != KindDropped || de.Drop != tc.want || !errors.Is(r.Err, ErrDropped) {
			t.Errorf("%s: err %v, want dropped %s", tc.name, r.Err, tc.want)
		}
	}
	g.open()
	for _, s := range []*Slot{s1, sb, sc, np2, np3} {
		if r := waitDone(t, s); !r.OK() {
			t.Errorf("request %d failed: %v", s.Origin(), r.Err)
		}
	}
	got := forwardedIDs(el)
	if want := []string{`"np1"`, `"b"`, `"c"`, `"np2"`, `"np3"`}; !slices.Equal(got, want) {
		t.Fatalf("EL got %v, want %v", got, want)
	}
	if u := bl.Usage(); u.Total != 0 || u.Peak > budget+int64(cap(d4.Body)) {
		t.Fatalf("budget after delivery: %+v (limit %d)", u, budget)
	}
	st := l.Stats()
	if st.Drops[DropSuperseded] != 1 || st.Drops[DropShed] != 1 || st.Drops[DropBehind] != 1 || st.Drops[DropStaleHead] != 1 {
		t.Fatalf("drop counts %v", st.Drops)
	}
	mu.Lock()
	defer mu.Unlock()
	if drops[DropSuperseded] != 1 || drops[DropShed] != 1 || drops[DropBehind] != 1 || drops[DropStaleHead] != 1 {
		t.Fatalf("drop hooks %v", drops)
	}
}

// TestLaneHeadGuard: the writer the EL follows is never refused, whatever its head; a new
// writer whose head is older than the EL's (beyond the allowance) is, until it catches up.
func TestLaneHeadGuard(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	var logs logBuffer
	l := startLaneLog(t, Config{Name: "el", URL: el.URL(), HeadAllowance: 12 * time.Second}, slog.New(slog.NewJSONHandler(&logs, nil)))
	fcu := func(id string, head int, term uint64) *Delivery {
		d := fcuDelivery(t, id, head, false)
		d.Term = term
		return d
	}
	for _, tc := range []struct {
		d       *Delivery
		dropped bool
	}{
		{fcu("w1-h5", 5, 1), false},
		{fcu("w1-h3", 3, 1), false}, // the writer re-orgs two slots back: forwarded
		{fcu("w1-h3-again", 3, 1), false},
		{fcu("w2-h1", 1, 2), true},  // a new writer two slots behind the EL's head h3
		{fcu("w2-h0", 0, 2), true},  // still behind: refused, not logged again
		{fcu("w2-h2", 2, 2), false}, // one slot: within the allowance, and it takes over
		{fcu("w2-h0", 0, 2), false}, // now it is the writer the EL follows
		{fcu("other-h0", 0, 0), false},
	} {
		r := waitDone(t, l.Enqueue(tc.d))
		if got := errors.Is(r.Err, ErrDropped); got != tc.dropped {
			t.Fatalf("%s: dropped %v (err %v), want %v", tc.d.Req.ID, got, r.Err, tc.dropped)
		}
	}
	// An unknown head cannot be judged here; the EL does not know it either: forwarded.
	d := fcu("unknown", 9, 3)
	d.HeadKnown = false
	if r := waitDone(t, l.Enqueue(d)); !r.OK() {
		t.Fatalf("unknown head: %v", r.Err)
	}
	if st := l.Stats(); st.Drops[DropStaleHead] != 2 {
		t.Fatalf("stale_head drops %d, want 2", st.Drops[DropStaleHead])
	}
	if recs := logs.records(t, "new writer behind"); len(recs) != 1 || recs[0]["term"] != float64(2) || recs[0]["head"] != float64(1) {
		t.Fatalf("refusal logs %v, want one for term 2 at head 1", recs)
	}
}

// TestLaneFreshToken: a request that waited in the queue is sent with a token minted when it
// left, not when it was queued.
func TestLaneFreshToken(t *testing.T) {
	var secret jwtauth.Secret
	secret[0] = 7
	el := fakeel.New("el", &secret)
	defer el.Close()
	g := newGate(el)
	defer g.open()
	clk := clock.NewManual(time.Now())
	l := startLane(t, Config{Name: "el", URL: el.URL(), Signer: jwtauth.NewSigner(secret, clk, jwtauth.SignerOptions{})})

	l.Enqueue(npDelivery(t, 1))
	if !el.WaitFor(1, 5*time.Second) {
		t.Fatal("first request never arrived")
	}
	queuedAt := clk.Now()
	second := l.Enqueue(npDelivery(t, 2))
	clk.Advance(40 * time.Second) // the request waits 40 s in the queue
	g.open()
	if r := waitDone(t, second); !r.OK() {
		t.Fatalf("second: %v", r.Err)
	}
	reqs := el.Requests()
	iat := tokenIAT(t, reqs[1].Headers.Get("Authorization"))
	if iat < queuedAt.Add(40*time.Second).Unix() {
		t.Fatalf("token iat %d was minted before the request left (queued at %d)", iat, queuedAt.Unix())
	}
}

func tokenIAT(t *testing.T, auth string) int64 {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 3 {
		t.Fatalf("authorization %q is not a JWT", auth)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		IAT int64 `json:"iat"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.IAT
}

func TestLaneErrorsAndStates(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + closed.Addr().String()
	closed.Close()

	for _, tc := range []struct {
		name      string
		behavior  fakeel.Behavior
		url       string
		kind      ErrorKind
		status    int
		state     State
		budget    time.Duration // the lane's budget for every method; 0: the spec's
		wrongAuth bool
	}{
		{name: "refused", url: refused, kind: KindConnect, state: StateDown},
		{name: "500", behavior: fakeel.HTTP500, kind: KindHTTPStatus, status: 500, state: StateDown},
		{name: "413", behavior: fakeel.HTTP413, kind: KindHTTPStatus, status: 413, state: StateDown},
		{name: "401", behavior: fakeel.Unauthorized, kind: KindHTTPStatus, status: 401, state: StateUnauthorized},
		{name: "wrong secret", wrongAuth: true, kind: KindHTTPStatus, status: 401, state: StateUnauthorized},
		{name: "garbage", behavior: fakeel.Garbage, kind: KindBadResponse, state: StateDown},
		{name: "hang", behavior: fakeel.Hang, kind: KindTimeout, state: StateDown, budget: 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var secret jwtauth.Secret
			secret[0] = 1
			el := fakeel.New("el", &secret)
			defer el.Close()
			el.Set(tc.behavior, 0)
			url := el.URL()
			if tc.url != "" {
				url = tc.url
			}
			signWith := secret
			if tc.wrongAuth {
				signWith[0] = 2
			}
			var transitions []string
			var mu sync.Mutex
			cfg := Config{Name: "el", URL: url, Signer: jwtauth.NewSigner(signWith, nil, jwtauth.SignerOptions{}),
				Hooks: Hooks{OnState: func(_ *Lane, from, to State, _ error) {
					mu.Lock()
					transitions = append(transitions, from.String()+"->"+to.String())
					mu.Unlock()
				}}}
			if tc.budget > 0 {
				cfg.Budget = func(string) time.Duration { return tc.budget }
			}
			l := startLane(t, cfg)
			r := waitDone(t, l.Enqueue(npDelivery(t, 1)))
			r2 := waitDone(t, l.Enqueue(npDelivery(t, 2))) // a second failure: no second transition
			if r2.OK() {
				t.Fatalf("second send succeeded")
			}
			var de *DeliveryError
			if !errors.As(r.Err, &de) || de.Kind != tc.kind || de.Status != tc.status {
				t.Fatalf("err %#v (%v), want kind %s status %d", r.Err, r.Err, tc.kind, tc.status)
			}
			if KindOf(r.Err) != tc.kind {
				t.Fatalf("KindOf = %s", KindOf(r.Err))
			}
			if got := l.State(); got != tc.state {
				t.Fatalf("state %s, want %s", got, tc.state)
			}
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"unknown->" + tc.state.String()}; !slices.Equal(transitions, want) {
				t.Fatalf("transitions %v, want %v", transitions, want)
			}
		})
	}
}

// TestLaneReadsLeaveHealthAlone: a read that times out or fails never changes the EL's state
// (a Down primary is not waited for by newPayload and forkchoiceUpdated); it counts as failed.
// Only Engine traffic moves the state.
func TestLaneReadsLeaveHealthAlone(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	slowLogs := make(chan struct{})
	defer close(slowLogs)
	el.OnRequest(func(r fakeel.Received) {
		if r.Method == "eth_getLogs" {
			<-slowLogs
		}
	})
	budgets := map[string]time.Duration{"eth_getLogs": 200 * time.Millisecond}
	l := startLane(t, Config{Name: "el", URL: el.URL(), Budget: func(m string) time.Duration {
		if b, ok := budgets[m]; ok {
			return b
		}
		return engine.Timeout(m)
	}})
	getLogs := func() Result {
		return l.Call(context.Background(), delivery(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_getLogs","params":[{}]}`)))
	}
	steps := []struct {
		name    string
		do      func() Result
		kind    ErrorKind // "" for success
		state   State
		failed  uint64
		lastErr string // what the last error starts with; "" not checked
	}{
		{"a read times out before any Engine traffic", getLogs, KindTimeout, StateUnknown, 1, "eth_getLogs: "},
		{"newPayload", func() Result { return waitDone(t, l.Enqueue(npDelivery(t, 1))) }, "", StateUp, 1, ""},
		{"a read times out", getLogs, KindTimeout, StateUp, 2, "eth_getLogs: "},
		{"a read gets HTTP 500", func() Result {
			el.Set(fakeel.HTTP500, 0)
			defer el.Set(fakeel.Normal, 0)
			return l.Call(context.Background(), delivery(t, []byte(`{"jsonrpc":"2.0","id":2,"method":"eth_chainId","params":[]}`)))
		}, KindHTTPStatus, StateUp, 3, "eth_chainId: http status 500"},
		{"newPayload gets HTTP 500", func() Result {
			el.Set(fakeel.HTTP500, 0)
			defer el.Set(fakeel.Normal, 0)
			return waitDone(t, l.Enqueue(npDelivery(t, 2)))
		}, KindHTTPStatus, StateDown, 4, "http status 500"},
		{"a read succeeds: still down", func() Result {
			return l.Call(context.Background(), delivery(t, []byte(`{"jsonrpc":"2.0","id":3,"method":"eth_chainId","params":[]}`)))
		}, "", StateDown, 4, "http status 500"},
	}
	for _, s := range steps {
		r := s.do()
		if got := KindOf(r.Err); (s.kind == "" && r.Err != nil) || (s.kind != "" && got != s.kind) {
			t.Fatalf("%s: error %v, want kind %q", s.name, r.Err, s.kind)
		}
		st := l.Stats()
		if st.State != s.state || st.Failed != s.failed {
			t.Fatalf("%s: state %s failed %d, want %s and %d", s.name, st.State, st.Failed, s.state, s.failed)
		}
		if !strings.HasPrefix(st.LastError, s.lastErr) {
			t.Fatalf("%s: last error %q, want it to start with %q", s.name, st.LastError, s.lastErr)
		}
		if s.state == StateUp && l.Impaired(time.Second) {
			t.Fatalf("%s: the EL looks impaired", s.name)
		}
	}
}

func TestLaneRelayHeadersAndSyncOnly(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	relay := startLane(t, Config{Name: "next", URL: el.URL(), Role: RoleRelay, Instance: "me"})
	d := fcuDelivery(t, "x", 1, true)
	d.Via = "first"
	waitDone(t, relay.Enqueue(d))
	h := el.Requests()[0].Headers
	if h.Get(HeaderVia) != "first,me" || h.Get(HeaderBN) != "bn1" || h.Get("Authorization") != "" {
		t.Fatalf("relay headers %v", h)
	}

	el2 := fakeel.New("el2", nil)
	defer el2.Close()
	syncOnly := startLane(t, Config{Name: "s", URL: el2.URL(), Role: RoleSyncOnly})
	r := waitDone(t, syncOnly.Enqueue(fcuDelivery(t, "y", 1, true)))
	if !r.OK() || el2.Requests()[0].Attrs || r.Resp.PayloadID != "" {
		t.Fatalf("sync-only EL saw attributes (%+v) or returned a payload id %q", el2.Requests()[0], r.Resp.PayloadID)
	}
}

func TestLaneDrainAndShutdown(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	g := newGate(el)
	check := leftover.Check(t)
	l, err := New(Config{Name: "el", URL: el.URL()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check.Add(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	l.Enqueue(npDelivery(t, 1))
	queued := l.Enqueue(npDelivery(t, 2))
	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	if err := l.Drain(short); err == nil {
		t.Fatal("drain returned while a request was held")
	}
	if err := l.Leftover(); err == nil || !strings.Contains(err.Error(), "2 slots not completed (1 queued, in flight: true)") {
		t.Fatalf("Leftover with one request sent and one queued: %v", err)
	}
	g.open()
	if err := l.Drain(context.Background()); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := l.Leftover(); err != nil {
		t.Fatalf("Leftover after drain: %v", err)
	}
	if !waitDone(t, queued).OK() {
		t.Fatal("queued request not delivered")
	}
	// After shutdown, what is still queued fails with DropShutdown.
	g2 := newGate(el)
	l.Enqueue(npDelivery(t, 3))
	el.WaitFor(3, 5*time.Second)
	left := l.Enqueue(npDelivery(t, 4))
	cancel()
	g2.open()
	<-done
	if r := waitDone(t, left); !errors.Is(r.Err, ErrDropped) {
		t.Fatalf("queued at shutdown: %v", r.Err)
	}
	if r := waitDone(t, l.Enqueue(npDelivery(t, 5))); !errors.Is(r.Err, ErrDropped) {
		t.Fatalf("enqueued after shutdown: %v", r.Err)
	}
	if err := l.Leftover(); err != nil {
		t.Fatalf("Leftover after shutdown: %v", err)
	}
}

// replayOf is a Replay that re-sends its blocks whatever the EL's head.
type replayOf []*Delivery

func (r replayOf) Since(Block) ([]*Delivery, *Delivery, bool) { return slices.Clone(r), nil, false }

// TestLaneWaitHealed: a lane whose EL did not take a block is lost. While the EL answers
// nothing but 500, Drain returns (the lane can do nothing) and WaitHealed does not; once the
// EL answers, the next catch-up re-sends the block and WaitHealed returns.
func TestLaneWaitHealed(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	el.SetChain(engine.Block{Hash: hash(0)})
	el.Set(fakeel.HTTP500, 0)
	np := npDelivery(t, 1)
	l := startLane(t, Config{Name: "el", URL: el.URL(), Replay: replayOf{np}, CatchUpInterval: 10 * time.Millisecond})
	if r := waitDone(t, l.Enqueue(np)); r.Err == nil {
		t.Fatal("block 1 answered by an EL that answers 500")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Drain(ctx); err != nil {
		t.Fatalf("drain of a lane whose EL does not answer: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if err := l.WaitHealed(short); err == nil || !l.Stats().Lost {
		t.Fatalf("WaitHealed returned %v while the EL lacks block 1 (lost %v)", err, l.Stats().Lost)
	}
	el.Set(fakeel.Normal, 0)
	if err := l.WaitHealed(ctx); err != nil {
		t.Fatalf("WaitHealed after the EL answers again: %v (%+v)", err, l.Stats())
	}
	if st := l.Stats(); st.Lost || el.Head().Hash != hash(0) || st.LastValid.Hash != hash(1) {
		t.Fatalf("after healing: lost %v, last valid %v, want block 1 re-sent", st.Lost, st.LastValid)
	}
}

func TestNewValidates(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "http://x"}, "name is empty"},
		{Config{Name: "a", URL: "ftp://x"}, "not an http(s) URL"},
		{Config{Name: "a", URL: "http://x", SlotDuration: -1}, "must not be negative"},
	} {
		if _, err := New(tc.cfg, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	if r, err := ParseRole("sync-only"); err != nil || r != RoleSyncOnly || r.String() != "sync-only" {
		t.Errorf("ParseRole: %v %v", r, err)
	}
	if _, err := ParseRole("boss"); err == nil {
		t.Errorf("ParseRole accepted boss")
	}
}

// forwardedIDs lists the ids the EL received, leaving out the lane's own head look-ups.
func forwardedIDs(el *fakeel.EL) []string {
	var got []string
	for _, r := range el.Requests() {
		if !strings.HasPrefix(r.ID, `"sync-proxy-`) {
			got = append(got, r.ID)
		}
	}
	return got
}

// logBuffer collects a logger's JSON lines; the lane logs from its own goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the logged records whose message starts with prefix.
func (b *logBuffer) records(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, rec)
		}
	}
	return out
}

// TestLaneWarnsOnceWithCounts: falling behind logs one WARN that says what the EL was not
// sent so far (blocks and bytes), however many blocks it refuses afterwards.
func TestLaneWarnsOnceWithCounts(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	g := newGate(el)
	defer g.open()
	blocks := make([]*Delivery, 9)
	for n := 1; n < len(blocks); n++ {
		blocks[n] = npDelivery(t, n)
	}
	// The budget holds blocks 2 and 3 queued behind block 1 in flight.
	bl := budgetOf(t, blocks[1], blocks[2], blocks[3])
	budget := bl.Limit()
	var logs logBuffer
	left := leftover.Check(t, bl)
	l, err := New(Config{Name: "el", URL: el.URL(), Backlog: bl}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	left.Add(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { g.open(); cancel(); <-done }()

	var slots []*Slot
	slots = append(slots, l.Enqueue(blocks[1]))
	if !el.WaitFor(1, 5*time.Second) {
		t.Fatal("block 1 never reached the EL")
	}
	for n := 2; n < len(blocks); n++ {
		slots = append(slots, l.Enqueue(blocks[n]))
	}
	for _, s := range slots[3:] { // 4 is shed, 5–8 arrive while behind
		if r := waitDone(t, s); !errors.Is(r.Err, ErrDropped) {
			t.Fatalf("block %d: %v, want dropped", s.Origin(), r.Err)
		}
	}
	warns := logs.records(t, "execution client behind")
	if len(warns) != 1 {
		t.Fatalf("%d WARNs on falling behind, want 1", len(warns))
	}
	w := warns[0]
	want := map[string]any{
		"level": "WARN", "shed_blocks": float64(1), "shed_bytes": float64(len(blocks[4].Body)),
		"held_bytes": float64(budget), "queued": float64(2), "budget_bytes": float64(budget),
	}
	for k, v := range want {
		if w[k] != v {
			t.Errorf("WARN %s = %v, want %v (%v)", k, w[k], v, w)
		}
	}
	if st := l.Stats(); !st.Behind || st.ShedBlocks != 5 {
		t.Fatalf("behind %v, shed %d, want behind with 5 shed", st.Behind, st.ShedBlocks)
	}
}

// checkQueueIndex recounts what the lane keeps about its queue (parents of the queued blocks,
// the queued builds) and checks that no queued head update is superseded.
func checkQueueIndex(t *testing.T, l *Lane) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	parents, builds := map[engine.Hash]int{}, 0
	pending := -1 // a head update without attributes that no block has followed yet
	for i, s := range l.queue {
		switch r := s.d.Req; r.Class {
		case engine.ClassNewPayload:
			parents[r.Block.Parent]++
			pending = -1
		case engine.ClassForkchoice:
			if pending >= 0 {
				t.Errorf("queued head update %d is superseded by %d", pending, i)
			}
			pending = -1
			if r.HasAttributes {
				builds++
			} else {
				pending = i
			}
		}
	}
	if !maps.Equal(parents, l.parents) || builds != l.builds {
		t.Errorf("index: parents %v builds %d, queue has %v and %d", l.parents, l.builds, parents, builds)
	}
}

// TestLaneShedBlockDropsSupersededUpdate: shedding a block whose next head update names
// another block leaves the update before it superseded; it goes at once, as it would on
// arrival, so the queue never holds one and the policy needs no pass over it.
func TestLaneShedBlockDropsSupersededUpdate(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	g := newGate(el)
	defer g.open()
	np1, np2, f2, np3 := npDelivery(t, 1), npDelivery(t, 2), fcuDelivery(t, "f2", 2, false), npDelivery(t, 3)
	fx := fcuDelivery(t, "fx", 9, false) // a head not queued here (a heal or another branch)
	other := delivery(t, []byte(`{"jsonrpc":"2.0","id":"caps","method":"engine_exchangeCapabilities","params":[[]]}`))
	bl := budgetOf(t, np1, np2, f2, np3, fx)
	l := startLane(t, Config{Name: "el", URL: el.URL(), Backlog: bl})
	first := l.Enqueue(np1)
	if !el.WaitFor(1, 5*time.Second) {
		t.Fatal("block 1 never reached the EL")
	}
	slots := map[string]*Slot{"np2": l.Enqueue(np2)}
	slots["f2"] = l.Enqueue(f2)
	slots["np3"] = l.Enqueue(np3)
	slots["fx"] = l.Enqueue(fx)
	checkQueueIndex(t, l)
	slots["caps"] = l.Enqueue(other) // over the budget: block 3 is shed, then f2 is superseded
	checkQueueIndex(t, l)
	for id, want := range map[string]DropReason{"np3": DropShed, "f2": DropSuperseded} {
		var de *DeliveryError
		if r := waitDone(t, slots[id]); !errors.As(r.Err, &de) || de.Drop != want {
			t.Errorf("%s: %v, want dropped %s", id, r.Err, want)
		}
	}
	g.open()
	for _, s := range []*Slot{first, slots["np2"], slots["fx"], slots["caps"]} {
		if r := waitDone(t, s); !r.OK() {
			t.Errorf("request %d failed: %v", s.Origin(), r.Err)
		}
	}
	if got, want := forwardedIDs(el), []string{`"np1"`, `"np2"`, `"fx"`, `"caps"`}; !slices.Equal(got, want) {
		t.Fatalf("EL got %v, want %v", got, want)
	}
	checkQueueIndex(t, l)
}

// TestLaneOverdueSlotImpairs: once the proxy gave up waiting for a slot's answer, the lane
// counts as impaired while that slot is still in flight, whatever its send time says; once
// the EL answers, it no longer does.
func TestLaneOverdueSlotImpairs(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	arrived, answer := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(answer) }) }
	defer open()
	el.OnRequest(func(r fakeel.Received) {
		if r.Method == "engine_newPayloadV3" {
			arrived <- struct{}{}
			<-answer
		}
	})
	l := startLane(t, Config{Name: "el", URL: el.URL()})
	s := l.Enqueue(npDelivery(t, 1))
	select {
	case <-arrived: // in flight: the EL has it and holds its answer
	case <-time.After(10 * time.Second):
		t.Fatal("the request never left")
	}
	const window = time.Hour
	if l.Impaired(window) {
		t.Fatal("impaired before anything was given up on")
	}
	s.Overdue()
	if !l.Impaired(window) {
		t.Fatal("not impaired with an overdue request in flight")
	}
	open()
	if r := waitDone(t, s); r.Err != nil {
		t.Fatal(r.Err)
	}
	if l.Impaired(window) {
		t.Fatal("still impaired after the EL answered")
	}
}
