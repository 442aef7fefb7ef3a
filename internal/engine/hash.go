package engine

import (
	"encoding/hex"
	"errors"
)

// Hash is a 32-byte hash (DATA32 in the Engine API): a block hash, a parent
// hash or a fork-choice hash.
type Hash [32]byte

// String returns the hash as "0x" followed by 64 lowercase hex digits.
func (h Hash) String() string {
	return string(h.appendHex(make([]byte, 0, 66)))
}

// IsZero reports whether every byte of the hash is zero. The Engine API uses
// the zero hash for a safe or finalized block that is not known yet.
func (h Hash) IsZero() bool {
	return h == Hash{}
}

// MarshalText returns the hash as "0x" followed by 64 lowercase hex digits, so
// a Hash is written as a JSON string.
func (h Hash) MarshalText() ([]byte, error) {
	return h.appendHex(make([]byte, 0, 66)), nil
}

// UnmarshalText parses "0x" followed by 64 hex digits of either case.
func (h *Hash) UnmarshalText(text []byte) error {
	v, ok := parseHash(text)
	if !ok {
		return errors.New("hash must be 0x followed by 64 hex digits")
	}
	*h = v
	return nil
}

// ParseHash parses "0x" followed by 64 hex digits of either case.
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

func (h Hash) appendHex(dst []byte) []byte {
	dst = append(dst, '0', 'x')
	return hex.AppendEncode(dst, h[:])
}

// unhex returns the value of a hex digit, or 0xff if c is not one.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 0xff
}

// parseHash parses the contents of a DATA32 string (without quotes).
func parseHash(b []byte) (Hash, bool) {
	var h Hash
	if len(b) != 2+64 || b[0] != '0' || b[1] != 'x' {
		return h, false
	}
	b = b[2:]
	for i := range h {
		hi, lo := unhex(b[2*i]), unhex(b[2*i+1])
		if hi > 15 || lo > 15 {
			return h, false
		}
		h[i] = hi<<4 | lo
	}
	return h, true
}

// parseQuantity parses the contents of a QUANTITY string (without quotes):
// "0x" followed by 1 to 16 hex digits of either case, without leading zeros
// ("0x0" is zero). It reports false when the text is malformed or the value
// does not fit in 64 bits.
func parseQuantity(b []byte) (uint64, bool) {
	if len(b) < 3 || b[0] != '0' || b[1] != 'x' {
		return 0, false
	}
	b = b[2:]
	if len(b) > 16 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		d := unhex(c)
		if d > 15 {
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// isHexData reports whether b (without quotes) is DATA: "0x" followed by a
// non-zero, even number of hex digits of either case.
func isHexData(b []byte) bool {
	if len(b) < 4 || len(b)%2 != 0 || b[0] != '0' || b[1] != 'x' {
		return false
	}
	for _, c := range b[2:] {
		if unhex(c) > 15 {
			return false
		}
	}
	return true
}
