package jwtauth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Secret is a 256-bit Engine API JWT secret. It never reveals its bytes through
// fmt, encoding/json, encoding (text) or log/slog; all of them show
// "[redacted]". fmt cannot call the methods of a value it reaches through an
// unexported struct field and prints such a Secret byte by byte, so never
// print a struct that keeps one there.
type Secret [32]byte

// redacted is what every rendering of a Secret shows.
const redacted = "[redacted]"

// maxSecretFile bounds how much of a secret file is read: a valid file is 64
// hex characters plus a prefix and whitespace, and a path pointing at a device
// or a large file must not hang startup.
const maxSecretFile = 4096

// String returns "[redacted]".
func (Secret) String() string { return redacted }

// GoString returns "jwtauth.Secret([redacted])".
func (Secret) GoString() string { return "jwtauth.Secret(" + redacted + ")" }

// Format implements fmt.Formatter so that every verb, %x and %d included,
// prints "[redacted]" (and %#v prints the GoString form).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// MarshalText returns "[redacted]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// MarshalJSON returns the JSON string "[redacted]".
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue implements slog.LogValuer so that structured logs show "[redacted]".
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// ParseSecret decodes a secret written as 64 hex characters, in either case,
// with an optional 0x or 0X prefix and surrounding whitespace ignored. Errors
// say what is wrong (the length, a non-hex character and where) without
// quoting the text.
func ParseSecret(text []byte) (Secret, error) {
	var s Secret
	h := bytes.TrimSpace(text)
	if len(h) >= 2 && h[0] == '0' && (h[1] == 'x' || h[1] == 'X') {
		h = h[2:]
	}
	switch {
	case len(h) == 0:
		return s, errors.New("empty, want 64 hex characters (32 bytes)")
	case len(h) != 2*len(s):
		return s, fmt.Errorf("want 64 hex characters (32 bytes), got %d", len(h))
	}
	for i, c := range h {
		if !isHex(c) {
			// hex.Decode's own error quotes the offending byte; this one does not.
			return s, fmt.Errorf("want 64 hex characters (32 bytes), found a non-hex character at offset %d", i)
		}
	}
	if _, err := hex.Decode(s[:], h); err != nil {
		return Secret{}, errors.New("want 64 hex characters (32 bytes), decoding failed")
	}
	return s, nil
}

// LoadSecret reads and parses the secret file at path (see [ParseSecret]).
// Errors name the file and the problem, never the content.
func LoadSecret(path string) (Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return Secret{}, fmt.Errorf("read jwt secret: %w", err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return Secret{}, fmt.Errorf("read jwt secret: %w", err)
	}
	if len(text) > maxSecretFile {
		return Secret{}, fmt.Errorf("jwt secret %s: file larger than %d bytes", path, maxSecretFile)
	}
	s, err := ParseSecret(text)
	if err != nil {
		return Secret{}, fmt.Errorf("jwt secret %s: %w", path, err)
	}
	return s, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// macFunc returns the HMAC-SHA256 of its input under a secret it captures.
// Verifier and Signer keep their secrets only inside such closures: fmt, slog
// and reflection-based dumpers print a func as an address, while a Secret
// reached through an unexported field would be printed byte by byte.
type macFunc func(input string) []byte

// newMAC returns the macFunc for secret.
func newMAC(secret Secret) macFunc {
	return func(input string) []byte {
		mac := hmac.New(sha256.New, secret[:])
		mac.Write([]byte(input))
		return mac.Sum(nil)
	}
}
