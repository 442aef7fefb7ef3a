package netfault

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

const (
	chainID      = 1337
	enginePort   = 8551
	rpcPort      = 8545
	cmdTimeout   = 10 * time.Second
	startTimeout = 60 * time.Second
	// othersBound is how long a block may take to reach the ELs that are not faulty.
	othersBound = 3 * time.Second
	// recoverBound is how long a healed EL may take to be back on the head: a request that
	// was in flight on a dead connection times out after the spec's 8 s, then the lane
	// catches up (CatchUpInterval 2 s).
	recoverBound = 40 * time.Second
	// bnBound bounds the beacon node's answer: the primary is never faulted.
	bnBound = time.Second
	// faultSlot paces blocks during a cut; maxCut bounds how long a cut may last before its
	// lane must have noticed (a request in flight on the dead connection times out after
	// the spec's 8 s, a connect after the 2 s dial timeout).
	faultSlot = 500 * time.Millisecond
	maxCut    = 30 * time.Second
)

var tools = map[string]string{"ip": "/usr/sbin/ip", "nft": "/usr/sbin/nft", "tc": "/usr/sbin/tc"}

// requireTools fails (never skips) when the test cannot make network faults here.
func requireTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("test/netfault needs root to create network namespaces (euid %d)", os.Geteuid())
	}
	for name, path := range tools {
		if _, err := os.Stat(path); err != nil {
			p, lerr := exec.LookPath(name)
			if lerr != nil {
				t.Fatalf("test/netfault needs %s (%v; %v): install iproute2 and nftables", name, err, lerr)
			}
			tools[name] = p
		}
	}
}

