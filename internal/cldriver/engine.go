package cldriver

import (
	"encoding/json"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Fork selects the Engine API method versions the driver uses.
type Fork int

const (
	// Osaka uses forkchoiceUpdatedV3, getPayloadV5 and newPayloadV4.
	Osaka Fork = iota
	// Amsterdam uses forkchoiceUpdatedV4, getPayloadV6 and newPayloadV5 (slotNumber, blockAccessList).
	Amsterdam
)

func (f Fork) String() string {
	switch f {
	case Osaka:
		return "osaka"
	case Amsterdam:
		return "amsterdam"
	}
	return fmt.Sprintf("fork(%d)", int(f))
}

// Engine API method names per fork (reference/engine-api.md §2).
func (f Fork) forkchoiceMethod() string {
	if f == Amsterdam {
		return "engine_forkchoiceUpdatedV4"
	}
	return "engine_forkchoiceUpdatedV3"
}

func (f Fork) getPayloadMethod() string {
	if f == Amsterdam {
		return "engine_getPayloadV6"
	}
	return "engine_getPayloadV5"
}

func (f Fork) newPayloadMethod() string {
	if f == Amsterdam {
		return "engine_newPayloadV5"
	}
	return "engine_newPayloadV4"
}

// Payload statuses (reference/engine-api.md §6.1).
const (
	StatusValid    = "VALID"
	StatusInvalid  = "INVALID"
	StatusSyncing  = "SYNCING"
	StatusAccepted = "ACCEPTED"
)

// ForkchoiceState is ForkchoiceStateV1.
type ForkchoiceState struct {
	HeadBlockHash      common.Hash `json:"headBlockHash"`
	SafeBlockHash      common.Hash `json:"safeBlockHash"`
	FinalizedBlockHash common.Hash `json:"finalizedBlockHash"`
}

// PayloadAttributes is PayloadAttributesV3, or V4 when SlotNumber is set.
type PayloadAttributes struct {
	Timestamp             hexutil.Uint64    `json:"timestamp"`
	PrevRandao            common.Hash       `json:"prevRandao"`
	SuggestedFeeRecipient common.Address    `json:"suggestedFeeRecipient"`
	Withdrawals           []json.RawMessage `json:"withdrawals"` // always [], never null
	ParentBeaconBlockRoot common.Hash       `json:"parentBeaconBlockRoot"`
	SlotNumber            *hexutil.Uint64   `json:"slotNumber,omitempty"`
	TargetGasLimit        *hexutil.Uint64   `json:"targetGasLimit,omitempty"`
}

// PayloadStatus is PayloadStatusV1.
type PayloadStatus struct {
	Status          string       `json:"status"`
	LatestValidHash *common.Hash `json:"latestValidHash"`
	ValidationError *string      `json:"validationError"`
}

func (s PayloadStatus) String() string {
	out := s.Status
	if s.LatestValidHash != nil {
		out += " latestValid=" + s.LatestValidHash.TerminalString()
	}
	if s.ValidationError != nil && *s.ValidationError != "" {
		out += " error=" + *s.ValidationError
	}
	return out
}

// ForkchoiceResponse is the forkchoiceUpdated result. The payload id is kept raw.
type ForkchoiceResponse struct {
	PayloadStatus PayloadStatus   `json:"payloadStatus"`
	PayloadID     json.RawMessage `json:"payloadId"`
}

// payloadEnvelope is the getPayloadV5/V6 result; the payload itself is kept raw so that the
// newPayload request carries exactly what the builder produced.
type payloadEnvelope struct {
	ExecutionPayload  json.RawMessage `json:"executionPayload"`
	ExecutionRequests json.RawMessage `json:"executionRequests"`
}

// payloadSummary is the part of an ExecutionPayload the driver checks.
type payloadSummary struct {
	ParentHash   common.Hash     `json:"parentHash"`
	BlockHash    common.Hash     `json:"blockHash"`
	BlockNumber  hexutil.Uint64  `json:"blockNumber"`
	Timestamp    hexutil.Uint64  `json:"timestamp"`
	SlotNumber   *hexutil.Uint64 `json:"slotNumber"`
	Transactions []hexutil.Bytes `json:"transactions"`
}

// forkchoiceRequest builds engine_forkchoiceUpdatedV3/V4 with attrs (nil for a plain head update).
// V4 carries a third parameter, custodyColumns, which the driver leaves null.
func (f Fork) forkchoiceRequest(state ForkchoiceState, attrs *PayloadAttributes) (Request, error) {
	if f == Amsterdam {
		return NewRequest(f.forkchoiceMethod(), state, attrs, nil)
	}
	return NewRequest(f.forkchoiceMethod(), state, attrs)
}

// newPayloadRequest builds engine_newPayloadV4/V5 from a getPayload envelope: the execution
// payload bytes as received, no blob hashes, the beacon root used for the build, and the
// execution requests as received ([] when the builder sent none).
func (f Fork) newPayloadRequest(env payloadEnvelope, beaconRoot common.Hash) (Request, error) {
	requests := env.ExecutionRequests
	if len(requests) == 0 || string(requests) == "null" {
		requests = json.RawMessage("[]")
	}
	return NewRequest(f.newPayloadMethod(), env.ExecutionPayload, []common.Hash{}, beaconRoot, requests)
}
