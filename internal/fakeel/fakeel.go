// Package fakeel is a scriptable execution client for tests: an httptest server that speaks
// enough of the Engine API to answer sync-proxy, records what it received in order, checks
// the JWT with its own secret, and can be told to misbehave (hang, be slow, fail, answer
// garbage, refuse the token).
package fakeel

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// Behavior is how the fake EL answers.
type Behavior int

// Behaviors.
const (
	Normal       Behavior = iota // answer at once
	Hang                         // accept the request and never answer (until Close)
	Slow                         // answer after Delay
	HTTP500                      // answer 500
	HTTP413                      // answer 413
	Garbage                      // answer 200 with a body that is not JSON-RPC
	Unauthorized                 // answer 401 whatever the token
)

// Received is one request the fake EL got.
type Received struct {
	Method  string
	ID      string
	Class   engine.Class
	Block   engine.Block
	Head    engine.Hash
	Attrs   bool
	Size    int
	At      time.Time
	Headers http.Header
	// PayloadID is a getPayload request's payload id.
	PayloadID string
	// Body is the request as received, kept only for reads (getPayload, exchangeCapabilities,
	// getClientVersionV1, getBlobs, eth_* ...): newPayload and forkchoiceUpdated bodies are
	// large and many.
	Body []byte
}

// EL is a fake execution client. Create it with New; Close it when done.
type EL struct {
	Name string

	srv      *httptest.Server
	verifier *jwtauth.Verifier
	release  chan struct{}
	conns    atomic.Int64

	mu       sync.Mutex
	behavior Behavior
	delay    time.Duration
	status   engine.Status                 // payload status to answer; default VALID
	verdicts map[engine.Hash]engine.Status // per-block override of status
	badCopy  []byte                        // a newPayload whose body holds this is INVALID
	got      []Received
	notify   chan struct{}
	payload  int
	onReq    func(Received)
	idBase   uint64                     // added to every payload id this EL issues
	strict   bool                       // getPayload of an id this EL did not issue is -38001
	issued   map[string]bool            // payload ids issued (strict mode)
	results  map[string]json.RawMessage // per-method result overrides
	errs     map[string]*engine.Error   // per-method error answers
	keepAll  bool                       // keep newPayload and forkchoiceUpdated bodies too
	// chain is set by SetChain: the EL imports a block only onto a parent it has.
	chain *chain
}

// chain is what a fake EL in chain mode has imported, and its head.
type chain struct {
	blocks map[engine.Hash]engine.Block
	head   engine.Block
}

// New starts a fake EL on 127.0.0.1. When secret is non-nil every request must carry a token
// signed with it (401 otherwise), as geth does.
func New(name string, secret *jwtauth.Secret) *EL {
	e := &EL{Name: name, release: make(chan struct{}), status: engine.StatusValid,
		verdicts: map[engine.Hash]engine.Status{}, notify: make(chan struct{}),
		issued: map[string]bool{}, results: map[string]json.RawMessage{}, errs: map[string]*engine.Error{}}
	if secret != nil {
		v, err := jwtauth.NewVerifier([]jwtauth.Key{{Name: name, Secret: *secret}}, 60*time.Second, clock.Real{})
		if err != nil {
			panic(fmt.Sprintf("fakeel: %v", err)) // a test bug
		}
		e.verifier = v
	}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	e.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.srv.Start()
	return e
}

// URL is the fake EL's endpoint.
func (e *EL) URL() string { return e.srv.URL }

// Close releases hung requests and stops the server.
func (e *EL) Close() {
	e.mu.Lock()
	select {
	case <-e.release:
	default:
		close(e.release)
	}
	e.mu.Unlock()
	e.srv.CloseClientConnections()
	e.srv.Close()
}

// Connections is how many TCP connections the fake EL accepted.
func (e *EL) Connections() int64 { return e.conns.Load() }

// Set changes how the fake EL answers from now on.
func (e *EL) Set(b Behavior, delay time.Duration) {
	e.mu.Lock()
	e.behavior, e.delay = b, delay
	e.mu.Unlock()
}

// SetStatus makes newPayload and forkchoiceUpdated answer with s (default VALID).
func (e *EL) SetStatus(s engine.Status) {
	e.mu.Lock()
	e.status = s
	e.mu.Unlock()
}

