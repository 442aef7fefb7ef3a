package engine

import (
	"encoding/json"
	"strconv"
)

// Status is a payload status (PayloadStatusV1.status).
type Status string

// Payload statuses (execution-apis src/engine/paris.md, PayloadStatusV1).
const (
	// StatusValid means the payload, or for forkchoiceUpdated the head, is
	// fully validated.
	StatusValid Status = "VALID"
	// StatusInvalid means the payload failed validation.
	StatusInvalid Status = "INVALID"
	// StatusSyncing means the client lacks the data to validate the payload.
	StatusSyncing Status = "SYNCING"
	// StatusAccepted means a newPayload on a side branch was checked but not
	// fully validated.
	StatusAccepted Status = "ACCEPTED"
	// StatusInvalidBlockHash means the block hash does not match the header
	// (newPayloadV1 only; later versions answer INVALID).
	StatusInvalidBlockHash Status = "INVALID_BLOCK_HASH"
)

// String returns the status as it appears on the wire.
func (s Status) String() string { return string(s) }

// Final reports whether the status can no longer change for the same block:
// VALID, INVALID and INVALID_BLOCK_HASH are final (paris.md §Payload
// validation); SYNCING and ACCEPTED may later become anything.
func (s Status) Final() bool {
	return s == StatusValid || s == StatusInvalid || s == StatusInvalidBlockHash
}

// Known reports whether s is one of the five statuses of the specification.
func (s Status) Known() bool {
	return s.Final() || s == StatusSyncing || s == StatusAccepted
}

func internStatus(b []byte) string {
	switch string(b) {
	case "VALID":
		return string(StatusValid)
	case "INVALID":
		return string(StatusInvalid)
	case "SYNCING":
		return string(StatusSyncing)
	case "ACCEPTED":
		return string(StatusAccepted)
	case "INVALID_BLOCK_HASH":
		return string(StatusInvalidBlockHash)
	}
	return string(b)
}

// Response is what [InspectResponse] reads from an execution client's
// JSON-RPC response. Byte slices alias the inspected body.
type Response struct {
	// ID is the raw "id" value, nil when absent.
	ID json.RawMessage
	// Err is the JSON-RPC error object, when the client returned one.
	Err *Error
	// Result is the raw result value (a subslice of the body), nil when the
	// response has no result.
	Result json.RawMessage
	// Status is result.status for ClassNewPayload and
	// result.payloadStatus.status for ClassForkchoice; "" otherwise or when
	// the response is an error. Unknown values are kept as sent.
	Status Status
	// LatestValidHash is the payload status's latestValidHash, nil when
	// null, absent or not read.
	LatestValidHash *Hash
	// PayloadID is result.payloadId of a ClassForkchoice response ("" when
	// null).
	PayloadID string
}

// InspectResponse reads an execution client's answer to a request of the
// given class. It finds the id, the result span and the error object; for
// ClassNewPayload and ClassForkchoice it also reads the payload status and
// payload id. For the other classes the result is only delimited, never
// decoded, so a 50 MB getPayload or getBlobs answer costs one pass of
// bytes.IndexByte over its strings.
//
// The error is always an *Error: CodeParseError when the body is not JSON,
// CodeInternalError when it is JSON but not a valid response (no result and
// no error, both, a duplicated member, an id of the wrong type, a newPayload
// or forkchoiceUpdated result without a status).
func InspectResponse(class Class, body []byte) (Response, error) {
	r, err := inspectResponse(class, body)
	if err != nil {
		if err.Code != CodeParseError {
			if perr := wellFormed(body); perr != nil {
				err = perr
			}
		}
		return Response{}, err
	}
	return r, nil
}

func inspectResponse(class Class, body []byte) (Response, *Error) {
	var r Response
	s := scanner{buf: body}
	if s.next() != '{' {
		if s.atEOF() {
			return r, errParse("empty body")
		}
		return r, errResponse("not a JSON object")
	}
	const (
		memberID = iota
		memberResult
		memberError
	)
	names := [...]string{"id", "result", "error"}
	var (
		seen              memberSet
		resultAt, errorAt = -1, -1
	)
	err := s.object(0, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errResponse("member %s differs from %q only in case", name, names[variant])
		case m < 0:
			return s.skip(1)
		case !seen.add(m):
			return errResponse("duplicate member %q", names[m])
		}
		start := s.pos
		switch m {
		case memberID:
			if err := s.idValue(); err != nil {
				if err.Code == CodeParseError {
					return err
				}
				return errResponse("id must be a number, a string or null")
			}
			r.ID = body[start:s.pos]
			return nil
		case memberResult:
			resultAt = start
		case memberError:
			errorAt = start
		}
		if err := s.skip(1); err != nil {
			return err
		}
		if m == memberResult {
			r.Result = body[start:s.pos]
		}
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return Response{}, err
	}
	if errorAt >= 0 && body[errorAt] != 'n' {
		e := scanner{buf: body, pos: errorAt}
		if r.Err, err = e.errorObject(); err != nil {
			return Response{}, err
		}
		if resultAt >= 0 && body[resultAt] != 'n' {
			return Response{}, errResponse("both result and error")
		}
		return r, nil
	}
	if resultAt < 0 {
		return Response{}, errResponse("neither result nor error")
	}
	res := scanner{buf: body, pos: resultAt}
	switch class {
	case ClassNewPayload:
		err = res.payloadStatus(&r, "result", 1)
	case ClassForkchoice:
		err = res.forkchoiceResult(&r)
	}
	if err != nil {
		return Response{}, err
	}
	return r, nil
}

