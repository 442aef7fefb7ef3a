// Command sync-proxy-devnet shows sync-proxy at work on one machine (`make devnet`): it
// writes a fresh genesis and JWT secrets into a temp folder, starts three gethes (el-1
// primary, el-2 and el-3 followers; every listener on 127.0.0.1, no peers, so the Engine API
// is their only way forward), starts sync-proxy in front of them in direct mode, and plays
// two beacon nodes:
//
//   - bn-1 proposes a block every slot through sync-proxy, as a beacon node with validators
//     does: forkchoiceUpdated with payload attributes (forwarded to every EL), getPayload
//     (answered by the EL that issued the payload id), newPayload and forkchoiceUpdated
//     (to every EL, each with its own JWT secret), with a few transfers in each block;
//   - bn-2 sends the same newPayload and forkchoiceUpdated, as a second beacon node
//     following the same chain does: sync-proxy deduplicates its blocks and keeps its head
//     updates from the ELs unless it becomes the writer.
//
// With --late-reorg-every N, every Nth slot bn-1 treats the head as a weak late block and
// re-orgs it out, as Lighthouse, Prysm and Teku do by default (consensus-specs
// get_proposer_head): it builds on the head's parent with forkchoiceUpdated(head = parent,
// attributes), then makes its own block the head. Every EL must follow both steps.
//
// Every slot it prints the block, the writer, how many ELs have the new block as head (read
// from each geth's own JSON-RPC), and each EL as sync-proxy's GET /status reports it. Ctrl-C (SIGINT) or SIGTERM stops sync-proxy and the gethes by PID and
// removes the folder (unless --keep).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

const (
	chainID      = 1337
	startTimeout = time.Minute
	stopTimeout  = 15 * time.Second
	txsPerBlock  = 2
	maxFailures  = 5 // consecutive slots without a block before the devnet gives up
	followWait   = time.Second
)

type options struct {
	syncProxy   string
	geth        string
	slot        time.Duration
	dir         string
	keep        bool
	maxDuration time.Duration
	lateReorg   uint64 // every lateReorg-th slot is a proposer's re-org build; 0: never
}

func main() {
	var o options
	flag.StringVar(&o.syncProxy, "sync-proxy", "", "sync-proxy binary (default: bin/sync-proxy, else sync-proxy on PATH)")
	flag.StringVar(&o.geth, "geth", "", "geth binary (default: $GETH_BINARY, PATH, $GOPATH/bin/geth)")
	flag.DurationVar(&o.slot, "slot", 4*time.Second, "slot length: one block per slot (whole seconds)")
	flag.StringVar(&o.dir, "dir", "", "folder for datadirs, secrets and logs (default: a new temp folder)")
	flag.BoolVar(&o.keep, "keep", false, "keep the folder when stopping")
	flag.DurationVar(&o.maxDuration, "max-duration", 24*time.Hour, "stop by itself after this long")
	flag.Uint64Var(&o.lateReorg, "late-reorg-every", 0, "every Nth slot, bn-1 re-orgs the head out as a late block: it builds on the head's parent (0: never)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.maxDuration)
	defer cancel()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "sync-proxy-devnet: %v\n", err)
		os.Exit(1)
	}
}

// devnet is everything run started and must stop.
type devnet struct {
	out       io.Writer
	lateReorg uint64
	dir       string
	els       []*gethproc.Node
	proxy     *gethproc.Process
	proxyLg   string
	ops       string
	engine    string
}

