package engine

import "encoding/json"

// Block is what routing needs from a newPayload's execution payload
// (params[0]).
type Block struct {
	// Hash is params[0].blockHash.
	Hash Hash
	// Parent is params[0].parentHash.
	Parent Hash
	// Number is params[0].blockNumber.
	Number uint64
	// Timestamp is params[0].timestamp, in Unix seconds.
	Timestamp uint64
	// Slot is params[0].slotNumber (ExecutionPayloadV4, newPayloadV5 and
	// later), valid when HasSlot is set.
	Slot uint64
	// HasSlot reports whether the payload carries slotNumber.
	HasSlot bool
}

// ForkchoiceState is a forkchoiceUpdated's params[0] (ForkchoiceStateV1).
type ForkchoiceState struct {
	// Head is headBlockHash.
	Head Hash
	// Safe is safeBlockHash; zero before a safe block is known.
	Safe Hash
	// Finalized is finalizedBlockHash; zero before a finalized block is known.
	Finalized Hash
}

// Request is what [Inspect] reads from a JSON-RPC request. Byte slices alias
// the inspected body.
type Request struct {
	// Method is the method name.
	Method string
	// Version is the trailing V<n> of the method name, 0 if there is none.
	Version int
	// ID is the raw "id" value exactly as sent (a number, a string or null),
	// or nil when the request has no id.
	ID json.RawMessage
	// Class is the method's class (see [Classify]).
	Class Class
	// Block is set for ClassNewPayload.
	Block Block
	// Forkchoice is set for ClassForkchoice.
	Forkchoice ForkchoiceState
	// HasAttributes reports, for ClassForkchoice, whether params[1] is a
	// payload-attributes object (false when it is null or missing).
	HasAttributes bool
	// AttributesTimestamp is params[1].timestamp when HasAttributes is set:
	// the time of the slot the build is for.
	AttributesTimestamp uint64
	// AttributesSlot is params[1].slotNumber (PayloadAttributesV4 and later),
	// valid when HasAttributesSlot is set.
	AttributesSlot uint64
	// HasAttributesSlot reports whether the attributes carry slotNumber.
	HasAttributesSlot bool
	// PayloadID is, for ClassGetPayload, params[0] as sent ("0x…").
	PayloadID string
	// Params is the raw params value exactly as sent (a sub-slice of the body), nil when
	// the request has none: two copies of a request with equal Params and Method differ at
	// most in their id and the whitespace between members.
	Params json.RawMessage
}

// Inspect scans a JSON-RPC request body once and returns the method, the raw
// id, the class and the routing fields of the class. It does not decode or
// copy the rest: transactions and other large values are skipped.
//
// The error is always an *Error carrying the code to answer with:
// CodeParseError when the body is not JSON; CodeInvalidRequest when it is a
// batch, not an object, nested deeper than [MaxDepth], has a duplicated or
// case-variant member ("Method"), a missing or non-string method, a jsonrpc
// other than "2.0", or an id that is not a number, a string or null; and
// CodeInvalidParams when a newPayload, forkchoiceUpdated or getPayload lacks
// the params routing needs or has them in the wrong shape. With
// CodeInvalidRequest and CodeInvalidParams the returned Request still holds
// the Method, Version, Class and ID read so far, so the answer can be
// addressed to the request; its routing fields are zero.
func Inspect(body []byte) (Request, error) {
	r, err := inspect(body)
	if err != nil {
		return r, err
	}
	return r, nil
}

const (
	memberJSONRPC = iota
	memberMethod
	memberID
	memberParams
)

