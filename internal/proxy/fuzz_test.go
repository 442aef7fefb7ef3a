package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/leftover"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// fuzzProxy is a proxy in front of fake ELs, served in process (no sockets on the BN side).
// It adds the proxy to left, the fuzz target's leftover check (registered before, so run
// after the proxy stopped).
func fuzzProxy(f *testing.F, left *leftover.Checker, roles []upstream.Role) *Proxy {
	cfg := Config{Instance: "fuzz", Election: testElection(), MaxBodyBytes: 1 << 20, FailoverAfter: 50 * time.Millisecond}
	for i, role := range roles {
		el := fakeel.New(fmt.Sprintf("el%d", i+1), nil)
		f.Cleanup(el.Close)
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: el.Name, URL: el.URL(), Role: role})
	}
	p, err := New(cfg, clock.NewManual(time.Unix(int64(blockTS(1)), 0)), nil)
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	f.Cleanup(func() { cancel(); <-done; p.Close() })
	left.Add(p)
	return p
}

// FuzzServeHTTP: whatever the body and content type, the handler never panics, always
// answers with a body, with a status in the set geth's auth port uses, and a 200 answer is
// one JSON-RPC response addressed to the request's id.
func FuzzServeHTTP(f *testing.F) {
	seeds := [][]byte{
		newPayloadBody(`1`, 1),
		newPayloadBody(`"np0"`, 2),
		forkchoiceBody(`2`, 1, false),
		forkchoiceBody(`"fcu"`, 1, true),
		forkchoiceBody(`null`, 1, true),
		[]byte(`{"jsonrpc":"2.0","id":3,"method":"engine_getPayloadV4","params":["0x0000000000000001"]}`),
		[]byte(`{"jsonrpc":"2.0","id":4,"method":"engine_exchangeCapabilities","params":[["engine_newPayloadV4","engine_forkchoiceUpdatedV3"]]}`),
		[]byte(`{"jsonrpc":"2.0","id":5,"method":"engine_getClientVersionV1","params":[{"code":"LH","name":"Lighthouse","version":"v8","commit":"01020304"}]}`),
		[]byte(`{"jsonrpc":"2.0","id":6,"method":"engine_getBlobsV2","params":[["0x01` + strings.Repeat("00", 31) + `"]]}`),
		[]byte(`{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}`),
		[]byte(`{"jsonrpc":"2.0","id":8,"method":"eth_getBlockByNumber","params":["latest",false]}`),
		[]byte(`[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]`),
		[]byte(`[` + string(newPayloadBody(`"b1"`, 3)) + `,` + string(forkchoiceBody(`"b2"`, 3, true)) + `,7,{"id":"x"}]`),
		[]byte(`[]`),
		[]byte(`{"jsonrpc":"2.0","id":1,"id":2,"method":"engine_newPayloadV3","params":[]}`),
		[]byte(strings.Repeat("[", 200)),
		[]byte(``),
		[]byte(`{"jsonrpc":"2.0","id":{},"method":"x"}`),
	}
	for i, s := range seeds {
		ct := "application/json"
		switch i % 4 {
		case 1:
			ct = "application/json; charset=utf-8"
		case 3:
			ct = "application/json-rpc"
		}
		f.Add(ct, s)
	}
	f.Add("text/plain", newPayloadBody(`1`, 1))
	f.Add("", forkchoiceBody(`1`, 1, false))

	left := leftover.Check(f) // once fuzzing ends, nothing may be left behind
	proxies := []*Proxy{fuzzProxy(f, left, mirror3), fuzzProxy(f, left, direct3)}
	allowed := map[int]bool{http.StatusOK: true, http.StatusRequestEntityTooLarge: true, http.StatusUnsupportedMediaType: true}

	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		for _, p := range proxies {
			req := httptest.NewRequest(http.MethodPost, "/bn/fuzz", bytes.NewReader(body))
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			rec := httptest.NewRecorder()
			p.ServeHTTP(rec, req)
			if !allowed[rec.Code] {
				t.Fatalf("HTTP %d for %q", rec.Code, body)
			}
			if rec.Body.Len() == 0 {
				t.Fatalf("HTTP %d with an empty body for %q", rec.Code, body)
			}
			if rec.Code != http.StatusOK {
				continue
			}
			ans := rec.Body.Bytes()
			if elems, n, err := engine.SplitBatch(body, engine.MaxBatch); err == nil {
				// A batch: one answer per request, in order, each addressed to its request.
				var as []json.RawMessage
				if err := json.Unmarshal(ans, &as); err != nil {
					t.Fatalf("answer %q to the batch %q is not an array (%v)", ans, body, err)
				}
				if n > engine.MaxBatch {
					if len(as) != 1 {
						t.Fatalf("%d answers to a batch of %d", len(as), n)
					}
					requireResponse(t, as[0], nil, body)
					continue
				}
				if len(as) != n {
					t.Fatalf("%d answers to a batch of %d: %q", len(as), n, body)
				}
				for i, e := range elems {
					requireResponse(t, as[i], e, body)
				}
				continue
			}
			requireResponse(t, ans, body, body)
		}
	})
}

// requireResponse checks that ans is one JSON-RPC response, and, when req is given, that it is
// addressed to req (whole is the body the fuzzer sent, for the message).
func requireResponse(t *testing.T, ans, req, whole []byte) {
	t.Helper()
	var env struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  json.RawMessage `json:"result"`
		Error   json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(ans, &env); err != nil || env.JSONRPC != "2.0" || (env.Result == nil) == (env.Error == nil) {
		t.Fatalf("answer %q to %q is not one JSON-RPC response (%v)", ans, whole, err)
	}
	if req == nil {
		return
	}
	if req0, inspectErr := engine.Inspect(req); inspectErr == nil || req0.ID != nil {
		want := req0.ID
		if want == nil {
			want = json.RawMessage("null")
		}
		if !bytes.Equal(env.ID, want) {
			t.Fatalf("answer id %s, request id %s (%q)", env.ID, want, whole)
		}
	}
}
