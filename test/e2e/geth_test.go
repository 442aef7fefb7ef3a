package e2e

import (
	"context"
	"errors"
	"fmt"
	"go/build"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

const (
	gethStartTimeout = 60 * time.Second
	stopTimeout      = 15 * time.Second
	pollInterval     = 50 * time.Millisecond
	logTailLines     = 60
)

// gethP2PConfig pins the p2p listener to loopback: the --port flag can only set ":port",
// which listens on every interface. Discovery is off and no peers are allowed.
const gethP2PConfig = `[Node.P2P]
ListenAddr = "127.0.0.1:0"
NoDiscovery = true
DiscoveryV4 = false
DiscoveryV5 = false
MaxPeers = 0
`

// gethNode is one geth process with its own datadir, JWT secret and loopback ports. The ports
// and datadir survive Stop/Kill/Start.
type gethNode struct {
	t          testing.TB
	name       string
	bin        string
	dataDir    string
	configPath string
	secretPath string
	logPath    string
	chainID    string
	secret     cldriver.Secret
	authPort   int
	httpPort   int

	mu   sync.Mutex
	proc *process // nil when not running
}

// gethBinary finds geth: $GETH_BINARY, PATH, then $GOPATH/bin/geth. Missing geth is a failure.
func gethBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("GETH_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("GETH_BINARY=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("geth"); err == nil {
		return p
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "geth")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	t.Fatalf("geth not found (GETH_BINARY unset, not on PATH, not at %s); install it with: "+
		"go install github.com/ethereum/go-ethereum/cmd/geth@v1.17.10", p)
	return ""
}

// startGeths initialises one datadir per name from the chain's genesis, launches every geth
// and waits until all of them answer on both ports. They are stopped in t.Cleanup.
func startGeths(t *testing.T, chain *testChain, names ...string) []*gethNode {
	t.Helper()
	bin := gethBinary(t)
	nodes := make([]*gethNode, len(names))
	for i, name := range names {
		nodes[i] = newGethNode(t, bin, name, chain)
	}
	for _, n := range nodes {
		n.launch()
	}
	for _, n := range nodes {
		n.waitReady()
	}
	return nodes
}

func newGethNode(t *testing.T, bin, name string, chain *testChain) *gethNode {
	t.Helper()
	dir := t.TempDir()
	secret, err := cldriver.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	n := &gethNode{
		t:          t,
		name:       name,
		bin:        bin,
		dataDir:    filepath.Join(dir, "data"),
		configPath: filepath.Join(dir, "geth.toml"),
		secretPath: filepath.Join(dir, "jwt.hex"),
		logPath:    filepath.Join(dir, "geth.log"),
		chainID:    chain.chainID.String(),
		secret:     secret,
		authPort:   freePort(t),
		httpPort:   freePort(t),
	}
	if err := secret.WriteFile(n.secretPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.configPath, []byte(gethP2PConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	n.initDataDir(chain.genesisPath)
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(n.cleanup)
	return n
}

func (n *gethNode) initDataDir(genesisPath string) {
	n.t.Helper()
	out, err := exec.Command(n.bin, "init", "--datadir", n.dataDir, genesisPath).CombinedOutput()
	if err != nil {
		n.t.Fatalf("%s: geth init: %v\n%s", n.name, err, tail(out, logTailLines))
	}
}

// gethArgs is geth's command line: every listener on 127.0.0.1, no discovery, no peers.
func (n *gethNode) gethArgs() []string {
	return []string{
		"--config", n.configPath,
		"--datadir", n.dataDir,
		"--networkid", n.chainID,
		"--syncmode", "full",
		"--authrpc.addr", "127.0.0.1",
		"--authrpc.port", strconv.Itoa(n.authPort),
		"--authrpc.jwtsecret", n.secretPath,
		"--http",
		"--http.addr", "127.0.0.1",
		"--http.port", strconv.Itoa(n.httpPort),
		"--http.api", "eth,net,web3,txpool",
		"--nat", "none",
		"--netrestrict", "127.0.0.0/8",
		"--nodiscover",
		"--maxpeers", "0",
		"--ipcdisable",
		"--cache", "128",
		"--verbosity", "3",
	}
}

// launch starts the process, appending its output to the node's log file.
func (n *gethNode) launch() {
	n.t.Helper()
	p, err := startProcess(n.bin, n.gethArgs(), n.logPath)
	if err != nil {
		n.t.Fatalf("%s: %v", n.name, err)
	}
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()
}

// waitReady polls both ports until geth answers, failing early if the process exits.
func (n *gethNode) waitReady() {
	n.t.Helper()
	deadline := time.Now().Add(gethStartTimeout)
	for {
		err := n.ping()
		if err == nil {
			return
		}
		if p := n.process(); p == nil || p.exitedNow() {
			n.t.Fatalf("%s exited during start-up (%v)\n%s", n.name, p.exitErr(), n.logTail())
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s not ready after %v: %v\n%s", n.name, gethStartTimeout, err, n.logTail())
		}
		time.Sleep(pollInterval)
	}
}

func (n *gethNode) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var id string
	if err := n.rpc().Call(ctx, &id, "eth_chainId"); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if err := n.engine("ping").Call(ctx, &id, "eth_chainId"); err != nil {
		return fmt.Errorf("authrpc: %w", err)
	}
	return nil
}

// Start relaunches a stopped or killed geth on the same datadir and ports.
func (n *gethNode) Start() {
	n.t.Helper()
	if p := n.process(); p != nil && !p.exitedNow() {
		n.t.Fatalf("%s: Start while running", n.name)
	}
	n.launch()
	n.waitReady()
}

// Stop sends SIGTERM and waits; after stopTimeout it kills.
func (n *gethNode) Stop() {
	n.t.Helper()
	if err := n.process().stop(stopTimeout); err != nil {
		n.t.Fatalf("%s: stop: %v", n.name, err)
	}
}

// Kill sends SIGKILL and waits, like a crash: geth loses state it had not persisted.
func (n *gethNode) Kill() {
	n.t.Helper()
	if err := n.process().kill(); err != nil {
		n.t.Fatalf("%s: kill: %v", n.name, err)
	}
}

// Restart is Stop then Start.
func (n *gethNode) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

func (n *gethNode) process() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// pid is the running process's id.
func (n *gethNode) pid() int { return n.process().cmd.Process.Pid }

// engineURL is the authenticated Engine API endpoint.
func (n *gethNode) engineURL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.authPort) }

