package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// Engine API over SSZ-REST (execution-apis PR #793): a consensus client probes the REST
// endpoints under /engine/v1/ and falls back to JSON-RPC, for that EL's lifetime, on a 404.
// Until sync-proxy speaks that transport, every /engine/ path answers 404 after the token
// check, whatever the method and content type, and nothing reaches an EL.
func TestSSZRESTPathsAnswer404(t *testing.T) {
	r, bn := authRig(t)
	lh := bn["lighthouse"]
	good := "Bearer " + token("HS256", lh[:], fmt.Sprintf(`{"iat":%d}`, r.clk.Now().Unix()))
	cases := []struct {
		name, method, path, ctype, auth string
		body                            []byte
		want                            int
	}{
		{"capabilities probe", http.MethodGet, "/engine/v1/capabilities", "", good, nil, http.StatusNotFound},
		{"identity", http.MethodGet, "/engine/v1/identity", "", good, nil, http.StatusNotFound},
		{"get payload", http.MethodGet, "/engine/v1/payloads/0x0000000000000001", "", good, nil, http.StatusNotFound},
		{"bodies by range", http.MethodGet, "/engine/v1/bodies?start=1&count=2", "", good, nil, http.StatusNotFound},
		{"new payload as SSZ", http.MethodPost, "/engine/v1/payloads", "application/octet-stream", good, []byte{1, 2, 3}, http.StatusNotFound},
		{"forkchoice as SSZ", http.MethodPost, "/engine/v1/forkchoice", "application/octet-stream", good, []byte{4}, http.StatusNotFound},
		{"blobs", http.MethodPost, "/engine/v1/blobs/v4", "application/octet-stream", good, []byte{5}, http.StatusNotFound},
		{"JSON to a REST path", http.MethodPost, "/engine/v1/payloads", "application/json", good, newPayloadBody("2", 2), http.StatusNotFound},
		{"a later version", http.MethodGet, "/engine/v2/capabilities", "", good, nil, http.StatusNotFound},
		{"the bare prefix", http.MethodGet, "/engine/v1", "", good, nil, http.StatusNotFound},
		{"under a named beacon node", http.MethodGet, "/bn/lighthouse/engine/v1/capabilities", "", good, nil, http.StatusNotFound},
		{"HEAD", http.MethodHead, "/engine/v1/capabilities", "", good, nil, http.StatusNotFound},
		{"no token", http.MethodGet, "/engine/v1/capabilities", "", "", nil, http.StatusUnauthorized},
		{"bad token", http.MethodPost, "/engine/v1/payloads", "application/octet-stream", "Bearer " + token("HS256", []byte("wrong"), `{"iat":1}`), []byte{1}, http.StatusUnauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, r.srv.URL+tc.path, bytes.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("Eth-Execution-Version", "prague")
			resp, err := r.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("HTTP %d %q, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want != http.StatusNotFound || tc.method == http.MethodHead {
				return
			}
			// The REST transport's error shape (RFC 9457), so a client that logs it says why.
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p struct {
				Status int    `json:"status"`
				Title  string `json:"title"`
				Detail string `json:"detail"`
			}
			if err := json.Unmarshal(body, &p); err != nil || p.Status != http.StatusNotFound || p.Detail == "" {
				t.Errorf("body %q: want a problem document with status 404 and a detail", body)
			}
		})
	}
	// JSON-RPC on the usual paths is untouched.
	for _, path := range []string{"/", "/bn/lighthouse", "/engine"} {
		code, body := r.postAuth(path, good, newPayloadBody(`"np"`, 1))
		if code != http.StatusOK || rawID(t, body) != `"np"` {
			t.Fatalf("JSON-RPC at %s: HTTP %d %s", path, code, body)
		}
	}
	r.waitIdle()
	for _, el := range r.els {
		for _, got := range el.Requests() {
			if got.Block.Hash == blockHash(2) {
				t.Errorf("%s received block 2: a request to a REST path reached an EL", el.Name)
			}
		}
	}
}
