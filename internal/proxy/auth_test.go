package proxy

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/leftover"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// token builds an HS256-style JWT by hand so the tests can make every malformed variant.
func token(alg string, key []byte, claims string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString(fmt.Appendf(nil, `{"alg":%q,"typ":"JWT"}`, alg))
	body := enc.EncodeToString([]byte(claims))
	if alg == "none" {
		return head + "." + body + "."
	}
	h := sha256.New
	if alg == "HS512" {
		h = sha512.New
	}
	m := hmac.New(h, key)
	m.Write([]byte(head + "." + body))
	return head + "." + body + "." + enc.EncodeToString(m.Sum(nil))
}

func secretOf(b byte) jwtauth.Secret {
	var s jwtauth.Secret
	for i := range s {
		s[i] = b + byte(i)
	}
	return s
}

// authRig is a proxy that verifies inbound tokens, in front of three ELs that each verify
// their own, different secret.
func authRig(t *testing.T) (*rig, map[string]jwtauth.Secret) {
	t.Helper()
	bnSecrets := map[string]jwtauth.Secret{"lighthouse": secretOf(1), "teku": secretOf(2)}
	elSecrets := []jwtauth.Secret{secretOf(10), secretOf(11), secretOf(12)}
	clk := clock.NewManual(time.Now())
	v, err := jwtauth.NewVerifier([]jwtauth.Key{
		{Name: "lighthouse", ID: "lh-1", Secret: bnSecrets["lighthouse"]},
		{Name: "teku", Secret: bnSecrets["teku"]},
	}, 60*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, clk: clk, done: make(chan struct{})}
	cfg := Config{Instance: "auth-proxy", Verifier: v, Election: testElection()}
	for i, s := range elSecrets {
		el := fakeel.New(fmt.Sprintf("el%d", i+1), &s)
		r.els = append(r.els, el)
		role := upstream.RoleFollower
		if i == 0 {
			role = upstream.RolePrimary
		}
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: el.Name, URL: el.URL(), Role: role,
			Signer: jwtauth.NewSigner(s, clock.Real{}, jwtauth.SignerOptions{})})
	}
	r.start(cfg)
	return r, bnSecrets
}

func (r *rig) postAuth(path, auth string, body []byte) (int, []byte) {
	r.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := r.srv.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// TestInboundAuthMatrix runs the hive auth suite's cases against the proxy's inbound side:
// each asserts the HTTP status and that no EL received anything for a refused request.
func TestInboundAuthMatrix(t *testing.T) {
	r, bn := authRig(t)
	lh := bn["lighthouse"]
	now := r.clk.Now().Unix()
	iat := func(d int64) string { return fmt.Sprintf(`{"iat":%d}`, now+d) }
	short, long := lh[:31], append(append([]byte(nil), lh[:]...), 1)
	wrong := secretOf(9)
	for _, tc := range []struct {
		name   string
		auth   string
		status int
		reason string
	}{
		{"correct secret", "Bearer " + token("HS256", lh[:], iat(0)), 200, ""},
		{"correct secret lower-case scheme", "bearer " + token("HS256", lh[:], iat(0)), 200, ""},
		{"iat -59s", "Bearer " + token("HS256", lh[:], iat(-59)), 200, ""},
		{"iat +59s", "Bearer " + token("HS256", lh[:], iat(59)), 200, ""},
		{"wrong secret", "Bearer " + token("HS256", wrong[:], iat(0)), 401, "signature is invalid"},
		{"secret 31 bytes", "Bearer " + token("HS256", short, iat(0)), 401, "signature is invalid"},
		{"secret 33 bytes", "Bearer " + token("HS256", long, iat(0)), 401, "signature is invalid"},
		{"iat -61s", "Bearer " + token("HS256", lh[:], iat(-61)), 401, "stale token"},
		{"iat +61s", "Bearer " + token("HS256", lh[:], iat(61)), 401, "future token"},
		{"missing iat", "Bearer " + token("HS256", lh[:], `{}`), 401, "missing issued-at"},
		{"alg none", "Bearer " + token("none", nil, iat(0)), 401, "unexpected signing method"},
		{"HS512", "Bearer " + token("HS512", lh[:], iat(0)), 401, "unexpected signing method"},
		{"expired exp", "Bearer " + token("HS256", lh[:], fmt.Sprintf(`{"iat":%d,"exp":%d}`, now, now-1)), 401, "token is expired"},
		{"no header", "", 401, "missing token"},
		{"malformed header", "Bearer a.b", 401, "invalid token"},
		{"basic scheme", "Basic dXNlcjpwYXNz", 401, "missing token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.waitIdle() // what earlier cases sent has arrived
			before := totalRequests(r)
			code, body := r.postAuth("/", tc.auth, newPayloadBody(`1`, 1))
			if code != tc.status {
				t.Fatalf("HTTP %d (%s), want %d", code, body, tc.status)
			}
			if tc.status != 200 {
				if !strings.Contains(string(body), tc.reason) {
					t.Fatalf("body %q, want reason %q", body, tc.reason)
				}
				r.waitIdle()
				if after := totalRequests(r); after != before {
					t.Fatalf("a refused request reached the ELs (%d → %d)", before, after)
				}
			}
		})
	}
}

