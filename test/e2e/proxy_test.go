package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

const proxyStartTimeout = 30 * time.Second

// Roles of an EL behind sync-proxy; a config with no primary is mirror mode.
const (
	rolePrimary  = "primary"
	roleFollower = "follower"
)

// proxyEL is one geth behind sync-proxy.
type proxyEL struct {
	node *gethNode
	role string
}

// beaconNode is one BN identity with its own JWT secret, as sync-proxy is told about it.
type beaconNode struct {
	name       string
	secret     cldriver.Secret
	secretPath string
}

// proxyConfig is what a scenario asks of sync-proxy; syncProxyArgs turns it into flags.
type proxyConfig struct {
	els   []proxyEL
	bns   []*beaconNode
	slot  time.Duration
	extra []string // more flags, e.g. --silence-timeout 3s
}

// syncProxyArgs is the one place that knows sync-proxy's command line.
func syncProxyArgs(listen, opsListen string, cfg proxyConfig) []string {
	args := []string{"--listen", listen, "--ops-listen", opsListen}
	for _, el := range cfg.els {
		args = append(args, "--el", fmt.Sprintf("name=%s,url=%s,jwt-secret=%s,role=%s",
			el.node.name, el.node.engineURL(), el.node.secretPath, el.role))
	}
	for _, bn := range cfg.bns {
		args = append(args, "--bn", fmt.Sprintf("name=%s,jwt-secret=%s", bn.name, bn.secretPath))
	}
	args = append(args, "--slot-duration", cfg.slot.String(), "--log-level", "debug")
	return append(args, cfg.extra...)
}

// syncProxy is one running sync-proxy process.
type syncProxy struct {
	t       *testing.T
	listen  string
	ops     string
	logPath string
	proc    *gethproc.Process
}

// newBeaconNode makes a BN identity with a fresh secret written to a file.
func newBeaconNode(t *testing.T, name string) *beaconNode {
	t.Helper()
	secret, err := cldriver.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	bn := &beaconNode{name: name, secret: secret, secretPath: filepath.Join(t.TempDir(), name+".hex")}
	if err := secret.WriteFile(bn.secretPath); err != nil {
		t.Fatal(err)
	}
	return bn
}

// startSyncProxy builds (once) and starts sync-proxy with cfg, waits for /healthz, and stops
// it in t.Cleanup. If another process took one of its ports before it bound them, it starts
// again on fresh ports (at most three times).
func startSyncProxy(t *testing.T, cfg proxyConfig) *syncProxy {
	t.Helper()
	bin := syncProxyBinary(t)
	p := &syncProxy{t: t, logPath: filepath.Join(t.TempDir(), "sync-proxy.log")}
	t.Cleanup(p.cleanup)
	for attempt := 0; ; attempt++ {
		ports := freePorts(t, 2)
		p.listen = fmt.Sprintf("127.0.0.1:%d", ports[0])
		p.ops = fmt.Sprintf("127.0.0.1:%d", ports[1])
		args := syncProxyArgs(p.listen, p.ops, cfg)
		logStart := gethproc.FileSize(p.logPath)
		proc, err := startProcess(bin, args, p.logPath)
		if err != nil {
			t.Fatalf("sync-proxy: %v", err)
		}
		p.proc = proc
		err = p.waitHealthy()
		if err == nil {
			return p
		}
		if attempt < 2 && p.proc.ExitedNow() && gethproc.BindConflict(gethproc.FileFrom(p.logPath, logStart)) {
			t.Logf("sync-proxy lost a port to another process; starting again on fresh ports")
			continue
		}
		t.Fatalf("%v\nargs: %q\n%s", err, args, fileTail(p.logPath, logTailLines))
	}
}

func (p *syncProxy) waitHealthy() error {
	deadline := time.Now().Add(proxyStartTimeout)
	for {
		err := p.healthz()
		if err == nil {
			return nil
		}
		if p.proc.ExitedNow() {
			return fmt.Errorf("sync-proxy exited during start-up (%v)", p.proc.ExitErr())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("sync-proxy not healthy after %v: %w", proxyStartTimeout, err)
		}
		time.Sleep(pollInterval)
	}
}

func (p *syncProxy) healthz() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.ops+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := testHTTPClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

