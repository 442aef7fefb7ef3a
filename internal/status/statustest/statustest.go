// Package statustest runs a real proxy.Proxy in front of fake execution clients for the
// tests of the observability packages (status, metrics, daemon): scripted beacon node
// traffic in, snapshots, pages and metrics out. It needs no real client.
package statustest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// GenesisTS is block 0's timestamp; block n is 12 s later per n.
const GenesisTS = 1_700_000_000

// Slot is the tests' slot duration.
const Slot = 12 * time.Second

// BlockHash is the hash of test block n.
func BlockHash(n uint64) engine.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return engine.Hash(sha256.Sum256(b[:]))
}

// BlockTS is the timestamp of test block n.
func BlockTS(n uint64) uint64 { return GenesisTS + 12*n }

// BlockTime is the timestamp of test block n as a time.
func BlockTime(n uint64) time.Time { return time.Unix(int64(BlockTS(n)), 0) }

// NewPayload is an engine_newPayloadV3 request for block n.
func NewPayload(n uint64) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"engine_newPayloadV3","params":[{"parentHash":"%s","feeRecipient":"0x%040x","stateRoot":"0x%064x","receiptsRoot":"0x%064x","logsBloom":"0x%0512x","prevRandao":"0x%064x","blockNumber":"0x%x","gasLimit":"0x1c9c380","gasUsed":"0x0","timestamp":"0x%x","extraData":"0x","baseFeePerGas":"0x7","blockHash":"%s","transactions":[],"withdrawals":[],"blobGasUsed":"0x0","excessBlobGas":"0x0"},[],"0x%064x"]}`,
		n, BlockHash(n-1), 0, 0, 0, 0, 0, n, BlockTS(n), BlockHash(n), n)
}

// Forkchoice is an engine_forkchoiceUpdatedV3 request with head block n, no attributes.
func Forkchoice(n uint64) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":"%s","safeBlockHash":"%s","finalizedBlockHash":"%s"},null]}`,
		1000+n, BlockHash(n), BlockHash(n), BlockHash(0))
}

// EL names one fake execution client and its role.
type EL struct {
	Name string
	Role upstream.Role
}

// Options configures a Rig.
type Options struct {
	// ELs are the fake execution clients, in order. Default: "el-a" and "el-b", followers.
	ELs []EL
	// Hooks are passed to the proxy (metrics).
	Hooks proxy.Hooks
	// BacklogBytes is the lanes' shared budget (default the proxy's).
	BacklogBytes int64
	// Election, when set, changes the election's config (12 s slots, 18 s silence, 12 s
	// peer margin) before the proxy is built.
	Election func(*beacon.Config)
}

// Rig is a proxy in front of fake ELs, served over HTTP, on a manual clock that starts at
// block 1's timestamp.
type Rig struct {
	T     testing.TB
	Proxy *proxy.Proxy
	ELs   map[string]*fakeel.EL
	Srv   *httptest.Server
	Clock *clock.Manual

	stop context.CancelFunc
	done chan struct{}
}

// New starts a rig; it is closed by t.Cleanup.
func New(t testing.TB, o Options) *Rig {
	t.Helper()
	if len(o.ELs) == 0 {
		o.ELs = []EL{{"el-a", upstream.RoleFollower}, {"el-b", upstream.RoleFollower}}
	}
	r := &Rig{T: t, ELs: map[string]*fakeel.EL{}, Clock: clock.NewManual(BlockTime(1)), done: make(chan struct{})}
	cfg := proxy.Config{Instance: "statustest", Hooks: o.Hooks, BacklogBytes: o.BacklogBytes, Election: beacon.Config{
		SlotDuration: Slot, SilenceTimeout: 18 * time.Second, PeerMargin: 12 * time.Second,
	}}
	if o.Election != nil {
		o.Election(&cfg.Election)
	}
	for _, e := range o.ELs {
		fe := fakeel.New(e.Name, nil)
		r.ELs[e.Name] = fe
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: e.Name, URL: fe.URL(), Role: e.Role})
	}
	p, err := proxy.New(cfg, r.Clock, nil)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	r.Proxy = p
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { p.Run(ctx); close(r.done) }()
	r.Srv = httptest.NewServer(p)
	t.Cleanup(r.Close)
	return r
}

// Close stops everything; it is safe to call twice.
func (r *Rig) Close() {
	r.Srv.Close()
	for _, e := range r.ELs {
		e.Close()
	}
	r.stop()
	<-r.done
}

// Post sends body as beacon node bn (named by the /bn/<name> path) and returns the answer.
func (r *Rig) Post(bn string, body []byte) []byte {
	r.T.Helper()
	resp, err := r.Srv.Client().Post(r.Srv.URL+"/bn/"+bn, "application/json", bytes.NewReader(body))
	if err != nil {
		r.T.Fatalf("post as %s: %v", bn, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.T.Fatalf("read answer: %v", err)
	}
	return b
}

// Block has bn send newPayload and then forkchoiceUpdated for block n, with the clock at
// the block's slot.
func (r *Rig) Block(bn string, n uint64) {
	r.T.Helper()
	if now := BlockTime(n); r.Clock.Now().Before(now) {
		r.Clock.Set(now)
	}
	r.Post(bn, NewPayload(n))
	r.Post(bn, Forkchoice(n))
}

// Drain waits until every lane has delivered what it holds (at most 10 s).
func (r *Rig) Drain() {
	r.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Proxy.Drain(ctx); err != nil {
		r.T.Fatalf("drain: %v", err)
	}
}
