package engine

import (
	"bytes"
	"encoding/json"
	"strings"
)

// MaxDepth is the deepest nesting of objects and arrays the scanner accepts.
// A request nested deeper is refused with CodeInvalidRequest; Engine API
// bodies nest at most five levels.
const MaxDepth = 64

// maxEscapedName bounds the length of a member name the scanner decodes to
// compare it with the names it reads: longer names cannot fold to any of them
// (the longest, "finalizedBlockHash", is 108 bytes when every letter is
// written as a \u escape).
const maxEscapedName = 128

// scanner walks a JSON text in place. Its methods never allocate on success;
// errors are *Error values with CodeParseError for malformed JSON, or
// CodeInvalidRequest when the nesting exceeds MaxDepth.
type scanner struct {
	buf []byte
	pos int
}

// next skips whitespace and returns the byte at the new position, or 0 at the
// end of the input.
func (s *scanner) next() byte {
	for s.pos < len(s.buf) {
		switch c := s.buf[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// atEOF reports whether the scanner has consumed the whole input.
func (s *scanner) atEOF() bool { return s.pos >= len(s.buf) }

// unexpected returns the syntax error for the byte at the current position.
func (s *scanner) unexpected(want string) *Error {
	if s.atEOF() {
		return errParse("unexpected end of input, expected %s", want)
	}
	return errParse("invalid character %q at offset %d, expected %s", s.buf[s.pos], s.pos, want)
}

func errTooDeep() *Error {
	return errRequest("nesting deeper than %d levels", MaxDepth)
}

// end checks that only whitespace follows the top-level value.
func (s *scanner) end() *Error {
	if s.next(); !s.atEOF() {
		return s.unexpected("end of input")
	}
	return nil
}

// quoted consumes the string at the current position (which must be '"') and
// returns it including its quotes. Escapes are honoured to find the closing
// quote but not validated, and raw control characters are not rejected; see
// the package documentation.
func (s *scanner) quoted() ([]byte, *Error) {
	start := s.pos
	i := start + 1
	for {
		j := bytes.IndexByte(s.buf[i:], '"')
		if j < 0 {
			s.pos = len(s.buf)
			return nil, errParse("unterminated string starting at offset %d", start)
		}
		i += j
		// The quote is escaped when an odd number of backslashes precede it.
		// The run of backslashes never extends past the previous quote, so
		// the count is linear in the string's length overall.
		k := i
		for s.buf[k-1] == '\\' {
			k--
		}
		if (i-k)%2 == 0 {
			s.pos = i + 1
			return s.buf[start:s.pos], nil
		}
		i++
	}
}

// literal consumes the literal word (true, false or null).
func (s *scanner) literal(word string) *Error {
	if !bytes.HasPrefix(s.buf[s.pos:], []byte(word)) {
		return s.unexpected(word)
	}
	s.pos += len(word)
	return nil
}

// number consumes a number, checking the JSON grammar
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *scanner) number() *Error {
	b, i := s.buf, s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		s.pos = i
		return s.unexpected("digit")
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			s.pos = j
			return s.unexpected("digit")
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			s.pos = j
			return s.unexpected("digit")
		}
		i = j
	}
	s.pos = i
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// scalar consumes the string, number or literal at the current position.
func (s *scanner) scalar() *Error {
	if s.atEOF() {
		return s.unexpected("value")
	}
	switch c := s.buf[s.pos]; c {
	case '"':
		_, err := s.quoted()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		if c == '-' || ('0' <= c && c <= '9') {
			return s.number()
		}
	}
	return s.unexpected("value")
}

// skip consumes one value after optional whitespace. depth is the number of
// containers enclosing the value. Containers are skipped iteratively, so the
// depth bound, not the input, limits the work per level.
func (s *scanner) skip(depth int) *Error {
	switch s.next() {
	case '{', '[':
		return s.skipContainer(depth)
	}
	return s.scalar()
}

// skipContainer consumes the object or array at the current position. A bit
// per open level (a set bit is an object) is all the state it needs, which is
// why MaxDepth is at most 64.
func (s *scanner) skipContainer(depth int) *Error {
	var objects uint64
	n := 0 // open levels
	for {
		// s.pos is at the first byte of a value.
		if c := s.buf[s.pos]; c == '{' || c == '[' {
			if depth+n >= MaxDepth {
				return errTooDeep()
			}
			isObject := c == '{'
			objects &^= 1 << n
			if isObject {
				objects |= 1 << n
			}
			n++
			s.pos++
			c = s.next()
			if (isObject && c == '}') || (!isObject && c == ']') {
				s.pos++
				n--
			} else {
				if err := s.element(isObject); err != nil {
					return err
				}
				continue
			}
		} else if err := s.scalar(); err != nil {
			return err
		}
		// A value ended: expect ',' or the closing bytes of open levels.
		for {
			if n == 0 {
				return nil
			}
			isObject := objects&(1<<(n-1)) != 0
			c := s.next()
			if c == ',' {
				s.pos++
				if err := s.element(isObject); err != nil {
					return err
				}
				break
			}
			if (isObject && c == '}') || (!isObject && c == ']') {
				s.pos++
				n--
				continue
			}
			if isObject {
				return s.unexpected("',' or '}'")
			}
			return s.unexpected("',' or ']'")
		}
	}
}

// element moves to the start of the next value of a container: in an object,
// past the member name and colon.
func (s *scanner) element(inObject bool) *Error {
	if inObject {
		if s.next() != '"' {
			return s.unexpected("member name")
		}
		if _, err := s.quoted(); err != nil {
			return err
		}
		if s.next() != ':' {
			return s.unexpected("':'")
		}
		s.pos++
	}
	if s.next(); s.atEOF() {
		return s.unexpected("value")
	}
	return nil
}

// object walks the object at the current position (which must be '{'). For
// each member it calls fn with the member name, quotes included and escapes
// not decoded, and with s.pos at the first byte of the value; fn must consume
// the value (with depth+1 containers around it).
func (s *scanner) object(depth int, fn func(name []byte) *Error) *Error {
	if depth >= MaxDepth {
		return errTooDeep()
	}
	s.pos++
	c := s.next()
	if c == '}' {
		s.pos++
		return nil
	}
	for {
		if c != '"' {
			return s.unexpected("member name")
		}
		name, err := s.quoted()
		if err != nil {
			return err
		}
		if s.next() != ':' {
			return s.unexpected("':'")
		}
		s.pos++
		if s.next(); s.atEOF() {
			return s.unexpected("value")
		}
		if err := fn(name); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.pos++
			c = s.next()
		case '}':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or '}'")
		}
	}
}