// SetVerdict makes newPayload of block h answer with s.
func (e *EL) SetVerdict(h engine.Hash, s engine.Status) {
	e.mu.Lock()
	e.verdicts[h] = s
	e.mu.Unlock()
}

// SetBadCopy makes a newPayload whose body contains marker answer INVALID, whatever its block
// hash: an EL that checks the bytes it was given (e.g. expectedBlobVersionedHashes, which the
// block hash does not cover). nil turns it off.
func (e *EL) SetBadCopy(marker []byte) {
	e.mu.Lock()
	e.badCopy = marker
	e.mu.Unlock()
}

// SetResult makes every request for method answer with result (a JSON value), whatever the
// behavior-independent default would be; nil removes the override. It does not apply to
// newPayload and forkchoiceUpdated.
func (e *EL) SetResult(method string, result json.RawMessage) {
	e.mu.Lock()
	if result == nil {
		delete(e.results, method)
	} else {
		e.results[method] = result
	}
	e.mu.Unlock()
}

// KeepBodies makes the EL keep the body of every request in Received.Body, newPayload and
// forkchoiceUpdated included (by default only reads keep theirs).
func (e *EL) KeepBodies(on bool) {
	e.mu.Lock()
	e.keepAll = on
	e.mu.Unlock()
}

// SetCapabilities makes engine_exchangeCapabilities answer with methods.
func (e *EL) SetCapabilities(methods ...string) {
	b, err := json.Marshal(append([]string{}, methods...))
	if err != nil {
		panic(fmt.Sprintf("fakeel: %v", err)) // []string always marshals
	}
	e.SetResult(engine.MethodExchangeCapabilities, b)
}

// SetError makes every request for method answer with the JSON-RPC error (code, message);
// code 0 removes it.
func (e *EL) SetError(method string, code int, message string) {
	e.mu.Lock()
	if code == 0 {
		delete(e.errs, method)
	} else {
		e.errs[method] = &engine.Error{Code: code, Message: message}
	}
	e.mu.Unlock()
}

// SetPayloadIDBase adds base to every payload id the EL issues from now on. By default ELs
// that received the same requests issue the same ids, as geth does (its id hashes the
// build's parent and attributes); a base makes them differ, as between clients.
func (e *EL) SetPayloadIDBase(base uint64) {
	e.mu.Lock()
	e.idBase = base
	e.mu.Unlock()
}

// SetStrictPayloads makes getPayload answer -38001 (unknown payload) for an id this EL did
// not issue in a forkchoiceUpdated answer, as a real execution client does. Off by default:
// any id gets a payload.
func (e *EL) SetStrictPayloads(on bool) {
	e.mu.Lock()
	e.strict = on
	e.mu.Unlock()
}

// SetChain makes the EL keep a chain from genesis, as a peerless geth does: a newPayload
// whose parent it lacks is answered SYNCING and not imported, a forkchoiceUpdated to a head
// it lacks is answered SYNCING, and eth_getBlockByNumber("latest") and eth_getBlockByHash
// answer from the chain. Status overrides (SetStatus, SetVerdict) still apply on top.
func (e *EL) SetChain(genesis engine.Block) {
	e.mu.Lock()
	e.chain = &chain{blocks: map[engine.Hash]engine.Block{genesis.Hash: genesis}, head: genesis}
	e.mu.Unlock()
}

// Head returns the head of a chain-mode EL (see SetChain).
func (e *EL) Head() engine.Block {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.chain == nil {
		return engine.Block{}
	}
	return e.chain.head
}

// follow applies req to the chain and returns the status to answer with, or "" when req does
// not touch the chain. Called with e.mu held, for a request that will be answered.
func (c *chain) follow(req engine.Request, status engine.Status) engine.Status {
	switch req.Class {
	case engine.ClassNewPayload:
		if _, ok := c.blocks[req.Block.Parent]; !ok {
			return engine.StatusSyncing
		}
		if status == engine.StatusValid {
			c.blocks[req.Block.Hash] = req.Block
		}
	case engine.ClassForkchoice:
		b, ok := c.blocks[req.Forkchoice.Head]
		if !ok {
			return engine.StatusSyncing
		}
		if status == engine.StatusValid {
			c.head = b
		}
	}
	return status
}

