package gethproc

import (
	"context"
	"fmt"
	"go/build"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// Version is the geth release the tests and the devnet are written against.
const Version = "v1.17.10"

// InstallHint is the command that installs that release.
const InstallHint = "go install github.com/ethereum/go-ethereum/cmd/geth@" + Version

const pollInterval = 50 * time.Millisecond

// p2pConfig pins the p2p listener to loopback: the --port flag can only set ":port", which
// listens on every interface. Discovery is off and no peers are allowed.
const p2pConfig = `[Node.P2P]
ListenAddr = "127.0.0.1:0"
NoDiscovery = true
DiscoveryV4 = false
DiscoveryV5 = false
MaxPeers = 0
`

// HTTPClient bounds every request this package and its callers make to geth.
var HTTPClient = &http.Client{Timeout: 10 * time.Second}

// Binary finds geth: $GETH_BINARY, PATH, then $GOPATH/bin/geth.
func Binary() (string, error) {
	if p := os.Getenv("GETH_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("GETH_BINARY=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("geth"); err == nil {
		return p, nil
	}
	p := filepath.Join(build.Default.GOPATH, "bin", "geth")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("geth not found (GETH_BINARY unset, not on PATH, not at %s); install it with: %s", p, InstallHint)
}

// Config describes one geth.
type Config struct {
	Bin         string // geth binary
	Name        string // for logs and errors
	Dir         string // holds data/, geth.toml, jwt.hex and geth.log; created if missing
	ChainID     uint64
	GenesisPath string
	// Secret is the Engine API JWT secret; the zero value generates one.
	Secret cldriver.Secret
	// ExtraArgs are appended to the command line (e.g. --state.scheme hash --gcmode archive).
	ExtraArgs []string
	// OwnGroup starts geth in its own process group (see Command.OwnGroup).
	OwnGroup bool
}

// Node is one geth with its own datadir, JWT secret and loopback ports. The ports and the
// datadir survive Stop/Kill/Start.
type Node struct {
	cfg        Config
	Name       string
	DataDir    string
	ConfigPath string
	SecretPath string
	LogPath    string
	Secret     cldriver.Secret
	AuthPort   int
	HTTPPort   int

	mu        sync.Mutex
	proc      *Process // nil before the first Start
	logStart  int64    // size of the log when proc started
	everReady bool     // the ports were answered once: they are fixed from then on
	relaunch  int      // relaunches after losing a port at first start
}

// maxRelaunch bounds how often a first start is retried on fresh ports.
const maxRelaunch = 3

// pickPorts chooses two distinct free ports for the Engine API and the public HTTP API.
func (n *Node) pickPorts() error {
	ports, err := FreePorts(2)
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	n.AuthPort, n.HTTPPort = ports[0], ports[1]
	return nil
}

// New writes the node's files and runs `geth init` on the genesis. It does not start geth.
func New(cfg Config) (*Node, error) {
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if cfg.Secret == (cldriver.Secret{}) {
		s, err := cldriver.NewSecret()
		if err != nil {
			return nil, err
		}
		cfg.Secret = s
	}
	n := &Node{
		cfg:        cfg,
		Name:       cfg.Name,
		DataDir:    filepath.Join(cfg.Dir, "data"),
		ConfigPath: filepath.Join(cfg.Dir, "geth.toml"),
		SecretPath: filepath.Join(cfg.Dir, "jwt.hex"),
		LogPath:    filepath.Join(cfg.Dir, "geth.log"),
		Secret:     cfg.Secret,
	}
	if err := n.pickPorts(); err != nil {
		return nil, err
	}
	if err := n.Secret.WriteFile(n.SecretPath); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.ConfigPath, []byte(p2pConfig), 0o644); err != nil {
		return nil, err
	}
	args := []string{"init", "--datadir", n.DataDir}
	args = append(args, initArgs(cfg.ExtraArgs)...)
	out, err := exec.Command(cfg.Bin, append(args, cfg.GenesisPath)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s: geth init: %v\n%s", n.Name, err, Tail(out, 40))
	}
	return n, nil
}

// initArgs keeps the flags `geth init` must see too (the state scheme is chosen at init).
func initArgs(extra []string) []string {
	var out []string
	for i := 0; i < len(extra); i++ {
		if extra[i] == "--state.scheme" && i+1 < len(extra) {
			out = append(out, extra[i], extra[i+1])
			i++
		}
	}
	return out
}

// Args is geth's command line: every listener on 127.0.0.1, no discovery, no peers.
func (n *Node) Args() []string {
	args := []string{
		"--config", n.ConfigPath,
		"--datadir", n.DataDir,
		"--networkid", strconv.FormatUint(n.cfg.ChainID, 10),
		"--syncmode", "full",
		"--authrpc.addr", "127.0.0.1",
		"--authrpc.port", strconv.Itoa(n.AuthPort),
		"--authrpc.jwtsecret", n.SecretPath,
		"--http",
		"--http.addr", "127.0.0.1",
		"--http.port", strconv.Itoa(n.HTTPPort),
		"--http.api", "eth,net,web3,txpool",
		"--nat", "none",
		"--netrestrict", "127.0.0.0/8",
		"--nodiscover",
		"--maxpeers", "0",
		"--ipcdisable",
		"--cache", "128",
		"--verbosity", "3",
	}
	return append(args, n.cfg.ExtraArgs...)
}

// Start launches geth (appending to its log) without waiting for it; see WaitReady.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.ExitedNow() {
		return fmt.Errorf("%s: Start while running", n.Name)
	}
	return n.startLocked()
}

