package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Payload statuses (reference/engine-api.md §6).
const (
	StatusValid    = "VALID"
	StatusInvalid  = "INVALID"
	StatusSyncing  = "SYNCING"
	StatusAccepted = "ACCEPTED"
)

// Check errors, one per way an answer can be wrong.
var (
	ErrNotJSON       = errors.New("answer is not a JSON-RPC response")
	ErrVersion       = errors.New(`answer's jsonrpc is not "2.0"`)
	ErrWrongID       = errors.New("answer's id is not the request's")
	ErrRPCError      = errors.New("answer is a JSON-RPC error")
	ErrNoResult      = errors.New("answer has no result")
	ErrBadStatus     = errors.New("answer's status is not a valid status for the method")
	ErrUnexpected    = errors.New("answer's status is not the expected one")
	ErrBadPayloadID  = errors.New("answer's payloadId is wrong for the request")
	ErrBadLatestHash = errors.New("answer's latestValidHash is not a 32-byte hash")
)

// Expect is what a correct answer looks like beyond the JSON-RPC rules.
type Expect struct {
	// Statuses are the accepted payload statuses; empty accepts every status the method may
	// return.
	Statuses []string
}

type rpcAnswer struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

type payloadStatus struct {
	Status          string  `json:"status"`
	LatestValidHash *string `json:"latestValidHash"`
}

type forkchoiceResult struct {
	PayloadStatus payloadStatus `json:"payloadStatus"`
	PayloadID     *string       `json:"payloadId"`
}

// Check verifies one answer to a request of kind k sent with id: a JSON-RPC 2.0 result
// (not an error) that echoes id byte for byte, with a payload status the method may return
// and that want accepts; for forkchoiceUpdated, a payloadId exactly when attributes were sent
// and the head is VALID. It returns the status.
func Check(k Kind, id, body []byte, want Expect) (string, error) {
	var a rpcAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	switch {
	case a.JSONRPC != "2.0":
		return "", ErrVersion
	case !bytes.Equal(a.ID, id):
		return "", fmt.Errorf("%w: sent %s, got %s", ErrWrongID, id, a.ID)
	case a.Error != nil:
		return "", fmt.Errorf("%w: %d %s", ErrRPCError, a.Error.Code, a.Error.Message)
	case len(a.Result) == 0 || string(a.Result) == "null":
		return "", ErrNoResult
	}
	var ps payloadStatus
	var fc forkchoiceResult
	if k == KindNewPayload {
		if err := json.Unmarshal(a.Result, &ps); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
	} else {
		if err := json.Unmarshal(a.Result, &fc); err != nil {
			return "", fmt.Errorf("%w: %v", ErrNotJSON, err)
		}
		ps = fc.PayloadStatus
	}
	if err := checkStatus(k, ps, want); err != nil {
		return ps.Status, err
	}
	if k != KindNewPayload {
		return ps.Status, checkPayloadID(k, ps.Status, fc.PayloadID)
	}
	return ps.Status, nil
}

// checkStatus checks the status against the method's allowed values and want.
func checkStatus(k Kind, ps payloadStatus, want Expect) error {
	allowed := []string{StatusValid, StatusInvalid, StatusSyncing, StatusAccepted}
	if k != KindNewPayload {
		allowed = allowed[:3] // forkchoiceUpdated never answers ACCEPTED
	}
	if !slices.Contains(allowed, ps.Status) {
		return fmt.Errorf("%w: %q", ErrBadStatus, ps.Status)
	}
	if len(want.Statuses) > 0 && !slices.Contains(want.Statuses, ps.Status) {
		return fmt.Errorf("%w: got %s, want %v", ErrUnexpected, ps.Status, want.Statuses)
	}
	if h := ps.LatestValidHash; h != nil && !isHash(*h) {
		return fmt.Errorf("%w: %q", ErrBadLatestHash, *h)
	}
	return nil
}

// checkPayloadID checks a forkchoiceUpdated answer's payloadId: 8 bytes of hex when a build
// was asked for on a VALID head, null otherwise.
func checkPayloadID(k Kind, status string, id *string) error {
	if k == KindForkchoiceAttrs && status == StatusValid {
		if id == nil || !isHexOfLen(*id, 16) {
			return fmt.Errorf("%w: want an 8-byte id for a build on a VALID head", ErrBadPayloadID)
		}
		return nil
	}
	if id != nil {
		return fmt.Errorf("%w: want null, got %q", ErrBadPayloadID, *id)
	}
	return nil
}

func isHash(s string) bool { return isHexOfLen(s, 64) }

func isHexOfLen(s string, n int) bool {
	if len(s) != n+2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		return false
	}
	for _, c := range []byte(s[2:]) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
