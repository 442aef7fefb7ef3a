package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// Bad input: every request that is not a routable Engine API call gets an answer with a body
// (a JSON-RPC error with the spec's code and the request's id byte for byte, or the HTTP
// status geth gives), nothing reaches any EL, and the proxy goes on serving.

// elRequests counts what every EL of the rig received, after the lanes drained.
func elRequests(r *rig) int {
	r.t.Helper()
	r.waitIdle()
	n := 0
	for _, el := range r.els {
		n += len(el.Requests())
	}
	return n
}

// rawID extracts the raw bytes of the "id" member of a JSON-RPC answer (the proxy writes
// the envelope itself: {"jsonrpc":"2.0","id":<raw>,...).
func rawID(t *testing.T, body []byte) string {
	t.Helper()
	const pre = `{"jsonrpc":"2.0","id":`
	if !bytes.HasPrefix(body, []byte(pre)) {
		t.Fatalf("answer %q does not start with %s", body, pre)
	}
	rest := body[len(pre):]
	for _, sep := range []string{`,"error":`, `,"result":`} {
		if i := bytes.Index(rest, []byte(sep)); i >= 0 {
			return string(rest[:i])
		}
	}
	t.Fatalf("answer %q has no result or error", body)
	return ""
}

// payloadWithParams rewrites block 1's newPayloadV3 with params replaced.
func payloadWithParams(params string) string {
	np := string(newPayloadBody(`1`, 1))
	i := strings.Index(np, `"params":`)
	return np[:i] + `"params":` + params + `}`
}

type badCase struct {
	name     string
	method   string // default POST
	ctype    string // default application/json; "-" sends none
	body     string
	wantHTTP int    // default 200
	wantCode int    // JSON-RPC error code; 0 for an HTTP-level answer
	wantID   string // the raw id the answer must carry (JSON-RPC answers only)
}

