package cldriver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Secret is a 256-bit Engine API JWT secret (reference/engine-api.md §8).
type Secret [32]byte

// NewSecret returns a random secret.
func NewSecret() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s[:]); err != nil {
		return Secret{}, fmt.Errorf("generate jwt secret: %w", err)
	}
	return s, nil
}

// ParseSecret decodes 64 hex digits, with or without 0x, surrounding space ignored.
func ParseSecret(text string) (Secret, error) {
	text = strings.TrimPrefix(strings.TrimSpace(text), "0x")
	raw, err := hex.DecodeString(text)
	if err != nil {
		return Secret{}, fmt.Errorf("jwt secret: %w", err)
	}
	if len(raw) != len(Secret{}) {
		return Secret{}, fmt.Errorf("jwt secret: %d bytes, want 32", len(raw))
	}
	return Secret(raw), nil
}

// Hex returns the secret as 64 hex digits without 0x, the format geth writes.
func (s Secret) Hex() string { return hex.EncodeToString(s[:]) }

// WriteFile writes the secret as hex to path, readable by the owner only.
func (s Secret) WriteFile(path string) error {
	return os.WriteFile(path, []byte(s.Hex()+"\n"), 0o600)
}

// Token mints an HS256 token with iat = now and, if id is not empty, the id claim that
// identifies the consensus client.
func (s Secret) Token(now time.Time, id string) (string, error) {
	claims := jwt.MapClaims{"iat": now.Unix()}
	if id != "" {
		claims["id"] = id
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(s[:])
	if err != nil {
		return "", fmt.Errorf("sign jwt: %w", err)
	}
	return token, nil
}
