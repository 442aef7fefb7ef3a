package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

// Lodestar v1.5.1 (Capella only), installed into SYNC_PROXY_LODESTAR_DIR (default
// ~/.cache/sync-proxy/lodestar) by `scripts/setup.sh lodestar`, which `make test` runs. (Not LODESTAR_*: Lodestar reads every
// LODESTAR_* variable as a command-line flag, so LODESTAR_DIR would become --dir.)
const (
	lodestarScript      = "node_modules/@chainsafe/lodestar/lib/index.js"
	lodestarDefaultDir  = ".cache/sync-proxy/lodestar" // under $HOME
	lodestarSlot        = 2 * time.Second
	lodestarStopTimeout = 30 * time.Second
)

// lodestarCommand returns node and Lodestar's entry script; missing either is a failure.
func lodestarCommand(t *testing.T) (node, script string) {
	t.Helper()
	dir := os.Getenv("SYNC_PROXY_LODESTAR_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, lodestarDefaultDir)
	}
	script = filepath.Join(dir, lodestarScript)
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("Lodestar not found at %s (%v); install it with: SYNC_PROXY_LODESTAR_DIR=%s scripts/setup.sh lodestar (make test does)", script, err, dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node (Node.js) not found on PATH: Lodestar needs it: %v", err)
	}
	return node, script
}

// lodestarNode is one Lodestar beacon node process, restartable on the same data dir.
type lodestarNode struct {
	t        *testing.T
	name     string
	node     string
	args     []string
	dir      string
	logPath  string
	restPort int
	p2pPort  int
	proc     *gethproc.Process
}

// lodestarParams are the chain parameters every node of the test network shares: minimal
// preset (LODESTAR_PRESET), every fork up to Capella at epoch 0, merged at genesis, 2 s slots.
func lodestarParams() []string {
	return []string{
		"--params.ALTAIR_FORK_EPOCH", "0",
		"--params.BELLATRIX_FORK_EPOCH", "0",
		"--params.CAPELLA_FORK_EPOCH", "0",
		"--params.TERMINAL_TOTAL_DIFFICULTY", "0",
		"--params.SECONDS_PER_SLOT", strconv.Itoa(int(lodestarSlot / time.Second)),
	}
}

// newLodestar prepares a node: "dev" with the 8 interop validators, or "beacon" following
// the network; every listener on 127.0.0.1.
func newLodestar(t *testing.T, name, node, script string, engineURL, jwtPath string, cmd []string) *lodestarNode {
	t.Helper()
	ports := freePorts(t, 2)
	l := &lodestarNode{t: t, name: name, node: node, dir: t.TempDir(), restPort: ports[0], p2pPort: ports[1]}
	l.logPath = filepath.Join(l.dir, "lodestar.log")
	p2p := strconv.Itoa(l.p2pPort)
	l.args = append([]string{script}, cmd...)
	l.args = append(l.args, lodestarParams()...)
	l.args = append(l.args,
		"--execution.urls", engineURL,
		"--jwt-secret", jwtPath,
		"--rest.address", "127.0.0.1",
		"--rest.port", strconv.Itoa(l.restPort),
		"--listenAddress", "127.0.0.1",
		"--port", p2p,
		"--enr.ip", "127.0.0.1",
		"--enr.tcp", p2p,
		"--enr.udp", p2p,
		"--eth1", "false",
		"--mdns", "false",
		"--metrics", "false",
		"--dataDir", filepath.Join(l.dir, "data"),
	)
	t.Cleanup(l.cleanup)
	return l
}

// start launches the node in its folder (lodestar dev writes genesis.ssz there).
func (l *lodestarNode) start() {
	l.t.Helper()
	p, err := gethproc.Command{Bin: l.node, Args: l.args, Dir: l.dir, Env: []string{"LODESTAR_PRESET=minimal"}, Drop: []string{"LODESTAR_"}, LogPath: l.logPath}.Start()
	if err != nil {
		l.t.Fatalf("%s: %v", l.name, err)
	}
	l.proc = p
}

// stop sends SIGTERM and waits for Lodestar's clean shutdown.
func (l *lodestarNode) stop() {
	l.t.Helper()
	if err := l.proc.Stop(lodestarStopTimeout); err != nil {
		l.t.Fatalf("%s: stop: %v", l.name, err)
	}
}