// errorObject reads a JSON-RPC error object {code, message, data}.
func (s *scanner) errorObject() (*Error, *Error) {
	if s.buf[s.pos] != '{' {
		return nil, errResponse("error must be an object")
	}
	names := [...]string{"code", "message"}
	var (
		seen memberSet
		e    Error
	)
	err := s.object(1, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errResponse("error member %s differs from %q only in case", name, names[variant])
		case m < 0:
			return s.skip(2)
		case !seen.add(m):
			return errResponse("duplicate member error.%s", names[m])
		}
		start := s.pos
		if m == 0 {
			if err := s.skip(2); err != nil {
				return err
			}
			code, perr := strconv.Atoi(string(s.buf[start:s.pos]))
			if perr != nil {
				return errResponse("error.code must be an integer")
			}
			e.Code = code
			return nil
		}
		if s.buf[s.pos] != '"' {
			return errResponse("error.message must be a string")
		}
		q, err := s.quoted()
		if err != nil {
			return err
		}
		e.Message, err = decodeString(q, nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	if seen&1 == 0 {
		return nil, errResponse("error.code is missing")
	}
	return &e, nil
}

// payloadStatus reads a PayloadStatusV1 object with depth containers around
// it. where names it in errors.
func (s *scanner) payloadStatus(r *Response, where string, depth int) *Error {
	if s.buf[s.pos] != '{' {
		return errResponse("%s must be a payload status object", where)
	}
	names := [...]string{"status", "latestValidHash"}
	var seen memberSet
	err := s.object(depth, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errResponse("%s member %s differs from %q only in case", where, name, names[variant])
		case m < 0:
			return s.skip(depth + 1)
		case !seen.add(m):
			return errResponse("duplicate member %s.%s", where, names[m])
		}
		if m == 1 {
			if s.buf[s.pos] == 'n' {
				return s.literal("null")
			}
			var h Hash
			if err := s.hashValue(&h, where, names[m]); err != nil {
				if err.Code == CodeParseError {
					return err
				}
				return errResponse("%s.latestValidHash must be null or 0x followed by 64 hex digits", where)
			}
			r.LatestValidHash = &h
			return nil
		}
		if s.buf[s.pos] != '"' {
			return errResponse("%s.status must be a string", where)
		}
		q, err := s.quoted()
		if err != nil {
			return err
		}
		v, err := decodeString(q, internStatus)
		r.Status = Status(v)
		return err
	})
	if err != nil {
		return err
	}
	if seen&1 == 0 {
		return errResponse("%s.status is missing", where)
	}
	return nil
}

// forkchoiceResult reads {payloadStatus, payloadId}.
func (s *scanner) forkchoiceResult(r *Response) *Error {
	if s.buf[s.pos] != '{' {
		return errResponse("result must be an object")
	}
	names := [...]string{"payloadStatus", "payloadId"}
	var seen memberSet
	err := s.object(1, func(name []byte) *Error {
		m, variant, err := matchName(name, names[:]...)
		switch {
		case err != nil:
			return err
		case variant >= 0:
			return errResponse("result member %s differs from %q only in case", name, names[variant])
		case m < 0:
			return s.skip(2)
		case !seen.add(m):
			return errResponse("duplicate member result.%s", names[m])
		}
		if m == 0 {
			return s.payloadStatus(r, "result.payloadStatus", 2)
		}
		switch s.buf[s.pos] {
		case 'n':
			return s.literal("null")
		case '"':
			q, err := s.quoted()
			if err != nil {
				return err
			}
			r.PayloadID, err = decodeString(q, nil)
			return err
		}
		return errResponse("result.payloadId must be a string or null")
	})
	if err != nil {
		return err
	}
	if seen&1 == 0 {
		return errResponse("result.payloadStatus is missing")
	}
	return nil
}