func totalRequests(r *rig) int {
	n := 0
	for _, el := range r.els {
		n += len(el.Requests())
	}
	return n
}

// TestAuthIdentity: two beacon nodes with two secrets on the same address are two beacon
// nodes, a token of one cannot pass as the other, and three ELs with three secrets each get
// tokens they accept.
func TestAuthIdentity(t *testing.T) {
	r, bn := authRig(t)
	now := r.clk.Now().Unix()
	lh, teku := bn["lighthouse"], bn["teku"]
	lhTok := "Bearer " + token("HS256", lh[:], fmt.Sprintf(`{"iat":%d,"id":"lh-1"}`, now))
	tekuTok := "Bearer " + token("HS256", teku[:], fmt.Sprintf(`{"iat":%d}`, now))
	// Signed with teku's secret but claiming lighthouse's id: refused.
	forged := "Bearer " + token("HS256", teku[:], fmt.Sprintf(`{"iat":%d,"id":"lh-1"}`, now))

	if code, body := r.postAuth("/", lhTok, newPayloadBody(`1`, 1)); code != 200 {
		t.Fatalf("lighthouse: HTTP %d %s", code, body)
	}
	if code, body := r.postAuth("/bn/lighthouse", tekuTok, newPayloadBody(`2`, 1)); code != 200 {
		t.Fatalf("teku: HTTP %d %s", code, body)
	}
	if code, _ := r.postAuth("/", forged, newPayloadBody(`3`, 1)); code != 401 {
		t.Fatalf("forged id: HTTP %d, want 401", code)
	}
	var names []string
	for _, b := range r.p.Tracker().Snapshot() {
		names = append(names, b.Name)
	}
	if strings.Join(names, ",") != "lighthouse,teku" {
		t.Fatalf("beacon nodes %v, want lighthouse and teku (the path does not override the secret)", names)
	}
	// Each EL verified its own secret on the block and the writer's update.
	if code, body := r.postAuth("/", lhTok, forkchoiceBody(`4`, 1, false)); code != 200 {
		t.Fatalf("forkchoiceUpdated: HTTP %d %s", code, body)
	}
	r.waitIdle()
	for i, el := range r.els {
		var got []string
		for _, m := range el.Methods() {
			if strings.HasPrefix(m, "engine_") { // not the lane's own head look-ups
				got = append(got, m)
			}
		}
		if len(got) != 2 {
			t.Errorf("%s got %v, want the block and the update", el.Name, got)
		}
		if st := r.p.Lanes()[i].Stats(); st.State != upstream.StateUp || st.Failed != 0 {
			t.Errorf("%s lane: %+v", el.Name, st)
		}
		for _, rec := range el.Requests() {
			if rec.Headers.Get("Authorization") == lhTok {
				t.Errorf("%s received the beacon node's own token", el.Name)
			}
		}
	}
}