// array walks the array at the current position (which must be '['). For
// each element it calls fn with its index and s.pos at the first byte of the
// element; fn must consume it (with depth+1 containers around it).
func (s *scanner) array(depth int, fn func(i int) *Error) *Error {
	if depth >= MaxDepth {
		return errTooDeep()
	}
	s.pos++
	if s.next() == ']' {
		s.pos++
		return nil
	}
	for i := 0; ; i++ {
		if s.atEOF() {
			return s.unexpected("value")
		}
		if err := fn(i); err != nil {
			return err
		}
		switch s.next() {
		case ',':
			s.pos++
			s.next()
		case ']':
			s.pos++
			return nil
		default:
			return s.unexpected("',' or ']'")
		}
	}
}

// wellFormed checks that body is one JSON value followed by whitespace only,
// with strings delimited as the scanner does everywhere else.
func wellFormed(body []byte) *Error {
	s := scanner{buf: body}
	if err := s.skip(0); err != nil {
		return err
	}
	return s.end()
}

// plainASCII reports whether the string content b needs no decoding: only
// printable ASCII, no backslash.
func plainASCII(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// validString reports whether the string content b (between the quotes) is
// valid JSON: no raw control characters, only defined escapes. Invalid UTF-8
// is accepted, as encoding/json does (it decodes it to U+FFFD).
func validString(b []byte) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c < 0x20 {
			return false
		}
		if c != '\\' {
			continue
		}
		i++
		if i >= len(b) {
			return false
		}
		switch b[i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		case 'u':
			if i+4 >= len(b) {
				return false
			}
			for _, h := range b[i+1 : i+5] {
				if unhex(h) > 15 {
					return false
				}
			}
			i += 4
		default:
			return false
		}
	}
	return true
}

// decodeString returns the value of the quoted JSON string q, checking it
// like encoding/json does. It allocates only when q has escapes or non-ASCII
// bytes, or when intern does not know the value.
func decodeString(q []byte, intern func([]byte) string) (string, *Error) {
	raw := q[1 : len(q)-1]
	if plainASCII(raw) {
		if intern != nil {
			return intern(raw), nil
		}
		return string(raw), nil
	}
	var v string
	if !validString(raw) || json.Unmarshal(q, &v) != nil {
		return "", errParse("invalid string %.40q", raw)
	}
	return v, nil
}

// matchName compares the quoted member name q with names. It returns the
// index of the name q equals, or -1; and, when q equals a name only when
// compared case-insensitively (as encoding/json would match it), the index of
// that name as variant, or -1. A name that is not a valid JSON string is a
// syntax error.
func matchName(q []byte, names ...string) (index, variant int, err *Error) {
	raw := q[1 : len(q)-1]
	if plainASCII(raw) {
		// An ASCII name can only fold to a name of the same length.
		variant = -1
		for i, n := range names {
			if len(n) != len(raw) {
				continue
			}
			if string(raw) == n {
				return i, -1, nil
			}
			if variant < 0 && asciiEqualFold(raw, n) {
				variant = i
			}
		}
		return -1, variant, nil
	}
	if !validString(raw) {
		return -1, -1, errParse("invalid member name %.40q", raw)
	}
	if len(raw) > maxEscapedName {
		return -1, -1, nil
	}
	var key string
	if json.Unmarshal(q, &key) != nil {
		return -1, -1, errParse("invalid member name %.40q", raw)
	}
	for i, n := range names {
		if key == n {
			return i, -1, nil
		}
	}
	for i, n := range names {
		if strings.EqualFold(key, n) {
			return -1, i, nil
		}
	}
	return -1, -1, nil
}

// asciiEqualFold reports whether the ASCII strings a and b, of equal length,
// are equal under ASCII case folding.
func asciiEqualFold(a []byte, b string) bool {
	for i, c := range a {
		d := b[i]
		if c == d {
			continue
		}
		c |= 0x20
		if c != d|0x20 || c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