// engine returns an Engine API client that talks to sync-proxy as bn.
func (p *syncProxy) engine(bn *beaconNode) *cldriver.Endpoint {
	s := bn.secret
	return &cldriver.Endpoint{URL: "http://" + p.listen, Secret: &s, JWTID: bn.name, HTTP: testHTTPClient}
}

func (p *syncProxy) cleanup() {
	if p.proc == nil {
		return
	}
	if err := p.proc.Stop(stopTimeout); err != nil {
		p.t.Errorf("sync-proxy: stop: %v", err)
	}
	if p.t.Failed() {
		p.t.Logf("---- sync-proxy log tail (%s) ----\n%s", p.logPath, fileTail(p.logPath, logTailLines))
	}
	keepLog(p.t, "sync-proxy", p.logPath)
}

// syncProxyBuild is the binary built once per test binary run.
var syncProxyBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// syncProxyBinary builds ./cmd/sync-proxy once and returns its path; it fails the test if the
// command has no main package yet or does not build.
func syncProxyBinary(t *testing.T) string {
	t.Helper()
	root := repoRoot(t)
	requireMainPackage(t, root, "./cmd/sync-proxy")
	b := &syncProxyBuild
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "sync-proxy-e2e-")
		if b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "sync-proxy")
		cmd := exec.Command("go", "build", "-o", b.path, "./cmd/sync-proxy")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./cmd/sync-proxy: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

func removeSyncProxyBuild() {
	if syncProxyBuild.dir != "" {
		os.RemoveAll(syncProxyBuild.dir)
	}
}

// repoRoot is the directory of the main module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	return filepath.Dir(gomod)
}

// requireMainPackage fails the test unless pkg (relative to root) is a main package.
func requireMainPackage(t *testing.T, root, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.Name}}", pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if name := strings.TrimSpace(string(out)); err != nil || name != "main" {
		t.Fatalf("%s is not a main package yet (go list: %q, %v): the proxy scenarios need the sync-proxy binary", pkg, name, err)
	}
}

// TestProxyDirectMode is scenario (a): direct mode with a primary and two followers behind
// sync-proxy; two BNs, each with its own JWT secret, both send every newPayload and
// forkchoiceUpdated through the proxy (BN1 with "np7"-style ids, BN2 with numeric ids,
// alternating who goes first). Only the writer's head updates may reach the gethes; as both
// BNs follow the same chain, every driven geth must reach the builder's head after each block.
func TestProxyDirectMode(t *testing.T) {
	const blocks = 30
	syncProxyBinary(t) // fail fast, before starting any geth

	// Past virtual slots: the last block lands at about the wall-clock time, no head is in
	// the future, and the proxy's wall-clock checks see a BN catching up.
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix())-(blocks+1)*slotSeconds)
	nodes := startGeths(t, chain, "builder", "primary", "follower1", "follower2")
	bns := []*beaconNode{newBeaconNode(t, "bn1"), newBeaconNode(t, "bn2")}
	proxy := startSyncProxy(t, proxyConfig{
		els: []proxyEL{
			{node: nodes[1], role: rolePrimary},
			{node: nodes[2], role: roleFollower},
			{node: nodes[3], role: roleFollower},
		},
		bns:  bns,
		slot: slotSeconds * time.Second,
	})
	requireLoopbackOnly(t, "sync-proxy", proxy.proc.PID())
	driver := newDriver(t, chain, nodes[0])
	engines := []*cldriver.Endpoint{proxy.engine(bns[0]), proxy.engine(bns[1])}

	for range blocks {
		b := buildBlock(t, driver)
		order := []int{0, 1}
		if b.Number%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			id, _ := blockIDs(b.Number, i)
			requireStatus(t, fmt.Sprintf("block %d newPayload from %s", b.Number, bns[i].name),
				sendNewPayload(t, engines[i], b, id), cldriver.StatusValid)
		}
		for _, i := range order {
			_, id := blockIDs(b.Number, i)
			requireStatus(t, fmt.Sprintf("block %d forkchoiceUpdated from %s", b.Number, bns[i].name),
				sendForkchoice(t, engines[i], b, id), cldriver.StatusValid, cldriver.StatusSyncing)
		}
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	requireNonce(t, chain, driver.Sent(), nodes...)
}
