package jwtauth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// t0 is the manual clock's start in every test: whole seconds, so iat drift
// cases are exact.
var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// testSecret returns a secret whose bytes are first, first+1, … so that any
// leak shows up as a recognisable hex or decimal run.
func testSecret(first byte) jwtauth.Secret {
	var s jwtauth.Secret
	for i := range s {
		s[i] = first + byte(i)
	}
	return s
}

// libToken signs claims with golang-jwt, an implementation independent of the
// package under test, as a CL would.
func libToken(t testing.TB, method jwt.SigningMethod, key []byte, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign test token: %v", err)
	}
	return tok
}

// handToken builds base64url(header).base64url(payload).signature from raw
// JSON text; the signature is HMAC-SHA256 under key, or empty when key is nil.
func handToken(header, payload string, key []byte) string {
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	if key == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(input))
	return input + "." + enc.EncodeToString(mac.Sum(nil))
}

// reasonOf returns the Reason of an *AuthError, failing the test for any other
// error.
func reasonOf(t testing.TB, err error) string {
	t.Helper()
	var ae *jwtauth.AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *AuthError", err, err)
	}
	return ae.Reason
}

// knownReasons are all the texts a 401 may carry.
var knownReasons = map[string]bool{
	"missing token":             true,
	"invalid token":             true,
	"unexpected signing method": true,
	"signature is invalid":      true,
	"token is expired":          true,
	"token is not valid yet":    true,
	"missing issued-at":         true,
	"stale token":               true,
	"future token":              true,
}

// leaks returns the first rendering of secret's bytes (hex in either case,
// decimal as fmt prints a byte slice, raw) that text contains, or "".
func leaks(text string, secret jwtauth.Secret) string {
	b := [32]byte(secret)
	for _, needle := range []string{
		hex.EncodeToString(b[:4]),
		strings.ToUpper(hex.EncodeToString(b[:4])),
		strings.Trim(fmt.Sprint(b[:4]), "[]"),
		string(b[:4]),
	} {
		if strings.Contains(text, needle) {
			return needle
		}
	}
	return ""
}