func badCases() []badCase {
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	np := string(newPayloadBody(`1`, 1))
	return []badCase{
		// Not JSON.
		{name: "empty", body: "", wantCode: engine.CodeParseError, wantID: "null"},
		{name: "whitespace", body: " \r\n\t ", wantCode: engine.CodeParseError, wantID: "null"},
		{name: "not json", body: "hello", wantCode: engine.CodeParseError, wantID: "null"},
		{name: "malformed", body: `{"jsonrpc":"2.0","id":1,"method":}`, wantCode: engine.CodeParseError, wantID: "null"},
		{name: "truncated newPayload", body: np[:len(np)/2], wantCode: engine.CodeParseError, wantID: "null"},
		{name: "trailing garbage", body: np + "x", wantCode: engine.CodeParseError, wantID: "null"},
		{name: "two objects", body: np + np, wantCode: engine.CodeParseError, wantID: "null"},
		{name: "unbalanced 100k [", body: strings.Repeat("[", 100_000), wantCode: engine.CodeInvalidRequest, wantID: "null"},
		// JSON, not a request.
		{name: "empty batch", body: "[]", wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "batch with a broken request", body: "[" + np + ",{]", wantCode: engine.CodeParseError, wantID: "null"},
		{name: "string", body: `"engine_newPayloadV3"`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "number", body: `42`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "null", body: `null`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "no method", body: `{"jsonrpc":"2.0","id":"a"}`, wantCode: engine.CodeInvalidRequest, wantID: `"a"`},
		{name: "method not a string", body: `{"jsonrpc":"2.0","id":"a","method":7}`, wantCode: engine.CodeInvalidRequest, wantID: `"a"`},
		{name: "jsonrpc 1.0", body: `{"jsonrpc":"1.0","id":"a","method":"engine_newPayloadV3","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: `"a"`},
		{name: "id object", body: `{"jsonrpc":"2.0","id":{"a":1},"method":"engine_newPayloadV3","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "id array", body: `{"jsonrpc":"2.0","id":[1],"method":"engine_newPayloadV3","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "id bool", body: `{"jsonrpc":"2.0","id":true,"method":"engine_newPayloadV3","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		{name: "duplicate id", body: `{"jsonrpc":"2.0","id":1,"id":2,"method":"engine_newPayloadV3","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "1"},
		{name: "duplicate method", body: `{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadV3","method":"engine_forkchoiceUpdatedV3","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "1"},
		{name: "case-variant method", body: `{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadV3","Method":"eth_chainId","params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "1"},
		{name: "duplicate params", body: strings.TrimSuffix(np, "}") + `,"params":[]}`, wantCode: engine.CodeInvalidRequest, wantID: "1"},
		{name: "duplicate blockHash", body: strings.Replace(np, `"blockHash"`, `"blockHash":"`+blockHash(9).String()+`","blockHash"`, 1), wantCode: engine.CodeInvalidParams, wantID: "1"},
		{name: "nesting 100k deep in params", body: `{"jsonrpc":"2.0","id":1,"method":"engine_newPayloadV3","params":` + deep + `}`, wantCode: engine.CodeInvalidRequest, wantID: "null"},
		// Routed methods with wrong parameters.
		{name: "newPayload no params", body: `{"jsonrpc":"2.0","id":"np0","method":"engine_newPayloadV3"}`, wantCode: engine.CodeInvalidParams, wantID: `"np0"`},
		{name: "newPayload params not array", body: `{"jsonrpc":"2.0","id":"np0","method":"engine_newPayloadV3","params":{}}`, wantCode: engine.CodeInvalidParams, wantID: `"np0"`},
		{name: "newPayload empty params", body: payloadWithParams(`[]`), wantCode: engine.CodeInvalidParams, wantID: "1"},
		{name: "newPayload payload null", body: payloadWithParams(`[null,[],"0x` + strings.Repeat("0", 64) + `"]`), wantCode: engine.CodeInvalidParams, wantID: "1"},
		{name: "newPayload blockNumber a number", body: strings.Replace(np, `"blockNumber":"0x1"`, `"blockNumber":1`, 1), wantCode: engine.CodeInvalidParams, wantID: "1"},
		{name: "newPayload short blockHash", body: strings.Replace(np, blockHash(1).String(), "0x1234", 1), wantCode: engine.CodeInvalidParams, wantID: "1"},
		{name: "newPayload timestamp leading zero", body: strings.Replace(np, fmt.Sprintf(`"timestamp":"0x%x"`, blockTS(1)), fmt.Sprintf(`"timestamp":"0x0%x"`, blockTS(1)), 1), wantCode: engine.CodeInvalidParams, wantID: "1"},
		{name: "forkchoice no params", body: `{"jsonrpc":"2.0","id":"f","method":"engine_forkchoiceUpdatedV3","params":[]}`, wantCode: engine.CodeInvalidParams, wantID: `"f"`},
		{name: "forkchoice head null", body: `{"jsonrpc":"2.0","id":"f","method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":null,"safeBlockHash":null,"finalizedBlockHash":null},null]}`, wantCode: engine.CodeInvalidParams, wantID: `"f"`},
		{name: "forkchoice state a string", body: `{"jsonrpc":"2.0","id":"f","method":"engine_forkchoiceUpdatedV3","params":["` + blockHash(1).String() + `"]}`, wantCode: engine.CodeInvalidParams, wantID: `"f"`},
		{name: "forkchoice attributes a number", body: strings.Replace(string(forkchoiceBody(`"f"`, 1, false)), `},null]`, `},7]`, 1), wantCode: engine.CodeInvalidParams, wantID: `"f"`},
		{name: "getPayload id a number", body: `{"jsonrpc":"2.0","id":3,"method":"engine_getPayloadV4","params":[1]}`, wantCode: engine.CodeInvalidParams, wantID: "3"},
		{name: "getPayload no params", body: `{"jsonrpc":"2.0","id":3,"method":"engine_getPayloadV4","params":[]}`, wantCode: engine.CodeInvalidParams, wantID: "3"},
		// HTTP level, as geth's auth port answers.
		{name: "GET", method: http.MethodGet, ctype: "-", wantHTTP: http.StatusMethodNotAllowed},
		{name: "PUT", method: http.MethodPut, body: np, wantHTTP: http.StatusMethodNotAllowed},
		{name: "DELETE", method: http.MethodDelete, wantHTTP: http.StatusMethodNotAllowed},
		{name: "PATCH", method: http.MethodPatch, body: np, wantHTTP: http.StatusMethodNotAllowed},
		{name: "OPTIONS", method: http.MethodOptions, wantHTTP: http.StatusMethodNotAllowed},
		{name: "HEAD", method: http.MethodHead, wantHTTP: http.StatusMethodNotAllowed},
		{name: "no content type", ctype: "-", body: np, wantHTTP: http.StatusUnsupportedMediaType},
		{name: "text/plain", ctype: "text/plain", body: np, wantHTTP: http.StatusUnsupportedMediaType},
		{name: "form", ctype: "application/x-www-form-urlencoded", body: np, wantHTTP: http.StatusUnsupportedMediaType},
		{name: "malformed content type", ctype: "application/json;;=", body: np, wantHTTP: http.StatusUnsupportedMediaType},
		{name: "content length over the limit", body: strings.Repeat(" ", badInputLimit+1) + np, wantHTTP: http.StatusRequestEntityTooLarge},
	}
}

// badInputLimit is the rigs' MaxBodyBytes here: small, so that bodies over it are cheap.
const badInputLimit = 512 << 10

func withBodyLimit(n int64) rigOption { return func(c *Config) { c.MaxBodyBytes = n } }

// TestBadInputMatrix runs every bad request in mirror and direct mode.
func TestBadInputMatrix(t *testing.T) {
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles, withBodyLimit(badInputLimit))
		for _, tc := range badCases() {
			t.Run(tc.name, func(t *testing.T) {
				method := tc.method
				if method == "" {
					method = http.MethodPost
				}
				req, err := http.NewRequest(method, r.srv.URL+"/bn/bad", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				switch tc.ctype {
				case "":
					req.Header.Set("Content-Type", "application/json")
				case "-":
				default:
					req.Header.Set("Content-Type", tc.ctype)
				}
				start := time.Now()
				resp, err := r.srv.Client().Do(req)
				if err != nil {
					t.Fatalf("do: %v", err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				if err != nil {
					t.Fatalf("read answer: %v", err)
				}
				want := tc.wantHTTP
				if want == 0 {
					want = http.StatusOK
				}
				if resp.StatusCode != want {
					t.Fatalf("HTTP %d %q, want %d", resp.StatusCode, body, want)
				}
				if took > time.Second {
					t.Errorf("answered after %v", took)
				}
				switch {
				case method == http.MethodHead: // HTTP forbids a body; the status says it
				case len(body) == 0:
					t.Fatalf("HTTP %d with an empty body", resp.StatusCode)
				case tc.wantCode != 0:
					a := decode(t, body)
					if a.Error == nil || a.Error.Code != tc.wantCode || a.Result != nil {
						t.Fatalf("answer %s, want JSON-RPC error %d", body, tc.wantCode)
					}
					if got := rawID(t, body); got != tc.wantID {
						t.Fatalf("answer id %s, want %s", got, tc.wantID)
					}
				}
				if resp.StatusCode == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
					t.Errorf("405 without Allow: POST")
				}
			})
		}
		if n := elRequests(r); n != 0 {
			for _, el := range r.els {
				t.Errorf("%s received %v", el.Name, el.Methods())
			}
			t.Fatalf("bad input reached the ELs: %d requests", n)
		}
		requireStillServing(t, r)
	})
}

// requireStillServing sends one good block and checks every EL gets it.
func requireStillServing(t *testing.T, r *rig) {
	t.Helper()
	code, body := r.post("good", newPayloadBody(`"after"`, 1))
	if code != http.StatusOK || rawID(t, body) != `"after"` {
		t.Fatalf("a good request after the bad ones: HTTP %d %s", code, body)
	}
	r.waitIdle()
	for _, el := range r.els {
		if !slicesContainsMethod(el.Methods(), "engine_newPayloadV3") {
			t.Fatalf("%s did not get the good block: %v", el.Name, el.Methods())
		}
	}
}

func slicesContainsMethod(ms []string, m string) bool {
	for _, x := range ms {
		if x == m {
			return true
		}
	}
	return false
}

// TestBadInputIDs: every kind of id comes back byte for byte, on answers the proxy makes
// (mirror SYNCING, errors) and on answers relayed from an EL (direct).
func TestBadInputIDs(t *testing.T) {
	ids := []struct{ name, raw, want string }{
		{"string", `"np0"`, `"np0"`},
		{"string escapes", `"a\u0041\"\\/"`, `"a\u0041\"\\/"`},
		{"empty string", `""`, `""`},
		{"zero", `0`, `0`},
		{"negative", `-7`, `-7`},
		{"fraction exponent", `1.5e3`, `1.5e3`},
		{"huge", `123456789012345678901234567890`, `123456789012345678901234567890`},
		{"null", `null`, `null`},
		{"missing", ``, `null`},
	}
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		r := newRig(t, roles)
		for i, id := range ids {
			t.Run(id.name, func(t *testing.T) {
				member := `"id":` + id.raw + `,`
				if id.raw == "" {
					member = ""
				}
				with := func(b []byte) []byte {
					return bytes.Replace(b, []byte(`"id":0,`), []byte(member), 1)
				}
				n := uint64(i + 1)
				r.clk.Set(time.Unix(int64(blockTS(n)), 0))
				for _, body := range [][]byte{
					with(newPayloadBody(`0`, n)),
					with(forkchoiceBody(`0`, n, false)),
					with([]byte(`{"jsonrpc":"2.0","id":0,"method":"engine_newPayloadV3","params":[]}`)),
				} {
					code, ans := r.post("bn1", body)
					if code != http.StatusOK {
						t.Fatalf("HTTP %d %s", code, ans)
					}
					if got := rawID(t, ans); got != id.want {
						t.Fatalf("answer %s: id %s, want %s", ans, got, id.want)
					}
				}
			})
		}
	})
}

// TestBadInputOtherMethods: methods the proxy does not route as writes. In mirror mode
// nothing but newPayload and forkchoiceUpdated is forwarded (-32601). In direct mode the
// spec's eth_ subset and unknown engine_ methods (a newer fork's) go to the primary only,
// whose answer (here geth's -32601 for an unknown method) comes back; other namespaces are
// not part of the Engine API and must reach no EL: debug_setHead would move a head back
// behind the head guard's back.
func TestBadInputOtherMethods(t *testing.T) {
	for _, tc := range []struct {
		method     string
		direct     bool
		wantCode   int
		toPrimary  bool
		primaryErr bool // the fake primary answers -32601 as geth does for a method it lacks
	}{
		{method: "engine_fooV1", direct: false, wantCode: engine.CodeMethodNotFound},
		{method: "engine_fooV1", direct: true, wantCode: engine.CodeMethodNotFound, toPrimary: true, primaryErr: true},
		{method: "engine_\xff", direct: false, wantCode: engine.CodeMethodNotFound},
		{method: "engine_\xff", direct: true, wantCode: engine.CodeMethodNotFound, toPrimary: true, primaryErr: true},
		{method: "eth_chainId", direct: false, wantCode: engine.CodeMethodNotFound},
		{method: "eth_chainId", direct: true, toPrimary: true},
		{method: "debug_setHead", direct: false, wantCode: engine.CodeMethodNotFound},
		{method: "debug_setHead", direct: true, wantCode: engine.CodeMethodNotFound},
		{method: "admin_addPeer", direct: true, wantCode: engine.CodeMethodNotFound},
		{method: "miner_setExtra", direct: true, wantCode: engine.CodeMethodNotFound},
		{method: "personal_unlockAccount", direct: true, wantCode: engine.CodeMethodNotFound},
	} {
		mode := "mirror"
		roles := mirror3
		if tc.direct {
			mode, roles = "direct", direct3
		}
		t.Run(tc.method+"/"+mode, func(t *testing.T) {
			r := newRig(t, roles)
			if tc.primaryErr {
				m := strings.ToValidUTF8(tc.method, "\uFFFD") // as the EL decodes it
				r.els[0].SetError(m, engine.CodeMethodNotFound, "the method "+m+" does not exist/is not available")
			}
			body := `{"jsonrpc":"2.0","id":"x1","method":"` + tc.method + `","params":["0x1"]}`
			code, ans := r.post("bn1", []byte(body))
			if code != http.StatusOK || rawID(t, ans) != `"x1"` {
				t.Fatalf("HTTP %d %s", code, ans)
			}
			a := decode(t, ans)
			if tc.wantCode != 0 && (a.Error == nil || a.Error.Code != tc.wantCode) {
				t.Errorf("answer %s, want error %d", ans, tc.wantCode)
			}
			if tc.wantCode == 0 && a.Error != nil {
				t.Errorf("answer %s, want a result", ans)
			}
			r.waitIdle()
			for i, el := range r.els {
				got := len(el.Requests())
				want := 0
				if i == 0 && tc.toPrimary {
					want = 1
				}
				if got != want {
					t.Errorf("%s received %v, want %d requests", el.Name, el.Methods(), want)
				}
			}
		})
	}
}

// TestBadInputMalformedDoesNotHideGoodBlock: a newPayload an EL refuses with a JSON-RPC error
// (here -32602, as geth answers a newPayloadV3 without versionedHashes and beacon root, or
// -38005 for the wrong version at a fork) must not count as that block delivered: the good
// copy of the same block from another beacon node still reaches every EL and is answered
// from it.
func TestBadInputMalformedDoesNotHideGoodBlock(t *testing.T) {
	for _, tc := range []struct {
		name string
		code int
	}{{"invalid params", engine.CodeInvalidParams}, {"unsupported fork", engine.CodeUnsupportedFork}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, direct3)
			np := string(newPayloadBody(`"bad"`, 1))
			bad := np[:strings.Index(np, `,[],"0x`)] + "]}"
			for _, el := range r.els {
				el.SetError("engine_newPayloadV3", tc.code, "refused")
			}
			if _, ans := r.post("bn-bad", []byte(bad)); decode(t, ans).Error == nil {
				t.Fatalf("the refused copy was answered %s", ans)
			}
			r.waitIdle()
			for _, el := range r.els {
				el.SetError("engine_newPayloadV3", 0, "")
			}
			_, ans := r.post("bn-good", newPayloadBody(`"good"`, 1))
			if s, _ := payloadStatus(t, ans); s != "VALID" {
				t.Errorf("the good copy was answered %s, want the ELs' VALID", ans)
			}
			r.waitIdle()
			for _, el := range r.els {
				if n := len(el.Requests()); n < 2 {
					t.Errorf("%s received %v: the good copy of block 1 never reached it", el.Name, el.Methods())
				}
			}
		})
	}
}