// blockJSON answers eth_getBlockByNumber("latest") and eth_getBlockByHash from the chain
// (the fields sync-proxy reads), or null.
func (c *chain) blockJSON(req engine.Request, body []byte) (json.RawMessage, bool) {
	var b engine.Block
	switch req.Method {
	case "eth_getBlockByNumber":
		b = c.head
	case "eth_getBlockByHash":
		var p struct {
			Params []json.RawMessage `json:"params"`
		}
		var h engine.Hash
		if json.Unmarshal(body, &p) != nil || len(p.Params) == 0 || json.Unmarshal(p.Params[0], &h) != nil {
			return json.RawMessage(`null`), true
		}
		var ok bool
		if b, ok = c.blocks[h]; !ok {
			return json.RawMessage(`null`), true
		}
	default:
		return nil, false
	}
	return json.RawMessage(fmt.Sprintf(`{"hash":"%s","parentHash":"%s","number":"0x%x","timestamp":"0x%x"}`, b.Hash, b.Parent, b.Number, b.Timestamp)), true
}

// OnRequest registers a callback run for every request as it arrives (before answering).
func (e *EL) OnRequest(f func(Received)) {
	e.mu.Lock()
	e.onReq = f
	e.mu.Unlock()
}

// Requests returns what the fake EL received, in order of arrival.
func (e *EL) Requests() []Received {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Received(nil), e.got...)
}

// Methods returns the methods received, in order.
func (e *EL) Methods() []string {
	var out []string
	for _, r := range e.Requests() {
		out = append(out, r.Method)
	}
	return out
}

// WaitFor waits until at least n requests were received or timeout passes, and reports
// whether they were.
func (e *EL) WaitFor(n int, timeout time.Duration) bool {
	return e.WaitUntil(func(got []Received) bool { return len(got) >= n }, timeout)
}

// WaitUntil waits until done holds for the requests received so far (in order; done must
// not keep the slice) or timeout passes, and reports whether it held. done is checked once
// at the start and after every request.
func (e *EL) WaitUntil(done func(got []Received) bool, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		ok, ch := done(e.got), e.notify
		e.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

func (e *EL) serve(w http.ResponseWriter, r *http.Request) {
	if e.verifier != nil {
		if _, err := e.verifier.Verify(r.Header.Get("Authorization")); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	var body []byte
	if r.ContentLength > 0 {
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			http.Error(w, "short body", http.StatusBadRequest)
			return
		}
	}
	req, err := engine.Inspect(body)
	if err != nil {
		writeJSON(w, engine.ErrorResponse(req.ID, &engine.Error{Code: engine.CodeParseError, Message: err.Error()}))
		return
	}
	rec := Received{Method: req.Method, ID: string(req.ID), Class: req.Class, Block: req.Block,
		Head: req.Forkchoice.Head, Attrs: req.HasAttributes, Size: len(body), At: time.Now(), Headers: r.Header.Clone(),
		PayloadID: req.PayloadID}
	e.mu.Lock()
	if e.keepAll || (req.Class != engine.ClassNewPayload && req.Class != engine.ClassForkchoice) {
		rec.Body = body
	}
	e.got = append(e.got, rec)
	close(e.notify)
	e.notify = make(chan struct{})
	b, delay, status, onReq := e.behavior, e.delay, e.status, e.onReq
	if v, ok := e.verdicts[req.Block.Hash]; ok && req.Class == engine.ClassNewPayload {
		status = v
	}
	if req.Class == engine.ClassNewPayload && len(e.badCopy) > 0 && bytes.Contains(body, e.badCopy) {
		status = engine.StatusInvalid
	}
	e.payload++
	pid := uint64(e.payload)
	if req.Class == engine.ClassForkchoice {
		pid = buildID(req) + e.idBase
		if req.HasAttributes && status == engine.StatusValid {
			e.issued[fmt.Sprintf("0x%016x", pid)] = true
		}
	}
	override, hasOverride := e.results[req.Method]
	rpcErr := e.errs[req.Method]
	if e.chain != nil && (b == Normal || b == Slow) {
		if st := e.chain.follow(req, status); st != "" {
			status = st
		}
		if res, ok := e.chain.blockJSON(req, body); ok && !hasOverride {
			override, hasOverride = res, true
		}
	}
	if req.Class == engine.ClassGetPayload && e.strict && !e.issued[req.PayloadID] {
		rpcErr = &engine.Error{Code: engine.CodeUnknownPayload, Message: "Unknown payload"}
	}
	e.mu.Unlock()
	if onReq != nil {
		onReq(rec)
	}

	switch b {
	case Hang:
		select {
		case <-r.Context().Done():
		case <-e.release:
		}
		return
	case Slow:
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-e.release:
			return
		}
	case HTTP500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case HTTP413:
		http.Error(w, "content length too large", http.StatusRequestEntityTooLarge)
		return
	case Garbage:
		writeJSON(w, []byte("<html>not json-rpc</html>"))
		return
	case Unauthorized:
		http.Error(w, "stale token", http.StatusUnauthorized)
		return
	}
	switch {
	case rpcErr != nil:
		writeJSON(w, engine.ErrorResponse(req.ID, rpcErr))
	case hasOverride && req.Class != engine.ClassNewPayload && req.Class != engine.ClassForkchoice:
		writeJSON(w, engine.ResultResponse(req.ID, override))
	default:
		writeJSON(w, engine.ResultResponse(req.ID, e.result(req, status, pid)))
	}
}