// run runs a tool and fails the test if it fails.
func run(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := runErr(tool, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(tool string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, tools[tool], args...).CombinedOutput()
	return string(out), err
}

// netns is one namespace with a veth pair to the host: host side hostIP on hostIf, the
// namespace side nsIP on nsIf.
type netns struct {
	name, hostIf, nsIf string
	hostIP, nsIP       string
	subnet             string
}

// inNS runs a tool inside the namespace.
func (n *netns) inNS(t *testing.T, tool string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", n.name, tools[tool]}, args...)...)
}

// pickOctet finds X such that nothing on the host uses 10.250.X.0/24.
func pickOctet(t *testing.T) int {
	t.Helper()
	used := run(t, "ip", "-4", "-o", "addr", "show") + run(t, "ip", "-4", "route", "show", "table", "all")
	var b [2]byte
	_, _ = rand.Read(b[:])
	start := int(binary.BigEndian.Uint16(b[:]))
	for i := range 224 {
		x := 16 + (start+i)%224
		if !strings.Contains(used, fmt.Sprintf("10.250.%d.", x)) {
			return x
		}
	}
	t.Fatal("no free 10.250.X.0/24 on this host")
	return 0
}

// fenceSubnet adds an unreachable route for 10.250.X.0/24: while a test link is down its
// connected route is gone, and without this fence packets for the EL would follow the
// default route off the machine.
func fenceSubnet(t *testing.T, x int) {
	t.Helper()
	prefix := fmt.Sprintf("10.250.%d.0/24", x)
	t.Cleanup(func() {
		if out, err := runErr("ip", "route", "del", "unreachable", prefix); err != nil {
			t.Errorf("cleanup: ip route del unreachable %s: %v %s", prefix, err, out)
		}
	})
	run(t, "ip", "route", "add", "unreachable", prefix)
}

// newNetns creates namespace i with its veth pair and addresses; t.Cleanup removes both by
// name (deleting the namespace deletes its veth end, its nftables tables and qdiscs).
func newNetns(t *testing.T, tag string, x, i int) *netns {
	t.Helper()
	n := &netns{
		name:   fmt.Sprintf("spnf-%s-%d", tag, i),
		hostIf: fmt.Sprintf("spnf%s%dh", tag, i),
		nsIf:   fmt.Sprintf("spnf%s%dn", tag, i),
		hostIP: fmt.Sprintf("10.250.%d.%d", x, 4*i+1),
		nsIP:   fmt.Sprintf("10.250.%d.%d", x, 4*i+2),
		subnet: fmt.Sprintf("10.250.%d.%d/30", x, 4*i),
	}
	t.Cleanup(func() {
		if out, err := runErr("ip", "netns", "del", n.name); err != nil && !strings.Contains(out, "No such file") {
			t.Errorf("cleanup: ip netns del %s: %v %s", n.name, err, out)
		}
		// Deleting the namespace deletes the pair, asynchronously: the host end may still
		// be listed a moment, then vanish under ip link del.
		if out, err := runErr("ip", "link", "del", n.hostIf); err != nil && !strings.Contains(out, "Cannot find device") {
			t.Errorf("cleanup: ip link del %s: %v %s", n.hostIf, err, out)
		}
	})
	run(t, "ip", "netns", "add", n.name)
	run(t, "ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", n.nsIf)
	run(t, "ip", "link", "set", n.nsIf, "netns", n.name)
	run(t, "ip", "addr", "add", n.hostIP+"/30", "dev", n.hostIf)
	run(t, "ip", "link", "set", n.hostIf, "up")
	n.inNS(t, "ip", "addr", "add", n.nsIP+"/30", "dev", n.nsIf)
	n.inNS(t, "ip", "link", "set", n.nsIf, "up")
	n.inNS(t, "ip", "link", "set", "lo", "up")
	return n
}

// el is one geth running inside a namespace, listening on the namespace's address only.
type el struct {
	name   string
	ns     *netns
	node   *gethproc.Node
	secret cldriver.Secret
}

func (e *el) engineURL() string { return fmt.Sprintf("http://%s:%d", e.ns.nsIP, enginePort) }

func (e *el) rpc() *cldriver.Endpoint {
	return &cldriver.Endpoint{URL: fmt.Sprintf("http://%s:%d", e.ns.nsIP, rpcPort), HTTP: &http.Client{Timeout: 2 * time.Second}}
}

func (e *el) head() (cldriver.Head, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return cldriver.LatestHead(ctx, e.rpc())
}

// newEL initialises a geth datadir and a wrapper that runs geth inside ns; the flags after
// gethproc's own (which name 127.0.0.1) move every listener to the namespace's address.
func newEL(t *testing.T, gethBin, genesis string, ns *netns, name string) *el {
	t.Helper()
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "geth-in-"+ns.name)
	script := fmt.Sprintf("#!/bin/sh\nexec %s netns exec %s %s \"$@\"\n", tools["ip"], ns.name, gethBin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	node, err := gethproc.New(gethproc.Config{
		Bin: wrapper, Name: name, Dir: filepath.Join(dir, "geth"), ChainID: chainID, GenesisPath: genesis,
		ExtraArgs: []string{
			"--authrpc.addr", ns.nsIP, "--authrpc.port", fmt.Sprint(enginePort),
			"--http.addr", ns.nsIP, "--http.port", fmt.Sprint(rpcPort),
			"--netrestrict", ns.subnet,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &el{name: name, ns: ns, node: node, secret: node.Secret}
	t.Cleanup(func() {
		if err := node.Stop(15 * time.Second); err != nil {
			t.Errorf("stop %s: %v", name, err)
		}
		if t.Failed() {
			t.Logf("---- %s log tail ----\n%s", name, node.LogTail(40))
		}
	})
	return e
}

func (e *el) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	eng := &cldriver.Endpoint{URL: e.engineURL(), Secret: &e.secret, HTTP: &http.Client{Timeout: time.Second}}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var id string
		err := eng.Call(ctx, &id, "eth_chainId")
		cancel()
		if err == nil {
			if _, err = e.head(); err == nil {
				return
			}
		}
		if p := e.node.Process(); p == nil || p.ExitedNow() || time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v\n%s", e.name, err, e.node.LogTail(40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bnTimes records the beacon node's answer times per phase.
type bnTimes struct {
	mu    sync.Mutex
	worst time.Duration
}

func (b *bnTimes) reset() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.worst
	b.worst = 0
	return w
}

// harness is the builder, the driver, sync-proxy and the ELs behind it.
type harness struct {
	t      *testing.T
	driver *cldriver.Driver
	p      *proxy.Proxy
	url    string
	els    []*el
	bn     bnTimes
	client *http.Client
}

// post sends a request to sync-proxy as the beacon node and checks the answer.
func (h *harness) post(r cldriver.Request, id string) {
	h.t.Helper()
	start := time.Now()
	resp, err := h.client.Post(h.url+"/bn/cl", "application/json", bytes.NewReader(r.Body(cldriver.StringID(id))))
	if err != nil {
		h.t.Fatalf("%s %s: %v", r.Method, id, err)
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	h.bn.mu.Lock()
	h.bn.worst = max(h.bn.worst, took)
	h.bn.mu.Unlock()
	if resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), []byte(`"VALID"`)) {
		h.t.Fatalf("%s %s: HTTP %d %s, want the primary's VALID", r.Method, id, resp.StatusCode, buf.Bytes())
	}
}

// block builds the next block and sends it through sync-proxy; it returns when it was sent.
func (h *harness) block() (*cldriver.Block, time.Time) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := h.driver.BuildBlock(ctx)
	if err != nil {
		h.t.Fatalf("build block: %v", err)
	}
	sent := time.Now()
	h.post(b.NewPayload, fmt.Sprintf("np%d", b.Number))
	h.post(b.ForkchoiceUpdated, fmt.Sprintf("fcu%d", b.Number))
	return b, sent
}

// waitHead waits until every given EL is on want and returns how long it took from since.
func (h *harness) waitHead(want cldriver.Head, since time.Time, bound time.Duration, els ...*el) time.Duration {
	h.t.Helper()
	deadline := since.Add(bound)
	for {
		var behind []string
		for _, e := range els {
			got, err := e.head()
			if err != nil || got != want {
				behind = append(behind, fmt.Sprintf("%s at %v (%v)", e.name, got, err))
			}
		}
		if len(behind) == 0 {
			return time.Since(since)
		}
		if time.Now().After(deadline) {
			var lanes []string
			for _, l := range h.p.Lanes() {
				st := l.Stats()
				lanes = append(lanes, fmt.Sprintf("%s: %s last error %q catch-up %+v", st.Name, st.State, st.LastError, st.CatchUp))
			}
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 2)
			var stacks []string
			for _, g := range strings.Split(buf.String(), "\n\n") {
				if strings.Contains(g, "upstream.(*Lane)") {
					stacks = append(stacks, g)
				}
			}
			h.t.Fatalf("not on %s within %v: %s\nlanes:\n  %s\nlane goroutines:\n%s", want, bound, strings.Join(behind, "; "), strings.Join(lanes, "\n  "), strings.Join(stacks, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reaches polls until e is on want, for at most wait.
func (h *harness) reaches(e *el, want cldriver.Head, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		if got, err := e.head(); err == nil && got == want {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) others(target int) []*el {
	var out []*el
	for i, e := range h.els {
		if i != target {
			out = append(out, e)
		}
	}
	return out
}

// fault is one network fault on one EL's link.
type fault struct {
	name   string
	target int // index of the EL whose link is faulted (never 0: the primary answers the BN)
	blocks int // blocks built while the fault lasts (at least)
	// cut: the link carries nothing while the fault lasts. Blocks keep coming (one every
	// faultSlot) until the lane has seen a failure, so the EL really misses blocks and the
	// lane must catch it up; and the EL must be behind when the fault is healed.
	cut   bool
	apply func(t *testing.T, n *netns)
	heal  func(t *testing.T, n *netns)
}

const lossTable = "spnf_loss"

// nftDrop drops, inside the namespace, every (or one in ten·pct) TCP segment to the engine port.
func nftDrop(t *testing.T, n *netns, match ...string) {
	n.inNS(t, "nft", "add", "table", "inet", lossTable)
	n.inNS(t, "nft", "add", "chain", "inet", lossTable, "in", "{ type filter hook input priority 0; }")
	n.inNS(t, "nft", append([]string{"add", "rule", "inet", lossTable, "in", "tcp", "dport", fmt.Sprint(enginePort)}, append(match, "drop")...)...)
}

func nftHeal(t *testing.T, n *netns) { n.inNS(t, "nft", "delete", "table", "inet", lossTable) }

var faults = []fault{
	{
		name: "link-down", target: 1, blocks: 4, cut: true,
		apply: func(t *testing.T, n *netns) { run(t, "ip", "link", "set", n.hostIf, "down") },
		heal:  func(t *testing.T, n *netns) { run(t, "ip", "link", "set", n.hostIf, "up") },
	},
	{
		name: "loss-30pct", target: 2, blocks: 5,
		apply: func(t *testing.T, n *netns) { nftDrop(t, n, "numgen", "random", "mod", "10", "<", "3") },
		heal:  nftHeal,
	},
	{
		name: "tbf-1mbit-400ms", target: 1, blocks: 4,
		apply: func(t *testing.T, n *netns) {
			// Both directions: requests to the EL and its answers.
			run(t, "tc", "qdisc", "add", "dev", n.hostIf, "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms")
			n.inNS(t, "tc", "qdisc", "add", "dev", n.nsIf, "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms")
		},
		heal: func(t *testing.T, n *netns) {
			run(t, "tc", "qdisc", "del", "dev", n.hostIf, "root")
			n.inNS(t, "tc", "qdisc", "del", "dev", n.nsIf, "root")
		},
	},
	{
		name: "blackhole", target: 2, blocks: 4, cut: true,
		apply: func(t *testing.T, n *netns) { nftDrop(t, n) },
		heal:  nftHeal,
	},
}

// TestNetFaults: three gethes in their own namespaces behind sync-proxy (direct mode, el1
// primary), a CL driver building blocks on a fourth geth. Each fault in turn hits one
// follower's link while blocks keep coming: the other ELs get every block within
// othersBound, the beacon node's answers stay under bnBound, and once the link is healed the
// faulty EL is back on the head (the lane recovered and replayed what it missed) within
// recoverBound. At the end every EL holds exactly the driver's chain.
func TestNetFaults(t *testing.T) {
	requireTools(t)
	gethBin, err := gethproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	tag := fmt.Sprintf("%d", os.Getpid()%100000)
	x := pickOctet(t)
	fenceSubnet(t, x)

	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	genesisTime := uint64(time.Now().Unix())
	genesis := filepath.Join(t.TempDir(), "genesis.json")
	g := gethproc.Genesis{Fork: gethproc.Osaka, ChainID: big.NewInt(chainID), Time: genesisTime,
		Funded: []common.Address{crypto.PubkeyToAddress(key.PublicKey)}, Balance: new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)}
	if err := g.WriteFile(genesis); err != nil {
		t.Fatal(err)
	}

	builder, err := gethproc.New(gethproc.Config{Bin: gethBin, Name: "builder", Dir: t.TempDir(), ChainID: chainID, GenesisPath: genesis})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = builder.Stop(15 * time.Second) })
	var els []*el
	for i := range 3 {
		ns := newNetns(t, tag, x, i)
		els = append(els, newEL(t, gethBin, genesis, ns, fmt.Sprintf("el%d", i+1)))
	}
	if err := builder.Start(); err != nil {
		t.Fatal(err)
	}
	for _, e := range els {
		if err := e.node.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := builder.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range els {
		e.waitReady(t)
	}
	started := time.Since(began)

	driver, err := cldriver.New(ctx, cldriver.Config{
		Fork: cldriver.Osaka, Engine: builder.Engine("builder-cl"), RPC: builder.RPC(), ChainID: big.NewInt(chainID),
		Funder: key, Recipient: common.HexToAddress("0x000000000000000000000000000000000000beef"), TxsPerBlock: 1,
		GenesisTime: genesisTime, SlotSeconds: 12, FeeRecipient: common.HexToAddress("0x00000000000000000000000000000000000fee01"),
	})
	if err != nil {
		t.Fatal(err)
	}

	// sync-proxy, in process, on loopback; the ELs are reached over their veth links.
	cfg := proxy.Config{Instance: "netfault", Election: beacon.Config{SlotDuration: 12 * time.Second, SilenceTimeout: 18 * time.Second, PeerMargin: 12 * time.Second}}
	for i, e := range els {
		role := upstream.RoleFollower
		if i == 0 {
			role = upstream.RolePrimary
		}
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: e.name, URL: e.engineURL(), Role: role, DialTimeout: 2 * time.Second,
			Signer: jwtauth.NewSigner(jwtauth.Secret(e.secret), clock.Real{}, jwtauth.SignerOptions{ID: "netfault"})})
	}
	p, err := proxy.New(cfg, clock.Real{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	laneDone := make(chan struct{})
	go func() { p.Run(runCtx); close(laneDone) }()
	srv := httptest.NewServer(p)
	t.Cleanup(func() { srv.Close(); stop(); <-laneDone })
	h := &harness{t: t, driver: driver, p: p, url: srv.URL, els: els, client: &http.Client{Timeout: 20 * time.Second}}

	// Baseline: every EL follows.
	for range 3 {
		b, sent := h.block()
		h.waitHead(b.Head(), sent, othersBound, els...)
	}
	h.bn.reset()

	for _, f := range faults {
		target, ns := els[f.target], els[f.target].ns
		lane := p.Lanes()[f.target]
		b0 := driver.Head().Number
		failedBefore := lane.Stats().Failed
		f.apply(t, ns)
		applied := time.Now()
		var othersWorst time.Duration
		var last *cldriver.Block
		for i := 1; ; i++ {
			b, sent := h.block()
			last = b
			othersWorst = max(othersWorst, h.waitHead(b.Head(), sent, othersBound, h.others(f.target)...))
			if i >= f.blocks && (!f.cut || lane.Stats().Failed > failedBefore) {
				break
			}
			if time.Since(applied) > maxCut {
				t.Fatalf("%s: the lane of %s saw no failure in %v: %+v", f.name, target.name, maxCut, lane.Stats())
			}
			if f.cut {
				time.Sleep(faultSlot)
			}
		}
		during := lane.Stats()
		if got, err := target.head(); f.cut && err == nil && got == last.Head() {
			t.Errorf("%s: %s reached block %d through a cut link", f.name, target.name, last.Number)
		}
		faultFor := time.Since(applied)
		f.heal(t, ns)
		healed := time.Now()
		// Slots keep coming after the heal; the EL must be back on the head within
		// recoverBound (a request in flight on the dead connection times out first).
		var recovered time.Duration
		for {
			b, sent := h.block()
			h.waitHead(b.Head(), sent, othersBound, h.others(f.target)...)
			if h.reaches(target, b.Head(), time.Second) {
				recovered = time.Since(healed)
				break
			}
			if time.Since(healed) > recoverBound {
				h.waitHead(b.Head(), sent, 0, target) // fails with the lanes' state
			}
		}
		st := p.Lanes()[f.target].Stats()
		t.Logf("NETFAULT %s on %s for %v (%d blocks): bn_answer_max=%v others_lag_max=%v recovered_after_heal=%v lane_during={%s failed=%d last_error=%q} lane_after={%s failed=%d catchups=%d last_catchup={el_head=%d replayed=%d gap=%v}}",
			f.name, target.name, faultFor.Round(100*time.Millisecond), last.Number-b0, h.bn.reset().Round(time.Millisecond), othersWorst.Round(time.Millisecond), recovered.Round(time.Millisecond),
			during.State, during.Failed, truncate(during.LastError, 90), st.State, st.Failed, st.CatchUps, st.CatchUp.ELHead.Number, st.CatchUp.Replayed, st.CatchUp.Gap)
		if w := h.bn.worst; w > bnBound {
			t.Errorf("%s: the beacon node waited %v", f.name, w)
		}
	}

	// Every EL holds exactly the driver's chain: no block lost, no head moved elsewhere.
	head := driver.Head()
	h.waitHead(head, time.Now(), othersBound, els...)
	for _, e := range els {
		for _, blk := range driver.Blocks() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			got, err := cldriver.BlockHead(ctx, e.rpc(), fmt.Sprintf("0x%x", blk.Number))
			cancel()
			if err != nil || got != blk.Head() {
				t.Errorf("%s block %d: %v (%v), want %v", e.name, blk.Number, got, err, blk.Head())
			}
		}
		if st := p.Lanes()[slices.IndexFunc(els, func(x *el) bool { return x == e })].Stats(); st.Drops[upstream.DropStaleHead] != 0 {
			t.Errorf("%s: %d stale heads refused; none were sent", e.name, st.Drops[upstream.DropStaleHead])
		}
	}
	t.Logf("NETFAULT total: %d blocks, geth start %v, whole test %v", head.Number, started.Round(time.Millisecond), time.Since(began).Round(time.Second))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