// countingReader is a request body far longer than any limit (it ends after max bytes, so
// that a handler without a limit fails the test instead of reading forever) that counts
// what was read from it.
type countingReader struct {
	n   atomic.Int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	left := c.max - c.n.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), left)]
	for i := range p {
		p[i] = ' '
	}
	c.n.Add(int64(len(p)))
	return len(p), nil
}

// TestBadInputChunkedOverLimit: a body without Content-Length that never ends is cut off at
// the limit with a 413: the handler reads at most the limit (plus one byte), and over the
// wire the server stops reading and closes the connection while the sender is still
// sending.
func TestBadInputChunkedOverLimit(t *testing.T) {
	const limit = 1 << 20
	r := newRig(t, direct3, withBodyLimit(limit))

	t.Run("handler", func(t *testing.T) {
		body := &countingReader{max: 64 * limit}
		req := httptest.NewRequest(http.MethodPost, "/bn/big", io.NopCloser(body))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		r.p.ServeHTTP(rec, req)
		if rec.Code != http.StatusRequestEntityTooLarge || rec.Body.Len() == 0 {
			t.Fatalf("HTTP %d %q, want 413 with a reason", rec.Code, rec.Body.String())
		}
		if got := body.n.Load(); got > limit+64<<10 {
			t.Fatalf("read %d bytes of an endless body, limit %d", got, limit)
		}
		t.Logf("FAULT bad-input/chunked-endless-body handler_read=%d limit=%d", body.n.Load(), limit)
	})

	t.Run("wire", func(t *testing.T) {
		conn, err := net.Dial("tcp", r.srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := io.WriteString(conn, "POST /bn/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var sent atomic.Int64
		stopped := make(chan error, 1)
		go func() {
			chunk := []byte(fmt.Sprintf("%x\r\n%s\r\n", 32<<10, strings.Repeat(" ", 32<<10)))
			deadline := time.Now().Add(20 * time.Second) // bounded even if the server never stops reading
			for time.Now().Before(deadline) {
				_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				n, err := conn.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					stopped <- err
					return
				}
			}
			stopped <- errors.New("the server was still reading after 20 s")
		}()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no answer while sending an endless body: %v", err)
		}
		ans, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || len(ans) == 0 {
			t.Fatalf("HTTP %d %q, want 413 with a reason", resp.StatusCode, ans)
		}
		atAnswer := sent.Load()
		select {
		case err := <-stopped:
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server stopped reading but kept the connection open: %v", err)
			}
			if strings.Contains(err.Error(), "still reading") {
				t.Fatal(err)
			}
		case <-time.After(25 * time.Second):
			t.Fatal("the sender never stopped")
		}
		// What was sent beyond the limit sits in socket buffers, never in the proxy.
		if total := sent.Load(); total > limit+32<<20 {
			t.Fatalf("the server took %d bytes of an endless body, limit %d", total, limit)
		}
		t.Logf("FAULT bad-input/chunked-endless-body wire_sent_at_413=%d wire_sent_total=%d limit=%d", atAnswer, sent.Load(), limit)
	})
	if n := elRequests(r); n != 0 {
		t.Fatalf("an oversized body reached the ELs")
	}
	requireStillServing(t, r)
}