// engine returns an Engine API client with the node's own secret and the given JWT id claim.
func (n *gethNode) engine(jwtID string) *cldriver.Endpoint {
	s := n.secret
	return &cldriver.Endpoint{URL: n.engineURL(), Secret: &s, JWTID: jwtID, HTTP: testHTTPClient}
}

// rpc returns a client for the node's public HTTP JSON-RPC.
func (n *gethNode) rpc() *cldriver.Endpoint {
	return &cldriver.Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", n.httpPort), HTTP: testHTTPClient}
}

func (n *gethNode) logTail() string { return fileTail(n.logPath, logTailLines) }

// cleanup stops the process and, if the test failed, prints the end of its log.
func (n *gethNode) cleanup() {
	if p := n.process(); p != nil {
		if err := p.stop(stopTimeout); err != nil {
			n.t.Errorf("%s: stop: %v", n.name, err)
		}
	}
	if n.t.Failed() {
		n.t.Logf("---- %s log tail (%s) ----\n%s", n.name, n.logPath, n.logTail())
	}
}

// testHTTPClient bounds every request the harness makes.
var testHTTPClient = &http.Client{Timeout: 10 * time.Second}

// process is a started child process whose exit is awaited by one goroutine.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid after exited is closed
}

// startProcess runs bin with args, output appended to logPath; on Linux the child is killed
// if the test binary dies.
func startProcess(bin string, args []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

func (p *process) exitedNow() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *process) exitErr() error {
	if p == nil || !p.exitedNow() {
		return nil
	}
	return p.err
}

// stop sends SIGTERM to the process (by pid) and waits; after timeout it sends SIGKILL.
func (p *process) stop(timeout time.Duration) error {
	if p == nil || p.exitedNow() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
	}
	if err := p.kill(); err != nil {
		return err
	}
	return fmt.Errorf("did not exit %v after SIGTERM; killed", timeout)
}

// kill sends SIGKILL (by pid) and waits for the exit.
func (p *process) kill() error {
	if p == nil || p.exitedNow() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return nil
}
