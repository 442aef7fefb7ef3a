package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// FakeELConfig configures a FakeEL.
type FakeELConfig struct {
	// Secret, when set, is checked on every request as an execution client does (401 on a
	// bad token).
	Secret *jwtauth.Secret
	// Hang makes the EL read each request and never answer, until Close.
	Hang bool
	// Delay is added before each answer (0: answer at once).
	Delay time.Duration
	// Status is the payload status answered to newPayload and forkchoiceUpdated; "" is VALID.
	Status string
	// MaxBody bounds a request body; 0 is 64 MiB.
	MaxBody int64
}

// FakeELStats counts what a FakeEL saw.
type FakeELStats struct {
	Accepted    int64 // connections accepted
	Requests    int64 // requests read in full
	NewPayloads int64
	Forkchoices int64
	Others      int64
	Rejected    int64 // refused: wrong method, bad token, unreadable or malformed body
	Hung        int64 // requests held without an answer
	BodyBytes   int64
}

// FakeEL is a fast stand-in for an execution client's Engine API. It inspects each body with
// engine.Inspect (so a body damaged on the way is refused), answers newPayload VALID with the
// block hash as latestValidHash, forkchoiceUpdated VALID with a payloadId when attributes
// were sent, and other methods with a plausible result, always echoing the request's id. It
// is an http.Handler; Listen serves it on its own listener.
type FakeEL struct {
	cfg      FakeELConfig
	verifier *jwtauth.Verifier
	stop     chan struct{}
	stopOnce sync.Once
	pool     sync.Pool // *[]byte body buffers
	payloads atomic.Uint64

	accepted, requests, newPayloads, forkchoices, others atomic.Int64
	rejected, hung, bodyBytes                            atomic.Int64

	srv *http.Server
	ln  net.Listener
}

// NewFakeEL returns a FakeEL that is not listening yet (use it as a handler, or call Listen).
func NewFakeEL(cfg FakeELConfig) (*FakeEL, error) {
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 20
	}
	if cfg.Status == "" {
		cfg.Status = StatusValid
	}
	f := &FakeEL{cfg: cfg, stop: make(chan struct{})}
	if cfg.Secret != nil {
		v, err := jwtauth.NewVerifier([]jwtauth.Key{{Name: "cl", Secret: *cfg.Secret}}, jwtauth.DefaultMaxDrift, nil)
		if err != nil {
			return nil, fmt.Errorf("fake el: %w", err)
		}
		f.verifier = v
	}
	return f, nil
}

// StartFakeEL listens on addr (use 127.0.0.1:0) and serves until Close.
func StartFakeEL(addr string, cfg FakeELConfig) (*FakeEL, error) {
	f, err := NewFakeEL(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fake el: %w", err)
	}
	f.ln = ln
	f.srv = &http.Server{
		Handler:           f,
		ConnState:         f.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Minute,
	}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// URL is the address the EL listens on (after StartFakeEL).
func (f *FakeEL) URL() string { return "http://" + f.ln.Addr().String() }

// Addr is the host:port the EL listens on (after StartFakeEL).
func (f *FakeEL) Addr() string { return f.ln.Addr().String() }

// ConnState counts accepted connections; set it as an http.Server's ConnState.
func (f *FakeEL) ConnState(_ net.Conn, s http.ConnState) {
	if s == http.StateNew {
		f.accepted.Add(1)
	}
}

// Stats returns the counters.
func (f *FakeEL) Stats() FakeELStats {
	return FakeELStats{
		Accepted: f.accepted.Load(), Requests: f.requests.Load(),
		NewPayloads: f.newPayloads.Load(), Forkchoices: f.forkchoices.Load(), Others: f.others.Load(),
		Rejected: f.rejected.Load(), Hung: f.hung.Load(), BodyBytes: f.bodyBytes.Load(),
	}
}

// Close releases hung requests and, when the EL listens itself, closes the listener and every
// connection.
func (f *FakeEL) Close() error {
	f.stopOnce.Do(func() { close(f.stop) })
	if f.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		return f.srv.Close()
	}
	return nil
}