func inspect(body []byte) (Request, *Error) {
	var r Request
	s := scanner{buf: body}
	switch c := s.next(); {
	case s.atEOF():
		return r, errParse("empty body")
	case c != '{':
		if err := wellFormed(body); err != nil {
			return r, err
		}
		if c == '[' {
			return r, errRequest("batch requests are not supported")
		}
		return r, errRequest("request must be a JSON object")
	}

	var (
		seen     uint8
		semErr   *Error // the first error that is not a syntax error
		paramsAt = -1   // offset of the params value
		walked   bool   // params were walked for the method's class
	)
	fail := func(e *Error) {
		if semErr == nil {
			semErr = e
		}
	}
	names := [...]string{"jsonrpc", "method", "id", "params"}
	err := s.object(0, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			fail(errRequest("member %s differs from %q only in case", name, names[variant]))
			return s.skip(1)
		case m < 0:
			return s.skip(1)
		case seen&(1<<m) != 0:
			fail(errRequest("duplicate member %q", names[m]))
			return s.skip(1)
		}
		seen |= 1 << m
		switch m {
		case memberJSONRPC:
			if e := s.jsonrpcValue(); e != nil {
				if e.Code == CodeParseError {
					return e
				}
				fail(e)
			}
			return nil
		case memberMethod:
			if s.buf[s.pos] != '"' {
				fail(errRequest("method must be a string"))
				return s.skip(1)
			}
			q, err := s.quoted()
			if err != nil {
				return err
			}
			method, err := decodeString(q, internMethod)
			if err != nil {
				return err
			}
			r.Method, r.Version, r.Class = method, MethodVersion(method), Classify(method)
			return nil
		case memberID:
			start := s.pos
			if e := s.idValue(); e != nil {
				if e.Code == CodeParseError {
					return e
				}
				fail(e)
				return s.skip(1)
			}
			r.ID = body[start:s.pos]
			return nil
		default: // memberParams
			paramsAt = s.pos
			defer func() { r.Params = body[paramsAt:s.pos] }()
			if seen&(1<<memberMethod) == 0 || semErr != nil {
				return s.skip(1) // walked below, once the method is known
			}
			walked = true
			if e := s.walkParams(&r); e != nil {
				if e.Code == CodeParseError {
					return e
				}
				fail(e)
				s.pos = paramsAt
				return s.skip(1)
			}
			return nil
		}
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return Request{}, err
	}
	if semErr == nil && seen&(1<<memberMethod) == 0 {
		semErr = errRequest("missing method")
	}
	if semErr == nil && !walked && r.Class.hasParams() {
		if paramsAt < 0 {
			semErr = errParams("missing params")
		} else {
			p := scanner{buf: body, pos: paramsAt}
			semErr = p.walkParams(&r)
		}
	}
	if semErr != nil {
		return Request{Method: r.Method, Version: r.Version, ID: r.ID, Class: r.Class}, semErr
	}
	return r, nil
}

// hasParams reports whether Inspect reads routing fields from the params of
// the class.
func (c Class) hasParams() bool {
	return c == ClassNewPayload || c == ClassForkchoice || c == ClassGetPayload
}

// jsonrpcValue consumes the "jsonrpc" value, which must be the string "2.0".
func (s *scanner) jsonrpcValue() *Error {
	if s.buf[s.pos] != '"' {
		if err := s.skip(1); err != nil {
			return err
		}
		return errRequest(`jsonrpc must be "2.0"`)
	}
	q, err := s.quoted()
	if err != nil {
		return err
	}
	if string(q) == `"2.0"` {
		return nil
	}
	if v, err := decodeString(q, nil); err != nil {
		return err
	} else if v != "2.0" {
		return errRequest(`jsonrpc must be "2.0"`)
	}
	return nil
}

// idValue consumes an id: a number, a string or null. On any other value it
// returns a CodeInvalidRequest error without consuming it.
func (s *scanner) idValue() *Error {
	switch c := s.buf[s.pos]; {
	case c == '"':
		q, err := s.quoted()
		if err != nil {
			return err
		}
		if !validString(q[1 : len(q)-1]) {
			return errParse("invalid string in id")
		}
		return nil
	case c == 'n':
		return s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	}
	return errRequest("id must be a number, a string or null")
}

// walkParams reads the routing fields of r.Class from the params value at the
// current position, consuming it. Shape errors are CodeInvalidParams; the
// caller then skips the params value again from its start.
func (s *scanner) walkParams(r *Request) *Error {
	switch r.Class {
	case ClassNewPayload, ClassForkchoice, ClassGetPayload:
	default:
		return s.skip(1)
	}
	if s.buf[s.pos] != '[' {
		return errParams("params must be an array")
	}
	have := 0
	err := s.array(1, func(i int) *Error {
		have = i + 1
		switch {
		case i == 0 && r.Class == ClassNewPayload:
			return s.executionPayload(&r.Block)
		case i == 0 && r.Class == ClassForkchoice:
			return s.forkchoiceState(&r.Forkchoice)
		case i == 1 && r.Class == ClassForkchoice:
			return s.payloadAttributes(r)
		case i == 0 && r.Class == ClassGetPayload:
			if s.buf[s.pos] != '"' {
				return errParams("params[0] (payload id) must be a string")
			}
			q, err := s.quoted()
			if err != nil {
				return err
			}
			if !isHexData(q[1 : len(q)-1]) {
				return errParams("params[0] (payload id) must be 0x followed by hex digits")
			}
			r.PayloadID = string(q[1 : len(q)-1])
			return nil
		}
		return s.skip(2)
	})
	if err != nil {
		return err
	}
	if have == 0 {
		switch r.Class {
		case ClassNewPayload:
			return errParams("params[0] (execution payload) is missing")
		case ClassForkchoice:
			return errParams("params[0] (forkchoice state) is missing")
		default:
			return errParams("params[0] (payload id) is missing")
		}
	}
	return nil
}

