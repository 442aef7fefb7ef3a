package engine

import "fmt"

// JSON-RPC 2.0 and Engine API error codes (execution-apis src/engine/common.md
// §Errors). Match on codes, never on messages.
const (
	// CodeParseError means the body is not valid JSON.
	CodeParseError = -32700
	// CodeInvalidRequest means the JSON is not a valid request object.
	CodeInvalidRequest = -32600
	// CodeMethodNotFound means the method does not exist or is not available.
	CodeMethodNotFound = -32601
	// CodeInvalidParams means the params do not have the shape the method needs.
	CodeInvalidParams = -32602
	// CodeInternalError is an internal JSON-RPC error.
	CodeInternalError = -32603
	// CodeServerError is the generic server error.
	CodeServerError = -32000
	// CodeUnknownPayload means getPayload named a payload id the client does not know.
	CodeUnknownPayload = -38001
	// CodeInvalidForkchoiceState means the forkchoice state is inconsistent.
	CodeInvalidForkchoiceState = -38002
	// CodeInvalidPayloadAttributes means the payload attributes are invalid.
	CodeInvalidPayloadAttributes = -38003
	// CodeTooLargeRequest means the request asks for too many items.
	CodeTooLargeRequest = -38004
	// CodeUnsupportedFork means the method version does not match the fork of the timestamp.
	CodeUnsupportedFork = -38005
	// CodeTooDeepReorg means the reorg is deeper than the client supports.
	CodeTooDeepReorg = -38006
)

// Error is a JSON-RPC error object. Its JSON form is {"code":…,"message":…}.
type Error struct {
	// Code is the JSON-RPC error code, one of the Code constants or any other
	// code an execution client sent.
	Code int `json:"code"`
	// Message is the human-readable message.
	Message string `json:"message"`
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the code and the message.
func (e *Error) Error() string {
	return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message)
}

// Errors built while scanning. They are constructed on the error path only.

func errParse(format string, args ...any) *Error {
	return Errorf(CodeParseError, format, args...)
}

func errRequest(format string, args ...any) *Error {
	return Errorf(CodeInvalidRequest, format, args...)
}

func errParams(format string, args ...any) *Error {
	return Errorf(CodeInvalidParams, format, args...)
}

func errResponse(format string, args ...any) *Error {
	return Errorf(CodeInternalError, "invalid response: "+format, args...)
}