// ServeHTTP answers one Engine API request.
func (f *FakeEL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		f.refuse(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	if f.verifier != nil {
		if _, err := f.verifier.Verify(r.Header.Get("Authorization")); err != nil {
			f.refuse(w, http.StatusUnauthorized, err.Error())
			return
		}
	}
	bp, body, err := f.read(r)
	if err != nil {
		f.refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	defer f.pool.Put(bp)
	f.requests.Add(1)
	f.bodyBytes.Add(int64(len(body)))
	req, err := engine.Inspect(body)
	if err != nil {
		f.rejected.Add(1)
		var ee *engine.Error
		if !errors.As(err, &ee) {
			ee = &engine.Error{Code: engine.CodeInternalError, Message: err.Error()}
		}
		writeAnswer(w, engine.ErrorResponse(req.ID, ee))
		return
	}
	f.count(req.Class)
	if f.cfg.Hang {
		f.hang(r.Context())
		return
	}
	if f.cfg.Delay > 0 {
		select {
		case <-time.After(f.cfg.Delay):
		case <-r.Context().Done():
			return
		case <-f.stop:
		}
	}
	writeAnswer(w, f.answer(req))
}

// read reads the whole body into a pooled buffer.
func (f *FakeEL) read(r *http.Request) (*[]byte, []byte, error) {
	if r.ContentLength > f.cfg.MaxBody {
		return nil, nil, fmt.Errorf("body of %d bytes is over the limit", r.ContentLength)
	}
	bp, _ := f.pool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	buf := (*bp)[:0]
	if r.ContentLength > 0 {
		if int64(cap(buf)) < r.ContentLength {
			buf = make([]byte, 0, r.ContentLength)
		}
		buf = buf[:r.ContentLength]
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			*bp = buf
			f.pool.Put(bp)
			return nil, nil, fmt.Errorf("read body: %w", err)
		}
	} else {
		var err error
		buf, err = readAllInto(buf, io.LimitReader(r.Body, f.cfg.MaxBody))
		if err != nil {
			*bp = buf
			f.pool.Put(bp)
			return nil, nil, fmt.Errorf("read body: %w", err)
		}
	}
	*bp = buf
	return bp, buf, nil
}

// readAllInto appends everything rd yields to buf.
func readAllInto(buf []byte, rd io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func (f *FakeEL) refuse(w http.ResponseWriter, status int, msg string) {
	f.rejected.Add(1)
	http.Error(w, msg, status)
}

func (f *FakeEL) count(c engine.Class) {
	switch c {
	case engine.ClassNewPayload:
		f.newPayloads.Add(1)
	case engine.ClassForkchoice:
		f.forkchoices.Add(1)
	default:
		f.others.Add(1)
	}
}

// hang holds a request until the client goes away or the EL is closed.
func (f *FakeEL) hang(ctx context.Context) {
	f.hung.Add(1)
	select {
	case <-ctx.Done():
	case <-f.stop:
	}
}

// answer is the EL's answer to req.
func (f *FakeEL) answer(req engine.Request) []byte {
	switch req.Class {
	case engine.ClassNewPayload:
		return engine.ResultResponse(req.ID, statusJSON(f.cfg.Status, req.Block.Hash))
	case engine.ClassForkchoice:
		res := append([]byte(`{"payloadStatus":`), statusJSON(f.cfg.Status, req.Forkchoice.Head)...)
		res = append(res, `,"payloadId":`...)
		if req.HasAttributes && f.cfg.Status == StatusValid {
			res = append(res, `"0x`...)
			res = appendHex16(res, f.payloads.Add(1))
			res = append(res, `"}`...)
		} else {
			res = append(res, `null}`...)
		}
		return engine.ResultResponse(req.ID, res)
	case engine.ClassGetPayload:
		return engine.ErrorResponse(req.ID, &engine.Error{Code: -38001, Message: "Unknown payload"})
	}
	return otherAnswer(req)
}

// otherAnswer answers the methods a beacon node sends besides the block and head updates.
func otherAnswer(req engine.Request) []byte {
	var result any
	switch req.Method {
	case "engine_exchangeCapabilities":
		result = engine.KnownMethods()
	case "engine_getClientVersionV1":
		result = []map[string]string{{"code": "XX", "name": "fake-el", "version": "v0.0.0", "commit": "0x00000000"}}
	case "eth_chainId":
		result = "0x1"
	case "eth_syncing":
		result = false
	case "eth_blockNumber":
		result = "0x0"
	case "engine_getBlobsV1", "engine_getBlobsV2", "engine_getBlobsV3":
		result = nil
	default:
		return engine.ErrorResponse(req.ID, &engine.Error{Code: -32601, Message: "the method " + strconv.Quote(req.Method) + " does not exist/is not available"})
	}
	b, err := json.Marshal(result)
	if err != nil {
		return engine.ErrorResponse(req.ID, &engine.Error{Code: engine.CodeInternalError, Message: err.Error()})
	}
	return engine.ResultResponse(req.ID, b)
}

// statusJSON renders a PayloadStatusV1; latestValidHash is the hash when VALID, else null.
func statusJSON(status string, h engine.Hash) []byte {
	b := append([]byte(`{"status":"`), status...)
	b = append(b, `","latestValidHash":`...)
	if status == StatusValid {
		b = append(b, '"')
		b = append(b, h.String()...)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	return append(b, `,"validationError":null}`...)
}

// appendHex16 appends v as 16 lowercase hex digits.
func appendHex16(b []byte, v uint64) []byte {
	var d [16]byte
	putHex(d[:], v)
	return append(b, d[:]...)
}

func writeAnswer(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}