// Bits of the members an object walk has seen, by index in its name list.
type memberSet uint8

func (m *memberSet) add(i int) bool {
	if *m&(1<<i) != 0 {
		return false
	}
	*m |= 1 << i
	return true
}

// executionPayload reads params[0] of a newPayload.
func (s *scanner) executionPayload(b *Block) *Error {
	if s.buf[s.pos] != '{' {
		return errParams("params[0] (execution payload) must be an object")
	}
	names := [...]string{"blockHash", "parentHash", "blockNumber", "timestamp", "slotNumber"}
	var seen memberSet
	err := s.object(2, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errParams("params[0] member %s differs from %q only in case", name, names[variant])
		case m < 0:
			return s.skip(3)
		case !seen.add(m):
			return errParams("params[0].%s appears more than once", names[m])
		}
		switch m {
		case 0:
			return s.hashValue(&b.Hash, "params[0]", names[m])
		case 1:
			return s.hashValue(&b.Parent, "params[0]", names[m])
		case 2:
			return s.quantityValue(&b.Number, "params[0]", names[m])
		case 3:
			return s.quantityValue(&b.Timestamp, "params[0]", names[m])
		default:
			b.HasSlot = true
			return s.quantityValue(&b.Slot, "params[0]", names[m])
		}
	})
	if err != nil {
		return err
	}
	for i, n := range names[:4] {
		if seen&(1<<i) == 0 {
			return errParams("params[0].%s is missing", n)
		}
	}
	return nil
}

// forkchoiceState reads params[0] of a forkchoiceUpdated.
func (s *scanner) forkchoiceState(f *ForkchoiceState) *Error {
	if s.buf[s.pos] != '{' {
		return errParams("params[0] (forkchoice state) must be an object")
	}
	names := [...]string{"headBlockHash", "safeBlockHash", "finalizedBlockHash"}
	var seen memberSet
	err := s.object(2, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errParams("params[0] member %s differs from %q only in case", name, names[variant])
		case m < 0:
			return s.skip(3)
		case !seen.add(m):
			return errParams("params[0].%s appears more than once", names[m])
		}
		return s.hashValue([...]*Hash{&f.Head, &f.Safe, &f.Finalized}[m], "params[0]", names[m])
	})
	if err != nil {
		return err
	}
	for i, n := range names {
		if seen&(1<<i) == 0 {
			return errParams("params[0].%s is missing", n)
		}
	}
	return nil
}

// payloadAttributes reads params[1] of a forkchoiceUpdated: null or an
// object with a timestamp.
func (s *scanner) payloadAttributes(r *Request) *Error {
	switch s.buf[s.pos] {
	case 'n':
		return s.literal("null")
	case '{':
	default:
		return errParams("params[1] (payload attributes) must be an object or null")
	}
	names := [...]string{"timestamp", "slotNumber"}
	var seen memberSet
	err := s.object(2, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errParams("params[1] member %s differs from %q only in case", name, names[variant])
		case m < 0:
			return s.skip(3)
		case !seen.add(m):
			return errParams("params[1].%s appears more than once", names[m])
		}
		if m == 0 {
			return s.quantityValue(&r.AttributesTimestamp, "params[1]", names[m])
		}
		r.HasAttributesSlot = true
		return s.quantityValue(&r.AttributesSlot, "params[1]", names[m])
	})
	if err != nil {
		return err
	}
	if seen&1 == 0 {
		return errParams("params[1].timestamp is missing")
	}
	r.HasAttributes = true
	return nil
}

// hashValue consumes a DATA32 string into h. where and field name it in
// errors.
func (s *scanner) hashValue(h *Hash, where, field string) *Error {
	if s.buf[s.pos] != '"' {
		return errParams("%s.%s must be a string", where, field)
	}
	q, err := s.quoted()
	if err != nil {
		return err
	}
	v, ok := parseHash(q[1 : len(q)-1])
	if !ok {
		return errParams("%s.%s must be 0x followed by 64 hex digits", where, field)
	}
	*h = v
	return nil
}

// quantityValue consumes a QUANTITY string into v. where and field name it in
// errors.
func (s *scanner) quantityValue(v *uint64, where, field string) *Error {
	if s.buf[s.pos] != '"' {
		return errParams("%s.%s must be a string", where, field)
	}
	q, err := s.quoted()
	if err != nil {
		return err
	}
	n, ok := parseQuantity(q[1 : len(q)-1])
	if !ok {
		return errParams("%s.%s must be 0x followed by at most 16 hex digits without leading zeros", where, field)
	}
	*v = n
	return nil
}
