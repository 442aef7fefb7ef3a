package jwtauth

import (
	"crypto/hmac"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
)

// DefaultMaxDrift is the largest difference between a token's `iat` and the
// proxy's clock that the spec and geth accept, in either direction.
const DefaultMaxDrift = 60 * time.Second

// maxTokenLen bounds the token a Verifier will decode. Real Engine API tokens
// are 100–300 bytes; the HTTP server's header limit is far larger.
const maxTokenLen = 8 << 10

// maxNumericDate clamps NumericDate claims (seconds since the epoch) to a range
// that converts to time.Time exactly; anything beyond it is equally far away
// for every check made here.
const maxNumericDate = 1 << 53

// Reasons an [AuthError] carries. They follow geth's 401 texts where geth has
// one ("missing token", "token is expired", "missing issued-at",
// "stale token", "future token", "signature is invalid").
const (
	reasonMissingToken  = "missing token"
	reasonInvalidToken  = "invalid token"
	reasonSigningMethod = "unexpected signing method"
	reasonSignature     = "signature is invalid"
	reasonExpired       = "token is expired"
	reasonNotValidYet   = "token is not valid yet"
	reasonMissingIAT    = "missing issued-at"
	reasonStale         = "stale token"
	reasonFuture        = "future token"
)

// AuthError is the error [Verifier.Verify] returns for every rejected token.
// Reason is a short fixed text, such as "stale token", meant to be sent as the
// body of the HTTP 401; it never contains the token or a secret.
type AuthError struct {
	Reason string
}

// Error returns the reason.
func (e *AuthError) Error() string { return e.Reason }

// Key is one inbound secret and the BN it identifies.
type Key struct {
	// Name is the BN this secret identifies; Verify returns it.
	Name string
	// ID is the value of the token's `id` claim that selects this key
	// (Lighthouse's --execution-jwt-id, for example). Empty means Name.
	ID string
	// Secret is the BN's JWT secret.
	Secret Secret
}

// Verifier checks inbound Engine API tokens against a fixed set of keys. It is
// safe for concurrent use.
type Verifier struct {
	keys     []verifierKey
	byID     map[string]int // effective key ID → index in keys
	maxDrift time.Duration
	clk      clock.Clock
}

// verifierKey is one key as Verify uses it.
type verifierKey struct {
	name string
	mac  macFunc
}

