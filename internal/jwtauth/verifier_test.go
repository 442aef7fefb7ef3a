package jwtauth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

func newTestVerifier(t testing.TB, keys ...jwtauth.Key) *jwtauth.Verifier {
	t.Helper()
	v, err := jwtauth.NewVerifier(keys, jwtauth.DefaultMaxDrift, clock.NewManual(t0))
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// TestVerify is the hive auth-suite matrix plus geth's TestJWT cases, against
// one BN's key on a clock standing at t0.
func TestVerify(t *testing.T) {
	secret := testSecret(0xa1)
	key := secret[:]
	wrong := testSecret(0x11)
	iat := t0.Unix()
	hs256 := func(claims jwt.MapClaims) string { return libToken(t, jwt.SigningMethodHS256, key, claims) }
	good := hs256(jwt.MapClaims{"iat": iat})
	const hs256Header = `{"alg":"HS256","typ":"JWT"}`
	payload := fmt.Sprintf(`{"iat":%d}`, iat)
	parts := strings.Split(good, ".")

	tests := []struct {
		name   string
		header string // the whole Authorization value
		reason string // "" = accepted
	}{
		// Secrets (hive: correct, wrong, shorter and longer than 32 bytes).
		{"correct secret", "Bearer " + good, ""},
		{"wrong secret", "Bearer " + libToken(t, jwt.SigningMethodHS256, wrong[:], jwt.MapClaims{"iat": iat}), "signature is invalid"},
		{"secret 31 bytes", "Bearer " + libToken(t, jwt.SigningMethodHS256, key[:31], jwt.MapClaims{"iat": iat}), "signature is invalid"},
		// HMAC zero-pads short keys, so a 33rd byte of 0 would sign alike.
		{"secret 33 bytes", "Bearer " + libToken(t, jwt.SigningMethodHS256, append(key[:32:32], 1), jwt.MapClaims{"iat": iat}), "signature is invalid"},
		{"secret 64 bytes", "Bearer " + libToken(t, jwt.SigningMethodHS256, append(key[:32:32], key...), jwt.MapClaims{"iat": iat}), "signature is invalid"},
		{"empty secret", "Bearer " + handToken(hs256Header, payload, []byte{}), "signature is invalid"},
		{"signature of another token", "Bearer " + parts[0] + "." + parts[1] + "." + strings.Split(hs256(jwt.MapClaims{"iat": iat + 1}), ".")[2], "signature is invalid"},
		{"truncated signature", "Bearer " + good[:len(good)-4], "signature is invalid"},

		// iat drift (hive: ±(limit−1) s accepted, ±(limit+1) s rejected).
		{"iat -59s", "Bearer " + hs256(jwt.MapClaims{"iat": iat - 59}), ""},
		{"iat +59s", "Bearer " + hs256(jwt.MapClaims{"iat": iat + 59}), ""},
		{"iat -60s", "Bearer " + hs256(jwt.MapClaims{"iat": iat - 60}), ""},
		{"iat +60s", "Bearer " + hs256(jwt.MapClaims{"iat": iat + 60}), ""},
		{"iat -61s", "Bearer " + hs256(jwt.MapClaims{"iat": iat - 61}), "stale token"},
		{"iat +61s", "Bearer " + hs256(jwt.MapClaims{"iat": iat + 61}), "future token"},
		{"iat -60.5s floors to -61s", "Bearer " + handToken(hs256Header, fmt.Sprintf(`{"iat":%d.5}`, iat-61), key), "stale token"},
		{"iat +60.9s floors to +60s", "Bearer " + handToken(hs256Header, fmt.Sprintf(`{"iat":%d.9}`, iat+60), key), ""},
		{"iat 1e300", "Bearer " + handToken(hs256Header, `{"iat":1e300}`, key), "future token"},
		{"iat -1e300", "Bearer " + handToken(hs256Header, `{"iat":-1e300}`, key), "stale token"},
		{"iat 0", "Bearer " + hs256(jwt.MapClaims{"iat": 0}), "stale token"},
		{"missing iat", "Bearer " + hs256(jwt.MapClaims{"id": "bn1"}), "missing issued-at"},
		{"null iat", "Bearer " + handToken(hs256Header, `{"iat":null}`, key), "missing issued-at"},
		{"empty claims", "Bearer " + handToken(hs256Header, `{}`, key), "missing issued-at"},
		{"iat as string", "Bearer " + handToken(hs256Header, fmt.Sprintf(`{"iat":"%d"}`, iat), key), "invalid token"},

		// Algorithms: HS256 only, whatever the secret.
		{"alg none", "Bearer " + handToken(`{"alg":"none","typ":"JWT"}`, payload, nil), "unexpected signing method"},
		{"alg none with HS256 signature", "Bearer " + handToken(`{"alg":"none","typ":"JWT"}`, payload, key), "unexpected signing method"},
		{"alg None", "Bearer " + handToken(`{"alg":"None"}`, payload, nil), "unexpected signing method"},
		{"alg hs256 lowercase", "Bearer " + handToken(`{"alg":"hs256"}`, payload, key), "unexpected signing method"},
		{"alg missing", "Bearer " + handToken(`{"typ":"JWT"}`, payload, key), "unexpected signing method"},
		{"alg HS384 right secret", "Bearer " + libToken(t, jwt.SigningMethodHS384, key, jwt.MapClaims{"iat": iat}), "unexpected signing method"},
		{"alg HS512 right secret", "Bearer " + libToken(t, jwt.SigningMethodHS512, key, jwt.MapClaims{"iat": iat}), "unexpected signing method"},
		{"alg RS256 with HMAC signature", "Bearer " + handToken(`{"alg":"RS256"}`, payload, key), "unexpected signing method"},
		{"alg not a string", "Bearer " + handToken(`{"alg":256}`, payload, key), "invalid token"},
		{"no typ", "Bearer " + handToken(`{"alg":"HS256"}`, payload, key), ""},

		// exp, nbf and unknown claims.
		{"exp past", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "exp": iat - 1}), "token is expired"},
		{"exp now", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "exp": iat}), "token is expired"},
		{"exp future", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "exp": iat + 1}), ""},
		{"exp checked before iat", "Bearer " + hs256(jwt.MapClaims{"exp": iat - 1}), "token is expired"},
		{"nbf future", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "nbf": iat + 1}), "token is not valid yet"},
		{"nbf now", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "nbf": iat}), ""},
		{"unknown claims ignored", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "clv": "Lighthouse/v8", "aud": 5, "x": []int{1}}), ""},
		{"id of this key", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "id": "bn1"}), ""},
		{"unknown id tries every key", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "id": "who"}), ""},
		{"id not a string", "Bearer " + hs256(jwt.MapClaims{"iat": iat, "id": 7}), "invalid token"},

		// The scheme (geth: "Bearer " in any case, then trimmed).
		{"lowercase scheme", "bearer " + good, ""},
		{"uppercase scheme", "BEARER " + good, ""},
		{"spaces around token", "Bearer   " + good + " \t", ""},
		{"empty header", "", "missing token"},
		{"scheme only", "Bearer", "missing token"},
		{"scheme and space", "Bearer ", "missing token"},
		{"scheme and blanks", "Bearer \t  ", "missing token"},
		{"tab after scheme", "Bearer\t" + good, "missing token"},
		{"colon after scheme", "Bearer:" + good, "missing token"},
		{"no scheme", good, "missing token"},
		{"basic auth", "Basic dXNlcjpwYXNzd29yZA==", "missing token"},
		{"garbage", "garbage", "missing token"},

		// Malformed tokens.
		{"garbage token", "Bearer garbage", "invalid token"},
		{"one dot", "Bearer " + parts[0] + "." + parts[1], "invalid token"},
		{"three dots", "Bearer " + good + ".x", "invalid token"},
		{"dots only", "Bearer ...", "invalid token"},
		{"two dots empty", "Bearer ..", "invalid token"},
		{"space inside token", "Bearer " + parts[0] + ". " + parts[1] + "." + parts[2], "invalid token"},
		{"bad base64 header", "Bearer !!!." + parts[1] + "." + parts[2], "invalid token"},
		{"padded base64 header", "Bearer " + base64.URLEncoding.EncodeToString([]byte(hs256Header+" ")) + "." + parts[1] + "." + parts[2], "invalid token"},
		{"bad base64 payload", "Bearer " + parts[0] + ".%%%." + parts[2], "invalid token"},
		{"bad base64 signature", "Bearer " + parts[0] + "." + parts[1] + ".***", "invalid token"},
		{"non-JSON header", "Bearer " + handToken(`alg=HS256`, payload, key), "invalid token"},
		{"non-JSON payload", "Bearer " + handToken(hs256Header, `iat=1`, key), "invalid token"},
		{"payload array", "Bearer " + handToken(hs256Header, `[1]`, key), "invalid token"},
		{"oversized token", "Bearer " + handToken(hs256Header, fmt.Sprintf(`{"iat":%d,"pad":"%s"}`, iat, strings.Repeat("x", 9000)), key), "invalid token"},
	}
	v := newTestVerifier(t, jwtauth.Key{Name: "bn1", Secret: secret})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, err := v.Verify(tt.header)
			if tt.reason == "" {
				if err != nil || name != "bn1" {
					t.Fatalf("Verify = %q, %v; want bn1, nil", name, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = %q, nil; want reason %q", name, tt.reason)
			}
			if name != "" {
				t.Errorf("rejected token returned name %q", name)
			}
			if got := reasonOf(t, err); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if tok := strings.TrimSpace(strings.TrimPrefix(tt.header, "Bearer ")); len(tok) > 8 && strings.Contains(err.Error(), tok) {
				t.Errorf("error %q contains the token", err)
			}
			if l := leaks(err.Error(), secret); l != "" {
				t.Errorf("error %q leaks the secret (%q)", err, l)
			}
		})
	}
}