func (n *Node) startLocked() error {
	n.logStart = FileSize(n.LogPath)
	p, err := Command{Bin: n.cfg.Bin, Args: n.Args(), LogPath: n.LogPath, OwnGroup: n.cfg.OwnGroup}.Start()
	if err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	n.proc = p
	return nil
}

// relaunchOnFreshPorts handles a first start that lost a port to another process between
// FreePorts and geth's bind: it picks two new ports and starts again, at most maxRelaunch
// times. Once geth has answered, its ports are part of the caller's configuration (a proxy
// points at them), so a later conflict is an error.
func (n *Node) relaunchOnFreshPorts() (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.everReady || n.relaunch >= maxRelaunch || !BindConflict(FileFrom(n.LogPath, n.logStart)) {
		return false, nil
	}
	n.relaunch++
	if err := n.pickPorts(); err != nil {
		return false, err
	}
	if err := n.startLocked(); err != nil {
		return false, err
	}
	return true, nil
}

// WaitReady polls both ports until geth answers, failing early if the process exits.
func (n *Node) WaitReady(ctx context.Context) error {
	for {
		err := n.Ping(ctx)
		if err == nil {
			n.mu.Lock()
			n.everReady = true
			n.mu.Unlock()
			return nil
		}
		if p := n.Process(); p == nil || p.ExitedNow() {
			if again, rerr := n.relaunchOnFreshPorts(); rerr != nil {
				return rerr
			} else if again {
				continue
			}
			return fmt.Errorf("%s exited during start-up (%v)\n%s", n.Name, p.ExitErr(), n.LogTail(40))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (%w)\n%s", n.Name, err, ctx.Err(), n.LogTail(40))
		case <-time.After(pollInterval):
		}
	}
}

// Ping asks both the public and the authenticated port for the chain id.
func (n *Node) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var id string
	if err := n.RPC().Call(ctx, &id, "eth_chainId"); err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if err := n.Engine("ping").Call(ctx, &id, "eth_chainId"); err != nil {
		return fmt.Errorf("authrpc: %w", err)
	}
	return nil
}

// Stop sends SIGTERM and waits; after timeout it kills.
func (n *Node) Stop(timeout time.Duration) error {
	if err := n.Process().Stop(timeout); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return nil
}

// Kill sends SIGKILL and waits, like a crash: geth loses what it had not persisted.
func (n *Node) Kill() error {
	if err := n.Process().Kill(); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	return nil
}

// Process is the current (or last) process; nil before the first Start.
func (n *Node) Process() *Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

// Running reports whether geth is running.
func (n *Node) Running() bool {
	p := n.Process()
	return p != nil && !p.ExitedNow()
}

// EngineURL is the authenticated Engine API endpoint.
func (n *Node) EngineURL() string { return fmt.Sprintf("http://127.0.0.1:%d", n.AuthPort) }

// EngineAddr is the Engine API's host:port.
func (n *Node) EngineAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.AuthPort) }

// Engine returns an Engine API client with the node's own secret and the given JWT id claim.
func (n *Node) Engine(jwtID string) *cldriver.Endpoint {
	s := n.Secret
	return &cldriver.Endpoint{URL: n.EngineURL(), Secret: &s, JWTID: jwtID, HTTP: HTTPClient}
}

// RPC returns a client for the node's public HTTP JSON-RPC.
func (n *Node) RPC() *cldriver.Endpoint {
	return &cldriver.Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", n.HTTPPort), HTTP: HTTPClient}
}

// Head reads the node's canonical head over its own JSON-RPC.
func (n *Node) Head(ctx context.Context) (cldriver.Head, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cldriver.LatestHead(ctx, n.RPC())
}

// LogTail returns the last lines of the node's log.
func (n *Node) LogTail(lines int) string { return FileTail(n.LogPath, lines) }

// FileTail returns the last n lines of a file, or why it could not be read.
func FileTail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return Tail(raw, n)
}

// Tail returns the last n lines of b.
func Tail(b []byte, n int) string {
	for len(b) > 0 && b[len(b)-1] == '\n' {
		b = b[:len(b)-1]
	}
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// FileSize is the size of path, or 0 if it cannot be read.
func FileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// FileFrom returns what path holds from offset on (at most 1 MiB), or "" if it cannot be read.
func FileFrom(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, 1<<20)
	k, _ := f.ReadAt(b, offset)
	return string(b[:k])
}
