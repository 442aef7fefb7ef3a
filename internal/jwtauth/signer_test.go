package jwtauth_test

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// segmentJSON decodes segment i of a token into a map.
func segmentJSON(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("segment %d: %v", i, err)
	}
	return m
}

// TestSignerRoundTrip checks the minted token's exact shape, that our
// Verifier accepts it, and that it passes geth's checks as geth makes them:
// golang-jwt with HS256 only and claim validation off, then iat within 60 s.
func TestSignerRoundTrip(t *testing.T) {
	secret := testSecret(0xa1)
	clk := clock.NewManual(t0.Add(700 * time.Millisecond)) // iat must drop the fraction
	iat := float64(t0.Unix())
	tests := []struct {
		name   string
		opts   jwtauth.SignerOptions
		claims map[string]any
	}{
		{"iat only", jwtauth.SignerOptions{}, map[string]any{"iat": iat}},
		{"id", jwtauth.SignerOptions{ID: "sync-proxy-1"}, map[string]any{"iat": iat, "id": "sync-proxy-1"}},
		{"clv", jwtauth.SignerOptions{CLV: "sync-proxy/v0.1.0"}, map[string]any{"iat": iat, "clv": "sync-proxy/v0.1.0"}},
		{"id and clv", jwtauth.SignerOptions{ID: "sp", CLV: "sync-proxy/v0.1.0"}, map[string]any{"iat": iat, "id": "sp", "clv": "sync-proxy/v0.1.0"}},
	}
	v := newTestVerifier(t, jwtauth.Key{Name: "el", Secret: secret})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := jwtauth.NewSigner(secret, clk, tt.opts)
			token := s.Token()
			if got, want := segmentJSON(t, token, 0), map[string]any{"alg": "HS256", "typ": "JWT"}; !maps.Equal(got, want) {
				t.Errorf("header = %v, want %v", got, want)
			}
			if got := segmentJSON(t, token, 1); !maps.Equal(got, tt.claims) {
				t.Errorf("claims = %v, want %v", got, tt.claims)
			}
			if got := s.Authorization(); got != "Bearer "+token {
				t.Errorf("Authorization() = %q, want %q", got, "Bearer "+token)
			}
			if name, err := v.Verify(s.Authorization()); err != nil || name != "el" {
				t.Errorf("Verify = %q, %v; want el, nil", name, err)
			}

			var rc jwt.RegisteredClaims
			parsed, err := jwt.ParseWithClaims(token, &rc, func(*jwt.Token) (any, error) { return secret[:], nil },
				jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())
			switch {
			case err != nil || !parsed.Valid:
				t.Fatalf("golang-jwt rejects the token: %v", err)
			case rc.IssuedAt == nil || !rc.IssuedAt.Equal(t0):
				t.Errorf("iat = %v, want %v", rc.IssuedAt, t0)
			case rc.ExpiresAt != nil:
				t.Errorf("exp = %v, want none", rc.ExpiresAt)
			}
		})
	}
}

// TestSignerReuse walks a manual clock through each reuse setting and checks
// when a token is reused and when a fresh one (with iat = now) is minted.
func TestSignerReuse(t *testing.T) {
	type step struct {
		at    time.Duration // clock offset from t0
		fresh bool          // a new token is expected (with iat = this second)
	}
	tests := []struct {
		name  string
		reuse time.Duration
		steps []step
	}{
		{"default 5s", 0, []step{{0, true}, {time.Second, false}, {4999 * time.Millisecond, false}, {5 * time.Second, true}, {9 * time.Second, false}, {10 * time.Second, true}}},
		{"2s", 2 * time.Second, []step{{0, true}, {1500 * time.Millisecond, false}, {2 * time.Second, true}}},
		{"from iat, not from minting", 2 * time.Second, []step{{900 * time.Millisecond, true}, {1900 * time.Millisecond, false}, {2 * time.Second, true}}},
		{"capped at MaxReuse", time.Hour, []step{{0, true}, {jwtauth.MaxReuse - time.Nanosecond, false}, {jwtauth.MaxReuse, true}}},
		{"negative mints every time", -1, []step{{0, true}, {time.Second, true}, {2 * time.Second, true}}},
		{"clock going back re-mints", 0, []step{{10 * time.Second, true}, {3 * time.Second, true}, {4 * time.Second, false}}},
	}
	secret := testSecret(0xa1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewManual(t0)
			s := jwtauth.NewSigner(secret, clk, jwtauth.SignerOptions{Reuse: tt.reuse})
			var prev string
			for i, st := range tt.steps {
				clk.Set(t0.Add(st.at))
				token := s.Token()
				if fresh := token != prev; fresh != st.fresh {
					t.Fatalf("step %d at %v: fresh = %v, want %v", i, st.at, fresh, st.fresh)
				}
				if st.fresh {
					wantIAT := float64(t0.Add(st.at).Unix())
					if got := segmentJSON(t, token, 1)["iat"]; got != wantIAT {
						t.Fatalf("step %d: iat = %v, want %v", i, got, wantIAT)
					}
				}
				prev = token
			}
		})
	}
}

// TestSignerConcurrent calls Token from many goroutines while the clock moves;
// run under -race. Every token must verify.
func TestSignerConcurrent(t *testing.T) {
	secret := testSecret(0xa1)
	clk := clock.NewManual(t0)
	s := jwtauth.NewSigner(secret, clk, jwtauth.SignerOptions{Reuse: time.Second})
	v := newTestVerifier(t, jwtauth.Key{Name: "el", Secret: secret})

	const workers, calls = 8, 200
	tokens := make(chan string, workers*calls)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range calls {
				tokens <- s.Authorization()
			}
		})
	}
	wg.Go(func() {
		for range calls {
			clk.Advance(100 * time.Millisecond) // 20 s in all, inside the 60 s window
		}
	})
	wg.Wait()
	close(tokens)
	for tok := range tokens {
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("Verify(%q): %v", tok, err)
		}
	}
}

// TestSignerNilClock checks that a nil clock means the wall clock.
func TestSignerNilClock(t *testing.T) {
	secret := testSecret(0xa1)
	s := jwtauth.NewSigner(secret, nil, jwtauth.SignerOptions{})
	v, err := jwtauth.NewVerifier([]jwtauth.Key{{Name: "el", Secret: secret}}, jwtauth.DefaultMaxDrift, clock.Real{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(s.Authorization()); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkToken(b *testing.B) {
	for _, bb := range []struct {
		name  string
		reuse time.Duration
	}{
		{"reused", 0},
		{"minted", -1},
	} {
		b.Run(bb.name, func(b *testing.B) {
			s := jwtauth.NewSigner(testSecret(0xa1), clock.NewManual(t0), jwtauth.SignerOptions{ID: "sync-proxy", Reuse: bb.reuse})
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Token()
			}
		})
	}
}
