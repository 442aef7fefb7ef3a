package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/leftover"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// genesisTS is the timestamp of block 0 in the tests' chain; block n is 12 s later per n.
const genesisTS = 1_700_000_000

func blockHash(n uint64) engine.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return engine.Hash(sha256.Sum256(b[:]))
}

func blockTS(n uint64) uint64 { return genesisTS + 12*n }

// newPayloadBody is a newPayloadV3 for block n with the given JSON id.
func newPayloadBody(id string, n uint64) []byte {
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"engine_newPayloadV3","params":[{"parentHash":"%s","feeRecipient":"0x%040x","stateRoot":"0x%064x","receiptsRoot":"0x%064x","logsBloom":"0x%0512x","prevRandao":"0x%064x","blockNumber":"0x%x","gasLimit":"0x1c9c380","gasUsed":"0x0","timestamp":"0x%x","extraData":"0x","baseFeePerGas":"0x7","blockHash":"%s","transactions":["0x02f86b0180843b9aca00850c92a69c0082520894000000000000000000000000000000000000dead0180c001a0aa"],"withdrawals":[],"blobGasUsed":"0x0","excessBlobGas":"0x0"},[],"0x%064x"]}`,
		id, blockHash(n-1), 0, 0, 0, 0, 0, n, blockTS(n), blockHash(n), n)
}

// forkchoiceBody is a forkchoiceUpdatedV3 with head block n, with or without attributes.
func forkchoiceBody(id string, n uint64, attrs bool) []byte {
	a := "null"
	if attrs {
		a = fmt.Sprintf(`{"timestamp":"0x%x","prevRandao":"0x%064x","suggestedFeeRecipient":"0x%040x","withdrawals":[],"parentBeaconBlockRoot":"0x%064x"}`, blockTS(n+1), 1, 1, 1)
	}
	return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%s,"method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":"%s","safeBlockHash":"%s","finalizedBlockHash":"%s"},%s]}`,
		id, blockHash(n), blockHash(n), blockHash(0), a)
}

// rig is a proxy with fake ELs, served by an httptest server.
type rig struct {
	t     *testing.T
	p     *Proxy
	els   []*fakeel.EL
	srv   *httptest.Server
	clk   *clock.Manual
	stop  context.CancelFunc
	done  chan struct{}
	roles []upstream.Role
}

type rigOption func(*Config)

func withElection(e beacon.Config) rigOption { return func(c *Config) { c.Election = e } }

func withBacklog(bytes int64) rigOption { return func(c *Config) { c.BacklogBytes = bytes } }

func testElection() beacon.Config {
	return beacon.Config{SlotDuration: 12 * time.Second, SilenceTimeout: 18 * time.Second, PeerMargin: 12 * time.Second}
}

// newRig starts a proxy in front of one fake EL per role.
func newRig(t *testing.T, roles []upstream.Role, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewManual(time.Unix(int64(blockTS(1)), 0)), roles: roles, done: make(chan struct{})}
	cfg := Config{Instance: "test-proxy", Election: testElection()}
	for i, role := range roles {
		el := fakeel.New(fmt.Sprintf("el%d", i+1), nil)
		r.els = append(r.els, el)
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: el.Name, URL: el.URL(), Role: role})
	}
	for _, o := range opts {
		o(&cfg)
	}
	r.start(cfg)
	return r
}

// start builds the proxy from cfg and serves it until the test ends.
// Once the test has ended and the rig is closed, nothing may be left behind: no goroutine,
// pooled body, lane slot or backlog charge (see leftover).
func (r *rig) start(cfg Config) {
	r.t.Helper()
	left := leftover.Check(r.t) // registered before close, so it runs after it
	p, err := New(cfg, r.clk, nil)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	left.Add(p)
	r.p = p
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { p.Run(ctx); close(r.done) }()
	r.srv = httptest.NewServer(p)
	r.t.Cleanup(r.close)
}

func (r *rig) close() {
	r.srv.Close()
	for _, el := range r.els {
		el.Close()
	}
	r.stop()
	<-r.done
	r.p.Close()
}

// post sends body as beacon node bn (by path) and returns the status and body.
func (r *rig) post(bn string, body []byte) (int, []byte) {
	r.t.Helper()
	return r.postTo("/bn/"+bn, body)
}

func (r *rig) postTo(path string, body []byte) (int, []byte) {
	r.t.Helper()
	resp, err := r.srv.Client().Post(r.srv.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		r.t.Fatalf("post: %v", err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		r.t.Fatalf("read answer: %v", err)
	}
	return resp.StatusCode, buf.Bytes()
}

// rpcAnswer is a decoded JSON-RPC response.
type rpcAnswer struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decode(t *testing.T, body []byte) rpcAnswer {
	t.Helper()
	var a rpcAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("answer %q is not JSON: %v", body, err)
	}
	return a
}

// payloadStatus extracts the status of a newPayload or forkchoiceUpdated answer.
func payloadStatus(t *testing.T, body []byte) (status string, payloadID *string) {
	t.Helper()
	a := decode(t, body)
	if a.Error != nil {
		t.Fatalf("answer is an error: %d %s", a.Error.Code, a.Error.Message)
	}
	var v struct {
		Status        string `json:"status"`
		PayloadStatus *struct {
			Status string `json:"status"`
		} `json:"payloadStatus"`
		PayloadID *string `json:"payloadId"`
	}
	if err := json.Unmarshal(a.Result, &v); err != nil {
		t.Fatalf("result %s: %v", a.Result, err)
	}
	if v.PayloadStatus != nil {
		return v.PayloadStatus.Status, v.PayloadID
	}
	return v.Status, nil
}

// waitIdle waits until every lane has delivered what it holds.
func (r *rig) waitIdle() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.p.Drain(ctx); err != nil {
		r.t.Fatalf("lanes did not drain: %v", err)
	}
}

// concurrently runs f(i) for i in [0,n) and waits.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f(i) })
	}
	wg.Wait()
}

func mustPrefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// inBothModes runs f as the subtests "mirror" (three followers) and "direct" (the first EL
// primary, two followers).
func inBothModes(t *testing.T, f func(t *testing.T, roles []upstream.Role)) {
	t.Helper()
	for _, m := range []struct {
		name  string
		roles []upstream.Role
	}{{"mirror", mirror3}, {"direct", direct3}} {
		t.Run(m.name, func(t *testing.T) { f(t, m.roles) })
	}
}