// waitREST polls the REST API until it answers, failing if the process exits.
func (l *lodestarNode) waitREST(timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var v json.RawMessage
		err := l.get("/eth/v1/node/identity", &v)
		if err == nil {
			return
		}
		if l.proc.ExitedNow() {
			l.t.Fatalf("%s exited during start-up (%v)\n%s", l.name, l.proc.ExitErr(), l.logTail(logTailLines))
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: REST API not up after %v: %v\n%s", l.name, timeout, err, l.logTail(logTailLines))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// get reads a beacon API path into out (the whole JSON document).
func (l *lodestarNode) get(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", l.restPort, path), nil)
	if err != nil {
		return err
	}
	resp, err := testHTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// enr is the node's ENR, for the others' --bootnodes.
func (l *lodestarNode) enr() string {
	l.t.Helper()
	var id struct {
		Data struct {
			ENR string `json:"enr"`
		} `json:"data"`
	}
	if err := l.get("/eth/v1/node/identity", &id); err != nil || id.Data.ENR == "" {
		l.t.Fatalf("%s: read ENR: %v", l.name, err)
	}
	return id.Data.ENR
}

// beaconHead is a BN's head as its REST API reports it.
type beaconHead struct {
	Slot      uint64
	ExecHash  common.Hash
	ExecBlock uint64
}

// head reads the head slot (/eth/v1/beacon/headers/head) and the head block's execution
// payload (/eth/v2/beacon/blocks/head).
func (l *lodestarNode) head() (beaconHead, error) {
	var blk struct {
		Data struct {
			Message struct {
				Slot string `json:"slot"`
				Body struct {
					ExecutionPayload struct {
						BlockHash   common.Hash `json:"block_hash"`
						BlockNumber string      `json:"block_number"`
					} `json:"execution_payload"`
				} `json:"body"`
			} `json:"message"`
		} `json:"data"`
	}
	var hdr struct {
		Data struct {
			Header struct {
				Message struct {
					Slot string `json:"slot"`
				} `json:"message"`
			} `json:"header"`
		} `json:"data"`
	}
	if err := l.get("/eth/v1/beacon/headers/head", &hdr); err != nil {
		return beaconHead{}, err
	}
	if err := l.get("/eth/v2/beacon/blocks/head", &blk); err != nil {
		return beaconHead{}, err
	}
	slot, _ := strconv.ParseUint(hdr.Data.Header.Message.Slot, 10, 64)
	num, _ := strconv.ParseUint(blk.Data.Message.Body.ExecutionPayload.BlockNumber, 10, 64)
	return beaconHead{Slot: slot, ExecHash: blk.Data.Message.Body.ExecutionPayload.BlockHash, ExecBlock: num}, nil
}

// logTail is the end of the log without colour codes.
func (l *lodestarNode) logTail(n int) string { return stripANSI(fileTail(l.logPath, n)) }

func (l *lodestarNode) cleanup() {
	if err := l.proc.Stop(lodestarStopTimeout); err != nil {
		l.t.Errorf("%s: stop: %v", l.name, err)
	}
	if l.t.Failed() {
		l.t.Logf("---- %s log tail (%s) ----\n%s", l.name, l.logPath, l.logTail(logTailLines))
	}
	if raw, err := os.ReadFile(l.logPath); err == nil {
		plain := filepath.Join(l.dir, "lodestar.plain.log")
		if os.WriteFile(plain, []byte(stripANSI(string(raw))), 0o644) == nil {
			keepLog(l.t, l.name, plain)
		}
	}
}

// TestLodestar is scenario (e): real beacon nodes. Lodestar v1.5.1 runs a Capella network
// of three beacon nodes on 127.0.0.1 with 2 s slots: bn1 is `lodestar dev` with the 8 interop
// validators, bn2 and bn3 are `lodestar beacon` following it over p2p. All three send their
// Engine API traffic to sync-proxy (direct mode, one JWT secret per BN), which drives three
// gethes (a primary and two followers) that have no other way to move: no peers, no other
// consensus client. The Shanghai genesis is merged at genesis with the beacon genesis time.
//
// The chain must advance and every driven geth must follow it; a non-validating BN (the
// writer, if the writer is one) is stopped and restarted mid-run without a gap; at the end the head every BN reports (its
// execution payload's block hash) is every geth's head, and no geth's head ever went back.
func TestLodestar(t *testing.T) {
	const (
		genesisLead = 45 * time.Second // every BN starts before genesis (README: ~30 s margin)
		warmBlocks  = 10               // blocks before a non-validating BN stops
		downBlocks  = 5                // blocks while it is down
		afterBlocks = 10               // blocks after it is back
	)
	node, script := lodestarCommand(t)
	syncProxyBinary(t)
	gethBinary(t)

	genesis := time.Now().Add(genesisLead).Truncate(time.Second)
	chain := newGenesis(t, gethproc.Shanghai, cldriver.Osaka, uint64(genesis.Unix())) // no cldriver on this chain
	nodes := startGeths(t, chain, "primary", "follower1", "follower2")
	primary, followers := nodes[0], nodes[1:]
	g, err := cldriver.BlockHead(t.Context(), primary.rpc(), "0x0")
	if err != nil {
		t.Fatalf("read genesis hash: %v", err)
	}
	bns := []*beaconNode{newBeaconNode(t, "bn1"), newBeaconNode(t, "bn2"), newBeaconNode(t, "bn3")}
	proxy := startSyncProxy(t, proxyConfig{
		els: []proxyEL{
			{node: primary, role: rolePrimary},
			{node: followers[0], role: roleFollower},
			{node: followers[1], role: roleFollower},
		},
		bns:   bns,
		slot:  lodestarSlot,
		extra: []string{"--silence-timeout", "4s"},
	})
	engineURL := "http://" + proxy.listen
	watch := watchHeads(t, 100*time.Millisecond, nodes...)

	bn1 := newLodestar(t, "bn1", node, script, engineURL, bns[0].secretPath, []string{"dev",
		"--genesisValidators", "8", "--startValidators", "0..7",
		"--genesisTime", strconv.FormatInt(genesis.Unix(), 10), "--genesisEth1Hash", g.Hash.Hex(),
	})
	bn1.args = append(bn1.args, "--beaconNodes", fmt.Sprintf("http://127.0.0.1:%d", bn1.restPort))
	bn1.start()
	bn1.waitREST(time.Until(genesis))
	ssz := filepath.Join(bn1.dir, "genesis.ssz")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if fi, err := os.Stat(ssz); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bn1 wrote no %s\n%s", ssz, bn1.logTail(logTailLines))
		}
	}
	enr := bn1.enr()
	followerArgs := []string{"beacon", "--network", "dev", "--genesisStateFile", ssz,
		"--bootnodes", enr, "--network.connectToDiscv5Bootnodes", "true"}
	bn2 := newLodestar(t, "bn2", node, script, engineURL, bns[1].secretPath, followerArgs)
	bn3 := newLodestar(t, "bn3", node, script, engineURL, bns[2].secretPath, followerArgs)
	bn2.start()
	bn3.start()
	bn2.waitREST(time.Until(genesis))
	bn3.waitREST(time.Until(genesis))
	t.Logf("three beacon nodes up %v before genesis", time.Until(genesis).Round(time.Second))
	for _, l := range []*lodestarNode{bn1, bn2, bn3} {
		requireLoopbackOnly(t, l.name, l.proc.PID())
	}

	// waitBlocks waits until the primary geth's head reaches n, for at most n-ish slots plus
	// margin, logging what every BN and geth shows.
	waitBlocks := func(n uint64) {
		t.Helper()
		deadline := time.Now().Add(time.Until(genesis) + time.Duration(n+8)*lodestarSlot + 30*time.Second)
		for {
			h, err := headOf(primary)
			if err == nil && h.Number >= n {
				return
			}
			if time.Now().After(deadline) {
				st, _ := proxy.status()
				t.Fatalf("primary geth head %v (%v), want ≥ %d by now; proxy: %s", h, err, n, st)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitBlocks(warmBlocks)
	st := proxy.mustStatus(t)
	t.Logf("after %d blocks: %s", warmBlocks, st)

	// A non-validating BN stops for a few blocks and comes back: the writer if it is one of
	// them (then the role must move on), else bn2.
	victim := bn2
	if st.Writer == "bn3" {
		victim = bn3
	}
	h, _ := headOf(primary)
	stopAt := time.Now()
	victim.stop()
	t.Logf("%s stopped at block %d (writer was %s)", victim.name, h.Number, st.Writer)
	waitBlocks(h.Number + downBlocks)
	h, _ = headOf(primary)
	victim.start()
	victim.waitREST(time.Minute)
	restartAt := time.Now()
	t.Logf("%s restarted at block %d, %v after it stopped", victim.name, h.Number, restartAt.Sub(stopAt).Round(time.Second))
	waitBlocks(h.Number + afterBlocks)
	end := time.Now()

	// Every geth follows; the BNs' heads are the gethes' heads.
	var heads []string
	var last error
	ok := false
	for deadline := time.Now().Add(6 * lodestarSlot); time.Now().Before(deadline) && !ok; time.Sleep(100 * time.Millisecond) {
		heads, ok, last = sameHeads(primary, followers, []*lodestarNode{bn1, bn2, bn3})
	}
	if !ok {
		t.Fatalf("BNs and gethes never showed the same head (%v):\n%s", last, strings.Join(heads, "\n"))
	}
	t.Logf("same head everywhere:\n%s", strings.Join(heads, "\n"))

	// No gap: the chain advanced all along and the followers kept up with the primary.
	from := genesis.Add(3 * lodestarSlot)
	stall := watch.longestStall(primary, from, end)
	t.Logf("primary's head: longest time without a new head %v", stall.Round(time.Millisecond))
	if stall > 4*lodestarSlot {
		t.Errorf("the chain stalled for %v (more than 4 slots)", stall)
	}
	for _, f := range followers {
		lag, at := watch.longestLag(f, primary, from, end)
		t.Logf("%s: worst lag behind the primary %v (block %d)", f.name, lag.Round(time.Millisecond), at)
		if lag > lodestarSlot {
			t.Errorf("%s lagged the primary by %v at block %d (more than a slot)", f.name, lag, at)
		}
	}
	watch.Stop()
	if back, samples := watch.Backwards(); len(back) > 0 {
		t.Fatalf("a geth's head went backwards (%d samples):\n%s", samples, strings.Join(back, "\n"))
	}
	requireNoHeadRegression(t, nodes...)
	st = proxy.mustStatus(t)
	t.Logf("status at the end: %s", st)
	for _, el := range st.ELs {
		if el.State != "up" {
			t.Errorf("el %s is %s (%s)", el.Name, el.State, el.LastError)
		}
	}
	for _, bn := range st.BNs {
		if !strings.HasPrefix(bn.Name, "bn") {
			t.Errorf("sync-proxy saw a beacon node it could not name: %q (want bn1..bn3 by their JWT secrets)", bn.Name)
		}
	}
	// Missed proposals are reported, not failed: see lodestarMissed.
	if bh, err := bn1.head(); err == nil {
		t.Logf("bn1: head slot %d carries execution block #%d: %d slot(s) without a block; %s",
			bh.Slot, bh.ExecBlock, bh.Slot-min(bh.Slot, bh.ExecBlock), lodestarMissed(bn1))
	}
	hp, _ := headOf(primary)
	t.Logf("scenario (e): %d blocks in %v from genesis (%v with start-up)", hp.Number, end.Sub(genesis).Round(time.Second), time.Since(genesis.Add(-genesisLead)).Round(time.Second))
}

// sameHeads reports each geth's head and each BN's head (execution block of its head block)
// and whether they are all the same block.
func sameHeads(primary *gethNode, followers []*gethNode, bns []*lodestarNode) ([]string, bool, error) {
	want, err := headOf(primary)
	if err != nil {
		return nil, false, err
	}
	lines := []string{fmt.Sprintf("  %s: %s", primary.name, want)}
	ok := true
	for _, f := range followers {
		h, err := headOf(f)
		lines = append(lines, fmt.Sprintf("  %s: %s %v", f.name, h, errOr(err)))
		ok = ok && err == nil && h == want
	}
	for _, b := range bns {
		h, err := b.head()
		lines = append(lines, fmt.Sprintf("  %s: slot %d, execution block #%d %s %v", b.name, h.Slot, h.ExecBlock, h.ExecHash.TerminalString(), errOr(err)))
		ok = ok && err == nil && h.ExecHash == want.Hash
	}
	return lines, ok, nil
}

// lodestarMissed summarises the proposals a Lodestar node's log says failed, with the reason.
func lodestarMissed(l *lodestarNode) string {
	raw, err := os.ReadFile(l.logPath)
	if err != nil {
		return err.Error()
	}
	var missed []string
	for _, line := range strings.Split(stripANSI(string(raw)), "\n") {
		if strings.Contains(line, "Error proposing block") || strings.Contains(line, "Failed to run prepareForNextSlot") {
			missed = append(missed, strings.Join(strings.Fields(line), " "))
		}
	}
	if len(missed) == 0 {
		return "no failed proposal in its log"
	}
	return fmt.Sprintf("failed proposals in its log: %s", strings.Join(missed, " | "))
}

func errOr(err error) string {
	if err != nil {
		return err.Error()
	}
	return ""
}