// NewVerifier returns a Verifier for keys. It requires at least one key, a
// non-empty unique name and a unique effective ID per key, no all-zero secret,
// and a positive maxDrift ([DefaultMaxDrift] in production). A nil clk means
// clock.Real. All problems are reported together.
func NewVerifier(keys []Key, maxDrift time.Duration, clk clock.Clock) (*Verifier, error) {
	var errs []error
	if len(keys) == 0 {
		errs = append(errs, errors.New("no jwt keys"))
	}
	if maxDrift <= 0 {
		errs = append(errs, fmt.Errorf("jwt max drift must be positive, got %v", maxDrift))
	}
	v := &Verifier{
		keys:     make([]verifierKey, 0, len(keys)),
		byID:     make(map[string]int, len(keys)),
		maxDrift: maxDrift,
		clk:      clk,
	}
	if v.clk == nil {
		v.clk = clock.Real{}
	}
	names := make(map[string]bool, len(keys))
	for i, k := range keys {
		if k.Name == "" {
			errs = append(errs, fmt.Errorf("jwt key %d: empty name", i))
			continue
		}
		if names[k.Name] {
			errs = append(errs, fmt.Errorf("jwt key %q: duplicate name", k.Name))
			continue
		}
		names[k.Name] = true
		if k.Secret == (Secret{}) {
			errs = append(errs, fmt.Errorf("jwt key %q: secret is all zero", k.Name))
		}
		id := k.ID
		if id == "" {
			id = k.Name
		}
		if j, dup := v.byID[id]; dup {
			errs = append(errs, fmt.Errorf("jwt key %q: id %q already used by key %q", k.Name, id, v.keys[j].name))
			continue
		}
		v.byID[id] = len(v.keys)
		v.keys = append(v.keys, verifierKey{name: k.Name, mac: newMAC(k.Secret)})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return v, nil
}

// Names returns the names of the verifier's keys, in the order they were given.
func (v *Verifier) Names() []string {
	names := make([]string, len(v.keys))
	for i, k := range v.keys {
		names[i] = k.name
	}
	return names
}

// tokenHeader is the part of the JOSE header Verify reads.
type tokenHeader struct {
	Alg string `json:"alg"`
}

// tokenClaims are the claims Verify reads; every other claim is ignored.
// NumericDates are JSON numbers, possibly fractional.
type tokenClaims struct {
	IssuedAt  *float64 `json:"iat"`
	ExpiresAt *float64 `json:"exp"`
	NotBefore *float64 `json:"nbf"`
	ID        string   `json:"id"`
}

// Verify authenticates the raw value of an Authorization header and returns
// the name of the key that verified it. Every failure is an [*AuthError]; see
// the package documentation for the rules and their order.
func (v *Verifier) Verify(authorization string) (name string, err error) {
	raw := bearerToken(authorization)
	if raw == "" {
		return "", &AuthError{reasonMissingToken}
	}
	if len(raw) > maxTokenLen {
		return "", &AuthError{reasonInvalidToken}
	}
	h64, rest, ok1 := strings.Cut(raw, ".")
	c64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(s64, ".") {
		return "", &AuthError{reasonInvalidToken}
	}
	var header tokenHeader
	if decodeSegmentJSON(h64, &header) != nil {
		return "", &AuthError{reasonInvalidToken}
	}
	if header.Alg != "HS256" {
		return "", &AuthError{reasonSigningMethod}
	}
	var claims tokenClaims
	if decodeSegmentJSON(c64, &claims) != nil {
		return "", &AuthError{reasonInvalidToken}
	}
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil {
		return "", &AuthError{reasonInvalidToken}
	}
	name, ok := v.match(raw[:len(h64)+1+len(c64)], sig, claims.ID)
	if !ok {
		return "", &AuthError{reasonSignature}
	}

	// Claims are judged only once the signature holds, so an unauthenticated
	// caller learns nothing from them. The order follows geth: exp, then iat.
	now := v.clk.Now()
	if claims.ExpiresAt != nil && !now.Before(numericDate(*claims.ExpiresAt)) {
		return "", &AuthError{reasonExpired}
	}
	if claims.NotBefore != nil && now.Before(numericDate(*claims.NotBefore)) {
		return "", &AuthError{reasonNotValidYet}
	}
	if claims.IssuedAt == nil {
		return "", &AuthError{reasonMissingIAT}
	}
	iat := numericDate(*claims.IssuedAt)
	switch {
	case now.Sub(iat) > v.maxDrift:
		return "", &AuthError{reasonStale}
	case iat.Sub(now) > v.maxDrift:
		return "", &AuthError{reasonFuture}
	}
	return name, nil
}

// match returns the name of the key whose secret signed input with sig,
// comparing MACs in constant time. A token whose `id` claim selects a key is checked against that key alone;
// any other token against every key, in order.
func (v *Verifier) match(input string, sig []byte, id string) (string, bool) {
	if i, ok := v.byID[id]; ok {
		k := v.keys[i]
		return k.name, hmac.Equal(k.mac(input), sig)
	}
	for _, k := range v.keys {
		if hmac.Equal(k.mac(input), sig) {
			return k.name, true
		}
	}
	return "", false
}

// bearerToken returns the token of an Authorization header value, or "" when
// there is none. Like geth, it requires "Bearer " (any case, a single space)
// and trims whitespace around the token.
func bearerToken(authorization string) string {
	const scheme = "bearer "
	if len(authorization) <= len(scheme) || !strings.EqualFold(authorization[:len(scheme)], scheme) {
		return ""
	}
	return strings.TrimSpace(authorization[len(scheme):])
}

// decodeSegmentJSON decodes one base64url (unpadded) JWT segment holding JSON.
func decodeSegmentJSON(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// numericDate converts a NumericDate claim to a time, dropping fractional
// seconds as geth (golang-jwt at second precision) does.
func numericDate(sec float64) time.Time {
	sec = math.Max(-maxNumericDate, math.Min(maxNumericDate, math.Floor(sec)))
	return time.Unix(int64(sec), 0)
}