// result is a plausible answer to req. newPayloadV6 and forkchoiceUpdatedV5 (Bogota) answer
// a PayloadStatusV2, which adds inclusionListSatisfied.
func (e *EL) result(req engine.Request, status engine.Status, pid uint64) json.RawMessage {
	lvh, il := "null", ""
	if (req.Class == engine.ClassNewPayload && req.Version >= 6) || (req.Class == engine.ClassForkchoice && req.Version >= 5) {
		il = `,"inclusionListSatisfied":true`
	}
	switch req.Class {
	case engine.ClassNewPayload:
		if status == engine.StatusValid {
			lvh = `"` + req.Block.Hash.String() + `"`
		}
		return json.RawMessage(fmt.Sprintf(`{"status":%q,"latestValidHash":%s,"validationError":null%s}`, status, lvh, il))
	case engine.ClassForkchoice:
		if status == engine.StatusValid {
			lvh = `"` + req.Forkchoice.Head.String() + `"`
		}
		id := "null"
		if req.HasAttributes && status == engine.StatusValid {
			id = fmt.Sprintf(`"0x%016x"`, pid)
		}
		return json.RawMessage(fmt.Sprintf(`{"payloadStatus":{"status":%q,"latestValidHash":%s,"validationError":null%s},"payloadId":%s}`, status, lvh, il, id))
	case engine.ClassGetPayload:
		return json.RawMessage(fmt.Sprintf(`{"executionPayload":{"blockHash":"0x%064x","timestamp":"0x1"},"blockValue":"0x0","builtBy":%q,"payloadId":%q}`, pid, e.Name, req.PayloadID))
	}
	switch {
	case req.Method == engine.MethodExchangeCapabilities:
		return json.RawMessage(`["engine_newPayloadV4","engine_forkchoiceUpdatedV3","engine_getPayloadV4"]`)
	case req.Method == engine.MethodGetClientVersionV1:
		return json.RawMessage(fmt.Sprintf(`[{"code":"GE","name":%q,"version":"1.0.0","commit":"0x01020304"}]`, e.Name))
	case strings.HasPrefix(req.Method, "eth_"):
		return json.RawMessage(`"0x10"`)
	}
	return json.RawMessage(`null`)
}

// buildID is the payload id of a build, derived from what the build is made of (the head and
// the attributes' timestamp) as geth derives it: every EL that gets the same forkchoiceUpdated
// issues the same id unless SetPayloadIDBase is used.
func buildID(req engine.Request) uint64 {
	h := fnv.New64a()
	h.Write(req.Forkchoice.Head[:])
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], req.AttributesTimestamp)
	h.Write(ts[:])
	return h.Sum64() >> 1 // leave room for a base
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
