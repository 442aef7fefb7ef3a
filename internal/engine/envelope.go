package engine

import (
	"encoding/json"
	"strconv"
)

const (
	envelopeStart  = `{"jsonrpc":"2.0","id":`
	syncingStatus  = `{"status":"SYNCING","latestValidHash":null,"validationError":null}`
	resultMember   = `,"result":`
	errorMember    = `,"error":`
	envelopeEndLen = len(resultMember) + len("}")
)

// appendID appends id, or null when id is empty. The id is written as is: ids
// read by Inspect are valid JSON.
func appendID(dst []byte, id json.RawMessage) []byte {
	if len(id) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, id...)
}

// ResultResponse returns a JSON-RPC 2.0 response with the given id (null when
// empty) and result (null when empty). Both are written as they are and must
// be valid JSON.
func ResultResponse(id json.RawMessage, result json.RawMessage) []byte {
	buf := make([]byte, 0, len(envelopeStart)+max(len(id), 4)+envelopeEndLen+max(len(result), 4))
	buf = append(buf, envelopeStart...)
	buf = appendID(buf, id)
	buf = append(buf, resultMember...)
	if len(result) == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, result...)
	}
	return append(buf, '}')
}

// ErrorResponse returns a JSON-RPC 2.0 error response with the given id (null
// when empty). A nil e is answered as CodeInternalError.
func ErrorResponse(id json.RawMessage, e *Error) []byte {
	if e == nil {
		e = &Error{Code: CodeInternalError, Message: "internal error"}
	}
	msg, err := json.Marshal(e.Message)
	if err != nil { // a string always marshals; keep the envelope valid anyway
		msg = []byte(`"internal error"`)
	}
	buf := make([]byte, 0, len(envelopeStart)+max(len(id), 4)+len(errorMember)+len(`{"code":,"message":}}`)+20+len(msg))
	buf = append(buf, envelopeStart...)
	buf = appendID(buf, id)
	buf = append(buf, errorMember...)
	buf = append(buf, `{"code":`...)
	buf = strconv.AppendInt(buf, int64(e.Code), 10)
	buf = append(buf, `,"message":`...)
	buf = append(buf, msg...)
	return append(buf, "}}"...)
}

// SyncingPayloadStatus returns the answer to a newPayload that the proxy
// gives itself: status SYNCING, which the specification lets an execution
// client return whenever it cannot validate yet.
func SyncingPayloadStatus(id json.RawMessage) []byte {
	return ResultResponse(id, json.RawMessage(syncingStatus))
}

// SyncingForkchoice returns the answer to a forkchoiceUpdated that the proxy
// gives itself: payload status SYNCING and no payload id.
func SyncingForkchoice(id json.RawMessage) []byte {
	return ResultResponse(id, json.RawMessage(`{"payloadStatus":`+syncingStatus+`,"payloadId":null}`))
}

// WithID returns a copy of the JSON-RPC message body with its "id" value
// replaced by id (null when empty), to answer a second request from a cached
// answer. Every other byte is kept: the result is copied, never re-encoded.
// When body has no id member, one is inserted first. The error is an *Error:
// CodeParseError when body is not JSON, CodeInvalidRequest when it is not an
// object, has a duplicated or case-variant id member, or when id is not a
// number, a string or null.
func WithID(body []byte, id json.RawMessage) ([]byte, error) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	s := scanner{buf: body}
	if s.next() != '{' {
		if err := wellFormed(body); err != nil {
			return nil, err
		}
		return nil, errRequest("message must be a JSON object")
	}
	open := s.pos
	idStart, idEnd := -1, -1
	err := s.object(0, func(name []byte) *Error {
		m, variant, err := matchName(name, "id")
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errRequest("member %s differs from \"id\" only in case", name)
		case m == 0 && idStart >= 0:
			return errRequest("duplicate member \"id\"")
		case m == 0:
			idStart = s.pos
		}
		if err := s.skip(1); err != nil {
			return err
		}
		if m == 0 {
			idEnd = s.pos
		}
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		if err.Code != CodeParseError {
			if perr := wellFormed(body); perr != nil {
				err = perr
			}
		}
		return nil, err
	}
	if idStart >= 0 {
		out := make([]byte, 0, len(body)-(idEnd-idStart)+len(id))
		out = append(out, body[:idStart]...)
		out = append(out, id...)
		return append(out, body[idEnd:]...), nil
	}
	// No id member: insert one after the opening brace.
	out := make([]byte, 0, len(body)+len(`"id":,`)+len(id))
	out = append(out, body[:open+1]...)
	out = append(out, `"id":`...)
	out = append(out, id...)
	rest := scanner{buf: body, pos: open + 1}
	if rest.next() != '}' {
		out = append(out, ',')
	}
	return append(out, body[open+1:]...), nil
}

// checkID checks that id is a valid JSON-RPC id: a number, a string or null,
// optionally surrounded by whitespace.
func checkID(id []byte) *Error {
	s := scanner{buf: id}
	if s.next(); s.atEOF() {
		return errRequest("id is empty")
	}
	if err := s.idValue(); err != nil {
		return errRequest("id must be a number, a string or null")
	}
	if s.end() != nil {
		return errRequest("id must be a number, a string or null")
	}
	return nil
}

// WithoutAttributes returns a forkchoiceUpdated body with params[1] (the
// payload attributes) replaced by null, for execution clients that must
// follow the head without building. All other bytes are kept as they were.
// When params[1] is already null or absent, body itself is returned. The
// error is an *Error: CodeParseError when body is not JSON,
// CodeInvalidRequest when it is not an object or has a duplicated or
// case-variant params member, CodeInvalidParams when params is missing or not
// an array.
func WithoutAttributes(body []byte) ([]byte, error) {
	s := scanner{buf: body}
	if s.next() != '{' {
		if err := wellFormed(body); err != nil {
			return nil, err
		}
		return nil, errRequest("request must be a JSON object")
	}
	seen := false
	attrStart, attrEnd := -1, -1
	err := s.object(0, func(name []byte) *Error {
		m, variant, err := matchName(name, "params")
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errRequest("member %s differs from \"params\" only in case", name)
		case m < 0:
			return s.skip(1)
		case seen:
			return errRequest("duplicate member \"params\"")
		}
		seen = true
		if s.buf[s.pos] != '[' {
			return errParams("params must be an array")
		}
		return s.array(1, func(i int) *Error {
			start := s.pos
			if err := s.skip(2); err != nil {
				return err
			}
			if i == 1 {
				attrStart, attrEnd = start, s.pos
			}
			return nil
		})
	})
	if err == nil {
		err = s.end()
	}
	if err == nil && !seen {
		err = errParams("missing params")
	}
	if err != nil {
		if err.Code != CodeParseError {
			if perr := wellFormed(body); perr != nil {
				err = perr
			}
		}
		return nil, err
	}
	if attrStart < 0 || string(body[attrStart:attrEnd]) == "null" {
		return body, nil
	}
	out := make([]byte, 0, len(body)-(attrEnd-attrStart)+len("null"))
	out = append(out, body[:attrStart]...)
	out = append(out, "null"...)
	return append(out, body[attrEnd:]...), nil
}
