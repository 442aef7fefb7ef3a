package e2e

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

const (
	gethStartTimeout = 60 * time.Second
	stopTimeout      = 15 * time.Second
	pollInterval     = 50 * time.Millisecond
	logTailLines     = 60
)

// gethNode is one geth (internal/gethproc) bound to a test: every failure is fatal, and the
// process is stopped (and its log tail printed if the test failed) in t.Cleanup.
type gethNode struct {
	*gethproc.Node
	t          testing.TB
	name       string
	secretPath string
	secret     cldriver.Secret
}

// gethBinary finds geth: $GETH_BINARY, PATH, then $GOPATH/bin/geth. Missing geth is a failure.
func gethBinary(t testing.TB) string {
	t.Helper()
	p, err := gethproc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startGeths initialises one datadir per name from the chain's genesis, launches every geth
// and waits until all of them answer on both ports. They are stopped in t.Cleanup.
func startGeths(t *testing.T, chain *testChain, names ...string) []*gethNode {
	t.Helper()
	nodes := make([]*gethNode, len(names))
	for i, name := range names {
		nodes[i] = newGethNode(t, chain, name)
	}
	launchGeths(t, nodes...)
	return nodes
}

// launchGeths starts every node, then waits until all of them are ready.
func launchGeths(t *testing.T, nodes ...*gethNode) {
	t.Helper()
	for _, n := range nodes {
		n.launch()
	}
	for _, n := range nodes {
		n.waitReady()
	}
}

// newGethNode initialises a datadir; extra flags (e.g. --state.scheme hash) are appended to
// geth's command line. The node is not started.
func newGethNode(t *testing.T, chain *testChain, name string, extra ...string) *gethNode {
	t.Helper()
	n, err := gethproc.New(gethproc.Config{
		Bin:         gethBinary(t),
		Name:        name,
		Dir:         t.TempDir(),
		ChainID:     chain.chainID.Uint64(),
		GenesisPath: chain.genesisPath,
		ExtraArgs:   extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	g := &gethNode{Node: n, t: t, name: name, secretPath: n.SecretPath, secret: n.Secret}
	// Registered after t.TempDir, so it runs before the directory is removed.
	t.Cleanup(g.cleanup)
	return g
}

func (n *gethNode) launch() {
	n.t.Helper()
	if err := n.Node.Start(); err != nil {
		n.t.Fatal(err)
	}
}

func (n *gethNode) waitReady() {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gethStartTimeout)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		n.t.Fatal(err)
	}
}

// Start relaunches a stopped or killed geth on the same datadir and ports and waits for it.
func (n *gethNode) Start() {
	n.t.Helper()
	n.launch()
	n.waitReady()
}

// Stop sends SIGTERM and waits; after stopTimeout it kills (and fails the test).
func (n *gethNode) Stop() {
	n.t.Helper()
	if err := n.Node.Stop(stopTimeout); err != nil {
		n.t.Fatalf("stop: %v", err)
	}
}

// Kill sends SIGKILL and waits, like a crash: geth loses state it had not persisted.
func (n *gethNode) Kill() {
	n.t.Helper()
	if err := n.Node.Kill(); err != nil {
		n.t.Fatalf("kill: %v", err)
	}
}

// Restart is Stop then Start.
func (n *gethNode) Restart() {
	n.t.Helper()
	n.Stop()
	n.Start()
}

// pid is the running process's id.
func (n *gethNode) pid() int { return n.Process().PID() }

// engineURL is the authenticated Engine API endpoint.
func (n *gethNode) engineURL() string { return n.EngineURL() }

// engine returns an Engine API client with the node's own secret and the given JWT id claim.
func (n *gethNode) engine(jwtID string) *cldriver.Endpoint { return n.Engine(jwtID) }

// rpc returns a client for the node's public HTTP JSON-RPC.
func (n *gethNode) rpc() *cldriver.Endpoint { return n.RPC() }

func (n *gethNode) logTail() string { return n.LogTail(logTailLines) }

// cleanup stops the process and, if the test failed, prints the end of its log.
func (n *gethNode) cleanup() {
	if err := n.Node.Stop(stopTimeout); err != nil {
		n.t.Errorf("%v", err)
	}
	if n.t.Failed() {
		n.t.Logf("---- %s log tail (%s) ----\n%s", n.name, n.LogPath, n.logTail())
	}
	keepLog(n.t, n.name, n.LogPath)
}

// testHTTPClient bounds every request the harness makes.
var testHTTPClient = gethproc.HTTPClient

// startProcess runs bin with args, output appended to logPath; on Linux the child is killed
// if the test binary dies.
func startProcess(bin string, args []string, logPath string) (*gethproc.Process, error) {
	return gethproc.Command{Bin: bin, Args: args, LogPath: logPath}.Start()
}

// TestGethTakesFreshPortsWhenOneIsTaken: a port FreePorts chose can be taken by another
// process before geth binds it (CI saw geth exit with "bind: address already in use"). The
// first start then moves to fresh ports instead of failing the test that wanted a geth.
func TestGethTakesFreshPortsWhenOneIsTaken(t *testing.T) {
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix()))
	n := newGethNode(t, chain, "squatted")
	taken := n.AuthPort
	l, err := net.Listen("tcp", n.EngineAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n.Start()
	if n.AuthPort == taken {
		t.Fatalf("geth is ready on the taken port %d", taken)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.Head(ctx); err != nil {
		t.Fatalf("head after relaunch: %v", err)
	}
	// Once geth has answered, its ports are fixed: a restart keeps them.
	auth, http := n.AuthPort, n.HTTPPort
	n.Restart()
	if n.AuthPort != auth || n.HTTPPort != http {
		t.Fatalf("restart moved the ports: %d/%d -> %d/%d", auth, http, n.AuthPort, n.HTTPPort)
	}
}