func run(ctx context.Context, o options, out io.Writer) (err error) {
	if o.slot < time.Second || o.slot%time.Second != 0 {
		return fmt.Errorf("--slot %v: want whole seconds, at least 1s", o.slot)
	}
	gethBin := o.geth
	if gethBin == "" {
		if gethBin, err = gethproc.Binary(); err != nil {
			return err
		}
	}
	proxyBin, err := findSyncProxy(o.syncProxy)
	if err != nil {
		return err
	}
	dir := o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "sync-proxy-devnet-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d := &devnet{out: out, dir: dir, lateReorg: o.lateReorg}
	defer func() {
		d.stop()
		if o.keep || o.dir != "" {
			fmt.Fprintf(out, "files kept in %s\n", dir)
		} else if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
	}()

	// Genesis: Osaka, slots on the wall clock from now, one funded account for the transfers.
	funder, err := crypto.GenerateKey()
	if err != nil {
		return err
	}
	genesisTime := uint64(time.Now().Unix())
	genesisPath := filepath.Join(dir, "genesis.json")
	g := gethproc.Genesis{
		Fork: gethproc.Osaka, ChainID: big.NewInt(chainID), Time: genesisTime,
		Funded:  []common.Address{crypto.PubkeyToAddress(funder.PublicKey)},
		Balance: new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil),
	}
	if err := g.WriteFile(genesisPath); err != nil {
		return err
	}
	fmt.Fprintf(out, "devnet in %s: genesis %s, %v slots\n", dir, genesisPath, o.slot)

	if err := d.startGeths(ctx, gethBin, genesisPath); err != nil {
		return err
	}
	bns, err := d.startSyncProxy(ctx, proxyBin, o.slot)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "sync-proxy (pid %d) at %s, direct mode; status page http://%s/ (JSON at /status), log %s\n",
		d.proxy.PID(), d.engine, d.ops, d.proxyLg)
	fmt.Fprintf(out, "bn-1 proposes a block every %v through sync-proxy; bn-2 sends the same blocks. Ctrl-C stops everything.\n", o.slot)
	if o.lateReorg > 0 {
		fmt.Fprintf(out, "every %d slots bn-1 re-orgs the head out as a late block: it builds on the head's parent.\n", o.lateReorg)
	}

	slotSeconds := uint64(o.slot / time.Second)
	driverCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	driver, err := cldriver.New(driverCtx, cldriver.Config{
		Fork:         cldriver.Osaka,
		Engine:       bns[0],
		RPC:          d.els[0].RPC(),
		ChainID:      big.NewInt(chainID),
		Funder:       funder,
		Recipient:    common.HexToAddress("0x000000000000000000000000000000000000beef"),
		TxsPerBlock:  txsPerBlock,
		GenesisTime:  genesisTime,
		SlotSeconds:  slotSeconds,
		FeeRecipient: common.HexToAddress("0x00000000000000000000000000000000000fee01"),
	})
	cancel()
	if err != nil {
		return fmt.Errorf("bn-1: %w", err)
	}
	return d.loop(ctx, driver, bns, genesisTime, o.slot)
}

// findSyncProxy picks the sync-proxy binary: the flag, bin/sync-proxy, then PATH.
func findSyncProxy(flagPath string) (string, error) {
	if flagPath != "" {
		if _, err := os.Stat(flagPath); err != nil {
			return "", fmt.Errorf("--sync-proxy: %w", err)
		}
		return filepath.Abs(flagPath)
	}
	if _, err := os.Stat("bin/sync-proxy"); err == nil {
		return filepath.Abs("bin/sync-proxy")
	}
	if p, err := exec.LookPath("sync-proxy"); err == nil {
		return p, nil
	}
	return "", errors.New("sync-proxy binary not found: run `make build` or give --sync-proxy")
}

// startGeths initialises and starts el-1..el-3, each with its own secret, and waits for them.
func (d *devnet) startGeths(ctx context.Context, bin, genesisPath string) error {
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("el-%d", i)
		n, err := gethproc.New(gethproc.Config{
			Bin: bin, Name: name, Dir: filepath.Join(d.dir, name), ChainID: chainID, GenesisPath: genesisPath,
			OwnGroup: true, // Ctrl-C reaches only the devnet, which stops geth in order
		})
		if err != nil {
			return err
		}
		if err := n.Start(); err != nil {
			return err
		}
		d.els = append(d.els, n)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for _, n := range d.els {
		if err := n.WaitReady(ctx); err != nil {
			return err
		}
		fmt.Fprintf(d.out, "%s (pid %d): engine %s, json-rpc %s, log %s\n", n.Name, n.Process().PID(), n.EngineURL(), n.RPC().URL, n.LogPath)
	}
	return nil
}