// TestVerifyTwoBNs checks that each BN's token resolves to its own name, and
// that the `id` claim cannot borrow another BN's identity.
func TestVerifyTwoBNs(t *testing.T) {
	a, b, other := testSecret(0xa1), testSecret(0x31), testSecret(0x61)
	v := newTestVerifier(t,
		jwtauth.Key{Name: "bn-a", ID: "lighthouse-a", Secret: a},
		jwtauth.Key{Name: "bn-b", Secret: b}, // ID defaults to the name
	)
	if got := v.Names(); !slices.Equal(got, []string{"bn-a", "bn-b"}) {
		t.Fatalf("Names() = %v, want bn-a, bn-b", got)
	}
	iat := t0.Unix()
	tok := func(s jwtauth.Secret, claims jwt.MapClaims) string {
		claims["iat"] = iat
		return "Bearer " + libToken(t, jwt.SigningMethodHS256, s[:], claims)
	}
	tests := []struct {
		name   string
		header string
		want   string // BN name, or "" for a rejection
		reason string
	}{
		{"A without id", tok(a, jwt.MapClaims{}), "bn-a", ""},
		{"B without id", tok(b, jwt.MapClaims{}), "bn-b", ""},
		{"A with its id", tok(a, jwt.MapClaims{"id": "lighthouse-a"}), "bn-a", ""},
		{"B with its name as id", tok(b, jwt.MapClaims{"id": "bn-b"}), "bn-b", ""},
		{"A with unknown id", tok(a, jwt.MapClaims{"id": "prysm"}), "bn-a", ""},
		{"B with empty id", tok(b, jwt.MapClaims{"id": ""}), "bn-b", ""},
		{"A with its name, not its id", tok(a, jwt.MapClaims{"id": "bn-a"}), "bn-a", ""},
		{"A secret claiming B's id", tok(a, jwt.MapClaims{"id": "bn-b"}), "", "signature is invalid"},
		{"B secret claiming A's id", tok(b, jwt.MapClaims{"id": "lighthouse-a"}), "", "signature is invalid"},
		{"unknown secret", tok(other, jwt.MapClaims{}), "", "signature is invalid"},
		{"unknown secret with A's id", tok(other, jwt.MapClaims{"id": "lighthouse-a"}), "", "signature is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, err := v.Verify(tt.header)
			if tt.reason == "" {
				if err != nil || name != tt.want {
					t.Fatalf("Verify = %q, %v; want %q, nil", name, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = %q, nil; want reason %q", name, tt.reason)
			}
			if got := reasonOf(t, err); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

// TestVerifyFollowsClock checks that freshness is judged on the injected
// clock, not the wall clock.
func TestVerifyFollowsClock(t *testing.T) {
	secret := testSecret(0xa1)
	clk := clock.NewManual(t0)
	v, err := jwtauth.NewVerifier([]jwtauth.Key{{Name: "bn1", Secret: secret}}, 10*time.Second, clk)
	if err != nil {
		t.Fatal(err)
	}
	header := "Bearer " + libToken(t, jwt.SigningMethodHS256, secret[:], jwt.MapClaims{"iat": t0.Unix()})
	steps := []struct {
		advance time.Duration
		reason  string
	}{
		{0, ""},
		{10 * time.Second, ""},
		{time.Nanosecond, "stale token"},
	}
	for _, s := range steps {
		clk.Advance(s.advance)
		_, err := v.Verify(header)
		switch {
		case s.reason == "" && err != nil:
			t.Fatalf("at %v: %v, want accepted", clk.Now().Sub(t0), err)
		case s.reason != "" && (err == nil || reasonOf(t, err) != s.reason):
			t.Fatalf("at %v: %v, want %q", clk.Now().Sub(t0), err, s.reason)
		}
	}
}

func TestNewVerifier(t *testing.T) {
	a, b := testSecret(0xa1), testSecret(0x31)
	tests := []struct {
		name     string
		keys     []jwtauth.Key
		maxDrift time.Duration
		wantErrs []string // substrings; nil = success
	}{
		{"ok", []jwtauth.Key{{Name: "a", Secret: a}, {Name: "b", ID: "lh", Secret: b}}, time.Minute, nil},
		{"same secret, different ids", []jwtauth.Key{{Name: "a", Secret: a}, {Name: "b", Secret: a}}, time.Minute, nil},
		{"no keys", nil, time.Minute, []string{"no jwt keys"}},
		{"zero drift", []jwtauth.Key{{Name: "a", Secret: a}}, 0, []string{"jwt max drift must be positive, got 0s"}},
		{"negative drift", []jwtauth.Key{{Name: "a", Secret: a}}, -time.Second, []string{"got -1s"}},
		{"empty name", []jwtauth.Key{{Secret: a}}, time.Minute, []string{"jwt key 0: empty name"}},
		{"duplicate name", []jwtauth.Key{{Name: "a", Secret: a}, {Name: "a", Secret: b}}, time.Minute, []string{`jwt key "a": duplicate name`}},
		{"id equals other name", []jwtauth.Key{{Name: "a", Secret: a}, {Name: "b", ID: "a", Secret: b}}, time.Minute, []string{`jwt key "b": id "a" already used by key "a"`}},
		{"duplicate id", []jwtauth.Key{{Name: "a", ID: "x", Secret: a}, {Name: "b", ID: "x", Secret: b}}, time.Minute, []string{`id "x" already used`}},
		{"zero secret", []jwtauth.Key{{Name: "a"}}, time.Minute, []string{`jwt key "a": secret is all zero`}},
		{"all problems at once", []jwtauth.Key{{Name: "a"}, {Name: "a", Secret: b}}, 0, []string{"all zero", "duplicate name", "max drift"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jwtauth.NewVerifier(tt.keys, tt.maxDrift, clock.NewManual(t0))
			if tt.wantErrs == nil {
				if err != nil || v == nil {
					t.Fatalf("NewVerifier = %v, %v; want a verifier", v, err)
				}
				return
			}
			if err == nil {
				t.Fatal("NewVerifier succeeded, want an error")
			}
			for _, want := range tt.wantErrs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			for _, s := range []jwtauth.Secret{a, b} {
				if l := leaks(err.Error(), s); l != "" {
					t.Errorf("error %q leaks a secret (%q)", err, l)
				}
			}
		})
	}
}

// TestVerifierNilClock checks that a nil clock means the wall clock.
func TestVerifierNilClock(t *testing.T) {
	secret := testSecret(0xa1)
	v, err := jwtauth.NewVerifier([]jwtauth.Key{{Name: "bn1", Secret: secret}}, jwtauth.DefaultMaxDrift, nil)
	if err != nil {
		t.Fatal(err)
	}
	header := "Bearer " + libToken(t, jwt.SigningMethodHS256, secret[:], jwt.MapClaims{"iat": time.Now().Unix()})
	if name, err := v.Verify(header); err != nil || name != "bn1" {
		t.Fatalf("Verify = %q, %v", name, err)
	}
}

// FuzzVerify feeds arbitrary header values to a two-key Verifier. It must
// never panic, must reject with a known reason, and anything it accepts must
// pass an independent check written here: the scheme, HS256, an HMAC-SHA256
// that matches the returned BN's secret, and iat within the window.
func FuzzVerify(f *testing.F) {
	secrets := map[string]jwtauth.Secret{"bn-a": testSecret(0xa1), "bn-b": testSecret(0x31)}
	const maxDrift = jwtauth.DefaultMaxDrift
	v, err := jwtauth.NewVerifier([]jwtauth.Key{
		{Name: "bn-a", ID: "lighthouse-a", Secret: secrets["bn-a"]},
		{Name: "bn-b", Secret: secrets["bn-b"]},
	}, maxDrift, clock.NewManual(t0))
	if err != nil {
		f.Fatal(err)
	}
	a, b := secrets["bn-a"], secrets["bn-b"]
	iat := t0.Unix()
	for _, seed := range []string{
		"Bearer " + libToken(f, jwt.SigningMethodHS256, a[:], jwt.MapClaims{"iat": iat}),
		"bearer " + libToken(f, jwt.SigningMethodHS256, b[:], jwt.MapClaims{"iat": iat - 59, "id": "bn-b"}),
		"BEARER  " + libToken(f, jwt.SigningMethodHS256, a[:], jwt.MapClaims{"iat": iat + 30, "id": "lighthouse-a", "exp": iat + 5}) + " ",
		"Bearer " + libToken(f, jwt.SigningMethodHS256, a[:], jwt.MapClaims{"iat": iat, "id": "bn-b"}),
		"Bearer " + libToken(f, jwt.SigningMethodHS256, b[:], jwt.MapClaims{"iat": iat + 61}),
		"Bearer " + libToken(f, jwt.SigningMethodHS512, b[:], jwt.MapClaims{"iat": iat}),
		"Bearer " + handToken(`{"alg":"none"}`, fmt.Sprintf(`{"iat":%d}`, iat), nil),
		"Bearer " + handToken(`{"alg":"HS256"}`, fmt.Sprintf(`{"iat":%d.999,"nbf":1e308}`, iat), a[:]),
		"Bearer a.b.c",
		"Bearer ...",
		"Basic Zm9vOmJhcg==",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		name, err := v.Verify(header)
		if err != nil {
			if name != "" {
				t.Fatalf("rejected with name %q", name)
			}
			if r := reasonOf(t, err); !knownReasons[r] {
				t.Fatalf("unknown reason %q", r)
			}
			return
		}
		secret, ok := secrets[name]
		if !ok {
			t.Fatalf("accepted as unknown BN %q", name)
		}
		if reason := independentCheck(header, secret[:], t0, maxDrift); reason != "" {
			t.Fatalf("Verify accepted %q as %s, but the independent check says: %s", header, name, reason)
		}
	})
}

// independentCheck re-verifies an accepted Authorization value from first
// principles and returns what is wrong with it, or "".
func independentCheck(header string, key []byte, now time.Time, maxDrift time.Duration) string {
	if len(header) < 7 || !strings.EqualFold(header[:7], "bearer ") {
		return "no bearer scheme"
	}
	parts := strings.Split(strings.TrimSpace(header[7:]), ".")
	if len(parts) != 3 {
		return fmt.Sprintf("%d segments", len(parts))
	}
	headerJSON, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	claimsJSON, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return "base64: " + err.Error()
	}
	var h map[string]any
	if err := json.Unmarshal(headerJSON, &h); err != nil || h["alg"] != "HS256" {
		return fmt.Sprintf("header %s", headerJSON)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(mac.Sum(nil), sig) {
		return "HMAC-SHA256 does not match"
	}
	var c map[string]any
	if err := json.Unmarshal(claimsJSON, &c); err != nil {
		return "claims: " + err.Error()
	}
	iat, ok := c["iat"].(float64)
	if !ok {
		return "no numeric iat"
	}
	if d := float64(now.Unix()) - math.Floor(iat); math.Abs(d) > maxDrift.Seconds() {
		return fmt.Sprintf("iat %v s away", d)
	}
	return ""
}

func BenchmarkVerify(b *testing.B) {
	keys := []jwtauth.Key{
		{Name: "bn-a", Secret: testSecret(0xa1)},
		{Name: "bn-b", Secret: testSecret(0x31)},
		{Name: "bn-c", Secret: testSecret(0x61)},
	}
	c := keys[2].Secret
	iat := t0.Unix()
	for _, bb := range []struct {
		name  string
		keys  []jwtauth.Key
		token string
	}{
		{"one-key", keys[2:], libToken(b, jwt.SigningMethodHS256, c[:], jwt.MapClaims{"iat": iat})},
		{"three-keys-by-id", keys, libToken(b, jwt.SigningMethodHS256, c[:], jwt.MapClaims{"iat": iat, "id": "bn-c"})},
		{"three-keys-scan", keys, libToken(b, jwt.SigningMethodHS256, c[:], jwt.MapClaims{"iat": iat})},
	} {
		b.Run(bb.name, func(b *testing.B) {
			v := newTestVerifier(b, bb.keys...)
			header := "Bearer " + bb.token
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(header); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