// TestIdentityBoundToSecret: beside the shared secret, a beacon node with its own secret
// owns its name. Every combination of secret, `id` claim, path and forwarded identity (a
// trusted proxy's X-Forwarded-For, a trusted relay's beacon-node header) either is refused
// or is counted as the node its secret, or else its claim, names; a bound name is never
// claimed without its secret.
func TestIdentityBoundToSecret(t *testing.T) {
	const shared = "*shared"
	secrets := map[string]jwtauth.Secret{shared: secretOf(1), "lighthouse": secretOf(2), "teku": secretOf(3),
		"198.51.100.7": secretOf(4), "wrong": secretOf(5)}
	v, err := jwtauth.NewVerifier([]jwtauth.Key{
		{Name: shared, ID: shared, Secret: secrets[shared]},
		{Name: "lighthouse", ID: "lh-1", Secret: secrets["lighthouse"]},
		{Name: "teku", Secret: secrets["teku"]},
		{Name: "198.51.100.7", Secret: secrets["198.51.100.7"]}, // a node known by its address
	}, 60*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	type counted struct {
		bn      string
		outcome Outcome
	}
	seen := make(chan counted, 1)
	r := newRig(t, mirror3, func(c *Config) {
		c.Verifier, c.SharedKeyName = v, shared
		c.TrustedProxies = mustPrefixes("127.0.0.1/32")
		c.Hooks.OnRequest = func(bn string, _ engine.Class, o Outcome, _ time.Duration) { seen <- counted{bn, o} }
	})
	bound := map[string]bool{"lighthouse": true, "teku": true, "198.51.100.7": true}
	idKey := map[string]string{"lh-1": "lighthouse", "teku": "teku", shared: shared, "198.51.100.7": "198.51.100.7"}

	type forwarded struct{ xff, relayBN string }
	n := 0
	for _, secret := range []string{shared, "lighthouse", "teku", "wrong"} {
		for _, id := range []string{"", "lh-1", "teku", shared, "nobody"} {
			for _, path := range []string{"/", "/bn/lighthouse", "/bn/teku", "/bn/other"} {
				for _, fw := range []forwarded{{}, {xff: "198.51.100.7"}, {xff: "203.0.113.1"}, {relayBN: "lighthouse"}, {relayBN: "bn-x"}} {
					// What the proxy must decide, from the rules alone.
					verified := ""
					if k, ok := idKey[id]; ok {
						if k == secret {
							verified = k
						}
					} else if secret != "wrong" {
						verified = secret
					}
					want, status, reason := verified, 200, ""
					if verified == shared {
						switch {
						case path != "/":
							want = strings.TrimPrefix(path, "/bn/")
						case fw.relayBN != "":
							want = fw.relayBN
						case fw.xff != "":
							want = fw.xff
						default:
							want = "127.0.0.1"
						}
						if bound[want] { // refused, and counted under the name it claimed
							status, reason = 401, "bound to its own jwt secret"
						}
					}
					if verified == "" {
						want, status, reason = "", 401, "signature is invalid"
					}

					name := fmt.Sprintf("secret=%s id=%q path=%s xff=%q relay=%q", secret, id, path, fw.xff, fw.relayBN)
					claims := fmt.Sprintf(`{"iat":%d}`, time.Now().Unix())
					if id != "" {
						claims = fmt.Sprintf(`{"iat":%d,"id":%q}`, time.Now().Unix(), id)
					}
					s := secrets[secret]
					req, _ := http.NewRequest(http.MethodPost, r.srv.URL+path, bytes.NewReader(newPayloadBody(fmt.Sprint(n), 1)))
					n++
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", "Bearer "+token("HS256", s[:], claims))
					if fw.xff != "" {
						req.Header.Set("X-Forwarded-For", fw.xff)
					}
					if fw.relayBN != "" {
						req.Header.Set(upstream.HeaderBN, fw.relayBN)
					}
					resp, err := r.srv.Client().Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					var got counted
					select {
					case got = <-seen:
					case <-time.After(10 * time.Second):
						t.Fatalf("%s: the request was never reported", name)
					}
					if resp.StatusCode != status || got.bn != want || (got.outcome == OutcomeUnauthorized) != (status == 401) || !strings.Contains(string(body), reason) {
						t.Errorf("%s: HTTP %d %q counted as %q (%s); want HTTP %d (%q) counted as %q", name, resp.StatusCode, body, got.bn, got.outcome, status, reason, want)
					}
				}
			}
		}
	}
	// No request carried the address-named node's secret, so nothing may have counted as it.
	for _, b := range r.p.Tracker().Snapshot() {
		if b.Name == "198.51.100.7" {
			t.Errorf("%s is tracked, but no request carried its secret", b.Name)
		}
	}
}

// TestMisboundWarnsOncePerMinute: a beacon node that sends its bound name with the shared
// secret loses every request; the log says so at WARN once a minute, naming the node.
func TestMisboundWarnsOncePerMinute(t *testing.T) {
	const shared = "*shared"
	v, err := jwtauth.NewVerifier([]jwtauth.Key{
		{Name: shared, ID: shared, Secret: secretOf(1)},
		{Name: "lighthouse", Secret: secretOf(2)},
	}, 60*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	clk := clock.NewManual(time.Now())
	left := leftover.Check(t)
	p, err := New(Config{Instance: "test-proxy", Election: testElection(), Verifier: v, SharedKeyName: shared,
		ELs: []upstream.Config{{Name: "el1", URL: "http://127.0.0.1:1", Role: upstream.RolePrimary}}},
		clk, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	left.Add(p)
	defer p.Close()
	key := secretOf(1)
	send := func() {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/bn/lighthouse", bytes.NewReader(newPayloadBody("1", 1)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token("HS256", key[:], fmt.Sprintf(`{"iat":%d}`, clk.Now().Unix())))
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("HTTP %d %s; want 401", rec.Code, rec.Body)
		}
	}
	for range 5 {
		send()
		clk.Advance(10 * time.Second)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings for 5 refusals in 50 s, want 1:\n%s", n, logs.String())
	}
	clk.Advance(10 * time.Second)
	send()
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Fatalf("%d warnings after a minute, want 2:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "bn=lighthouse source=path") {
		t.Fatalf("the warning does not name the node and how it was named:\n%s", logs.String())
	}
}