// startSyncProxy starts sync-proxy in front of the gethes with two beacon nodes, each with
// its own secret, and returns the two BNs' Engine API clients.
func (d *devnet) startSyncProxy(ctx context.Context, bin string, slot time.Duration) ([]*cldriver.Endpoint, error) {
	ports, err := gethproc.FreePorts(2)
	if err != nil {
		return nil, err
	}
	d.engine = fmt.Sprintf("127.0.0.1:%d", ports[0])
	d.ops = fmt.Sprintf("127.0.0.1:%d", ports[1])
	args := []string{"--listen", d.engine, "--ops-listen", d.ops,
		"--slot-duration", slot.String()} // the election thresholds follow the slot
	for i, n := range d.els {
		role := "follower"
		if i == 0 {
			role = "primary"
		}
		args = append(args, "--el", fmt.Sprintf("name=%s,url=%s,jwt-secret=%s,role=%s", n.Name, n.EngineURL(), n.SecretPath, role))
	}
	var bns []*cldriver.Endpoint
	for _, name := range []string{"bn-1", "bn-2"} {
		s, err := cldriver.NewSecret()
		if err != nil {
			return nil, err
		}
		path := filepath.Join(d.dir, name+".jwt")
		if err := s.WriteFile(path); err != nil {
			return nil, err
		}
		args = append(args, "--bn", fmt.Sprintf("name=%s,jwt-secret=%s", name, path))
		bns = append(bns, &cldriver.Endpoint{URL: "http://" + d.engine, Secret: &s, HTTP: gethproc.HTTPClient})
	}
	d.proxyLg = filepath.Join(d.dir, "sync-proxy.log")
	p, err := gethproc.Command{Bin: bin, Args: args, LogPath: d.proxyLg, OwnGroup: true}.Start()
	if err != nil {
		return nil, err
	}
	d.proxy = p
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		if _, err := d.status(ctx); err == nil {
			return bns, nil
		}
		if p.ExitedNow() {
			return nil, fmt.Errorf("sync-proxy exited during start-up (%v):\n%s", p.ExitErr(), gethproc.FileTail(d.proxyLg, 20))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("sync-proxy not up: %w\n%s", ctx.Err(), gethproc.FileTail(d.proxyLg, 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loop proposes one block per slot until ctx is done.
func (d *devnet) loop(ctx context.Context, driver *cldriver.Driver, bns []*cldriver.Endpoint, genesis uint64, slot time.Duration) error {
	failures := 0
	for ctx.Err() == nil {
		n := driver.NextSlot()
		at := time.Unix(int64(genesis), 0).Add(time.Duration(n) * slot)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Until(at)):
		}
		line, err := d.slot(ctx, driver, bns)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			fmt.Fprintf(d.out, "%s slot %d failed (%d in a row): %v\n", time.Now().Format("15:04:05"), n, failures, err)
			if failures >= maxFailures {
				return fmt.Errorf("%d slots in a row without a block; last error: %w", failures, err)
			}
			continue
		}
		failures = 0
		fmt.Fprintln(d.out, line)
	}
	return nil
}

// slot has bn-1 propose the next block (or, on a late re-org slot, a block on the head's
// parent that it then makes the head) and bn-2 send it again, then reports the status.
func (d *devnet) slot(ctx context.Context, driver *cldriver.Driver, bns []*cldriver.Endpoint) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	late := driver.Head()
	reorg := d.lateReorg > 0 && late.Number > 0 && driver.NextSlot()%d.lateReorg == 0
	var b *cldriver.Block
	var err error
	if reorg {
		if b, err = driver.BuildOnParent(ctx); err == nil {
			err = driver.SetHead(ctx, b)
		}
	} else {
		b, err = driver.BuildBlock(ctx)
	}
	if err != nil {
		return "", err
	}
	took := time.Since(start)
	var np cldriver.PayloadStatus
	if err := bns[1].Send(ctx, b.NewPayload, cldriver.StringID(fmt.Sprintf("np%d", b.Number)), &np); err != nil {
		return "", fmt.Errorf("bn-2 newPayload: %w", err)
	}
	var fcu cldriver.ForkchoiceResponse
	if err := bns[1].Send(ctx, b.ForkchoiceUpdated, cldriver.StringID(fmt.Sprintf("fcu%d", b.Number)), &fcu); err != nil {
		return "", fmt.Errorf("bn-2 forkchoiceUpdated: %w", err)
	}
	following := d.following(ctx, b.Head())
	st, err := d.status(ctx)
	if err != nil {
		return "", fmt.Errorf("sync-proxy status: %w", err)
	}
	var b2 strings.Builder
	fmt.Fprintf(&b2, "%s slot %d block #%d %s (%d txs) built by bn-1 via sync-proxy in %v",
		time.Now().Format("15:04:05"), b.Slot, b.Number, b.Hash.TerminalString(), len(b.Transactions), took.Round(time.Millisecond))
	if reorg {
		fmt.Fprintf(&b2, ", on #%d: late block #%d %s re-orged out", b.Number-1, late.Number, late.Hash.TerminalString())
	}
	fmt.Fprintf(&b2, "; bn-2 got %s/%s | writer %s | %d/%d ELs at #%d |",
		np.Status, fcu.PayloadStatus.Status, orNone(st.Writer), following, len(d.els), b.Number)
	for _, el := range st.ELs {
		head := "-"
		if el.Head != nil {
			head = fmt.Sprintf("#%d", el.Head.Number)
		}
		fmt.Fprintf(&b2, " %s(%s) %s %s %s", el.Name, el.Role, el.State, head, el.LastStatus)
	}
	return b2.String(), nil
}