// TestBadInputSlowSenders: a sender that trickles its header or its body is cut off by the
// server's read timeouts. The daemon's engine listener uses ReadHeaderTimeout 5 s and
// ReadTimeout 30 s (internal/daemon); this server is configured the same way, scaled down.
func TestBadInputSlowSenders(t *testing.T) {
	const headerTimeout, readTimeout = 200 * time.Millisecond, 600 * time.Millisecond
	r := newRig(t, direct3)
	srv := httptest.NewUnstartedServer(r.p)
	srv.Config.ReadHeaderTimeout = headerTimeout
	srv.Config.ReadTimeout = readTimeout
	srv.Start()
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name  string
		start string // what is sent before the sender stalls
		bound time.Duration
	}{
		{"header never finished", "POST /bn/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: appl", headerTimeout},
		{"body never finished", "POST /bn/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"jsonrpc\":\"2.0\",", readTimeout},
		{"chunked body never finished", "POST /bn/slow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"jsonrpc\":\"2.0\"\r\n", readTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := io.WriteString(conn, tc.start); err != nil {
				t.Fatal(err)
			}
			_ = conn.SetReadDeadline(time.Now().Add(tc.bound + 5*time.Second))
			got, err := io.ReadAll(conn) // until the server closes
			took := time.Since(start)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a stalled sender for over %v", tc.bound+5*time.Second)
			}
			if took < tc.bound-50*time.Millisecond || took > tc.bound+time.Second {
				t.Errorf("cut off after %v, want about %v", took, tc.bound)
			}
			status := "closed without an answer"
			if len(got) > 0 {
				resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
				if err != nil {
					t.Fatalf("answer %q: %v", got, err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusBadRequest || len(b) == 0 {
					t.Errorf("HTTP %d %q, want 400 with a reason", resp.StatusCode, b)
				}
				status = fmt.Sprintf("HTTP %d", resp.StatusCode)
			}
			t.Logf("FAULT bad-input/slow-sender/%s cut_after=%v (%s)", strings.ReplaceAll(tc.name, " ", "-"), took.Round(time.Millisecond), status)
		})
	}
	if n := elRequests(r); n != 0 {
		t.Fatalf("a stalled request reached the ELs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/bn/good", bytes.NewReader(newPayloadBody(`"ok"`, 1)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a good request after the slow ones: HTTP %d", resp.StatusCode)
	}
}