// following waits up to followWait until every EL's own JSON-RPC reports head as its head,
// and returns how many do.
func (d *devnet) following(ctx context.Context, head cldriver.Head) int {
	deadline := time.Now().Add(followWait)
	for {
		n := 0
		for _, el := range d.els {
			if h, err := el.Head(ctx); err == nil && h == head {
				n++
			}
		}
		if n == len(d.els) || time.Now().After(deadline) || ctx.Err() != nil {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// proxyStatus is the part of GET /status the devnet prints.
type proxyStatus struct {
	Writer string `json:"writer"`
	ELs    []struct {
		Name       string `json:"name"`
		Role       string `json:"role"`
		State      string `json:"state"`
		LastStatus string `json:"last_status"`
		Head       *struct {
			Number uint64 `json:"number"`
		} `json:"head"`
	} `json:"els"`
}

func (d *devnet) status(ctx context.Context) (proxyStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.ops+"/status", nil)
	if err != nil {
		return proxyStatus{}, err
	}
	resp, err := gethproc.HTTPClient.Do(req)
	if err != nil {
		return proxyStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proxyStatus{}, fmt.Errorf("GET /status: %s", resp.Status)
	}
	var st proxyStatus
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// stop ends sync-proxy first (it delivers what is queued), then every geth, each by PID.
func (d *devnet) stop() {
	if d.proxy != nil {
		report(d.out, "sync-proxy", d.proxy.PID(), d.proxy.Stop(stopTimeout))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, n := range d.els {
		p := n.Process()
		if p == nil {
			continue
		}
		wg.Go(func() {
			err := n.Stop(stopTimeout)
			mu.Lock()
			report(d.out, n.Name, p.PID(), err)
			mu.Unlock()
		})
	}
	wg.Wait()
}

func report(out io.Writer, name string, pid int, err error) {
	if err != nil {
		fmt.Fprintf(out, "stopped %s (pid %d): %v\n", name, pid, err)
		return
	}
	fmt.Fprintf(out, "stopped %s (pid %d)\n", name, pid)
}
