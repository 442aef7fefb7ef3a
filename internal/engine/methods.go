package engine

import (
	"strconv"
	"strings"
	"time"
)

// Class says how the proxy treats a method. It is derived from the method name
// alone (see [Classify]).
type Class uint8

const (
	// ClassNonEngine is every method outside the engine_ namespace (the eth_*
	// subset served on the engine port, and anything else).
	ClassNonEngine Class = iota
	// ClassForkchoice is engine_forkchoiceUpdated* (also geth's
	// …WithWitness* variants): it writes the head and may start a build, so
	// it reaches each execution client from one beacon node only.
	ClassForkchoice
	// ClassNewPayload is engine_newPayload* (also geth's …WithWitness*
	// variants): a block insert, idempotent and safe from every beacon node.
	ClassNewPayload
	// ClassGetPayload is engine_getPayloadV<n> (not getPayloadBodies*): a
	// build read that must reach the execution client that issued the
	// payload id.
	ClassGetPayload
	// ClassRead is every other engine_ method, including unknown ones:
	// payload bodies, blobs, capabilities, client version, transition
	// configuration, inclusion lists and geth's stateless and hasBlobs calls.
	ClassRead
)

// String returns a short lowercase name of the class.
func (c Class) String() string {
	switch c {
	case ClassNonEngine:
		return "non-engine"
	case ClassForkchoice:
		return "forkchoice"
	case ClassNewPayload:
		return "new-payload"
	case ClassGetPayload:
		return "get-payload"
	case ClassRead:
		return "read"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Method names of the Engine API specification, by the fork that introduced
// them (execution-apis src/engine/{paris,shanghai,cancun,prague,osaka,
// amsterdam,bogota,common,identification}.md).
const (
	// EnginePrefix is the namespace prefix shared by every Engine API method.
	EnginePrefix = "engine_"

	// MethodNewPayloadV1 inserts an ExecutionPayloadV1 (Paris).
	MethodNewPayloadV1 = "engine_newPayloadV1"
	// MethodNewPayloadV2 inserts an ExecutionPayloadV1 or V2 (Shanghai).
	MethodNewPayloadV2 = "engine_newPayloadV2"
	// MethodNewPayloadV3 inserts an ExecutionPayloadV3 with blob hashes and the parent beacon root (Cancun).
	MethodNewPayloadV3 = "engine_newPayloadV3"
	// MethodNewPayloadV4 adds execution requests (Prague, also used in Osaka).
	MethodNewPayloadV4 = "engine_newPayloadV4"
	// MethodNewPayloadV5 inserts an ExecutionPayloadV4 with block access list and slot number (Amsterdam).
	MethodNewPayloadV5 = "engine_newPayloadV5"
	// MethodNewPayloadV6 adds inclusion-list transactions (Bogota, draft).
	MethodNewPayloadV6 = "engine_newPayloadV6"

	// MethodForkchoiceUpdatedV1 updates the fork choice, PayloadAttributesV1 (Paris).
	MethodForkchoiceUpdatedV1 = "engine_forkchoiceUpdatedV1"
	// MethodForkchoiceUpdatedV2 updates the fork choice, PayloadAttributesV1 or V2 (Shanghai).
	MethodForkchoiceUpdatedV2 = "engine_forkchoiceUpdatedV2"
	// MethodForkchoiceUpdatedV3 updates the fork choice, PayloadAttributesV3 (Cancun to Osaka).
	MethodForkchoiceUpdatedV3 = "engine_forkchoiceUpdatedV3"
	// MethodForkchoiceUpdatedV4 updates the fork choice, PayloadAttributesV4 and custody columns (Amsterdam).
	MethodForkchoiceUpdatedV4 = "engine_forkchoiceUpdatedV4"
	// MethodForkchoiceUpdatedV5 updates the fork choice, PayloadAttributesV5 (Bogota, draft).
	MethodForkchoiceUpdatedV5 = "engine_forkchoiceUpdatedV5"

	// MethodGetPayloadV1 returns a built ExecutionPayloadV1 (Paris).
	MethodGetPayloadV1 = "engine_getPayloadV1"
	// MethodGetPayloadV2 returns a built payload and its value (Shanghai).
	MethodGetPayloadV2 = "engine_getPayloadV2"
	// MethodGetPayloadV3 adds the blobs bundle (Cancun).
	MethodGetPayloadV3 = "engine_getPayloadV3"
	// MethodGetPayloadV4 adds execution requests (Prague).
	MethodGetPayloadV4 = "engine_getPayloadV4"
	// MethodGetPayloadV5 returns a BlobsBundleV2 with cell proofs (Osaka).
	MethodGetPayloadV5 = "engine_getPayloadV5"
	// MethodGetPayloadV6 returns an ExecutionPayloadV4 (Amsterdam).
	MethodGetPayloadV6 = "engine_getPayloadV6"

	// MethodGetPayloadBodiesByHashV1 returns payload bodies by block hash (Shanghai).
	MethodGetPayloadBodiesByHashV1 = "engine_getPayloadBodiesByHashV1"
	// MethodGetPayloadBodiesByRangeV1 returns payload bodies by block number range (Shanghai).
	MethodGetPayloadBodiesByRangeV1 = "engine_getPayloadBodiesByRangeV1"
	// MethodGetPayloadBodiesByHashV2 adds block access lists (Amsterdam).
	MethodGetPayloadBodiesByHashV2 = "engine_getPayloadBodiesByHashV2"
	// MethodGetPayloadBodiesByRangeV2 adds block access lists (Amsterdam).
	MethodGetPayloadBodiesByRangeV2 = "engine_getPayloadBodiesByRangeV2"

	// MethodGetBlobsV1 returns blobs and proofs from the blob pool (Cancun).
	MethodGetBlobsV1 = "engine_getBlobsV1"
	// MethodGetBlobsV2 returns blobs with cell proofs, all or nothing (Osaka).
	MethodGetBlobsV2 = "engine_getBlobsV2"
	// MethodGetBlobsV3 returns blobs with cell proofs, partial answers allowed (Osaka).
	MethodGetBlobsV3 = "engine_getBlobsV3"
	// MethodGetBlobsV4 returns blob cells selected by index (Amsterdam).
	MethodGetBlobsV4 = "engine_getBlobsV4"

	// MethodGetInclusionListV1 returns an inclusion list (Bogota, draft).
	MethodGetInclusionListV1 = "engine_getInclusionListV1"
	// MethodExchangeTransitionConfigurationV1 is the deprecated Paris transition check.
	MethodExchangeTransitionConfigurationV1 = "engine_exchangeTransitionConfigurationV1"
	// MethodExchangeCapabilities exchanges the lists of supported methods (fork-independent).
	MethodExchangeCapabilities = "engine_exchangeCapabilities"
	// MethodGetClientVersionV1 exchanges client identities (fork-independent).
	MethodGetClientVersionV1 = "engine_getClientVersionV1"
)

// KnownMethods returns the methods of the Engine API specification, oldest
// fork first. The proxy routes other engine_ methods too (by [Classify]); this
// list is what it can vouch for, e.g. when filtering exchangeCapabilities.
// The caller owns the returned slice.
func KnownMethods() []string {
	return []string{
		MethodNewPayloadV1, MethodForkchoiceUpdatedV1, MethodGetPayloadV1, MethodExchangeTransitionConfigurationV1,
		MethodNewPayloadV2, MethodForkchoiceUpdatedV2, MethodGetPayloadV2, MethodGetPayloadBodiesByHashV1, MethodGetPayloadBodiesByRangeV1,
		MethodNewPayloadV3, MethodForkchoiceUpdatedV3, MethodGetPayloadV3, MethodGetBlobsV1,
		MethodNewPayloadV4, MethodGetPayloadV4,
		MethodGetPayloadV5, MethodGetBlobsV2, MethodGetBlobsV3,
		MethodNewPayloadV5, MethodForkchoiceUpdatedV4, MethodGetPayloadV6, MethodGetPayloadBodiesByHashV2, MethodGetPayloadBodiesByRangeV2, MethodGetBlobsV4,
		MethodNewPayloadV6, MethodForkchoiceUpdatedV5, MethodGetInclusionListV1,
		MethodExchangeCapabilities, MethodGetClientVersionV1,
	}
}

// internMethod returns the method name in b as a string, without allocating
// when it is one of [KnownMethods].
func internMethod(b []byte) string {
	switch string(b) {
	case MethodNewPayloadV1:
		return MethodNewPayloadV1
	case MethodNewPayloadV2:
		return MethodNewPayloadV2
	case MethodNewPayloadV3:
		return MethodNewPayloadV3
	case MethodNewPayloadV4:
		return MethodNewPayloadV4
	case MethodNewPayloadV5:
		return MethodNewPayloadV5
	case MethodNewPayloadV6:
		return MethodNewPayloadV6
	case MethodForkchoiceUpdatedV1:
		return MethodForkchoiceUpdatedV1
	case MethodForkchoiceUpdatedV2:
		return MethodForkchoiceUpdatedV2
	case MethodForkchoiceUpdatedV3:
		return MethodForkchoiceUpdatedV3
	case MethodForkchoiceUpdatedV4:
		return MethodForkchoiceUpdatedV4
	case MethodForkchoiceUpdatedV5:
		return MethodForkchoiceUpdatedV5
	case MethodGetPayloadV1:
		return MethodGetPayloadV1
	case MethodGetPayloadV2:
		return MethodGetPayloadV2
	case MethodGetPayloadV3:
		return MethodGetPayloadV3
	case MethodGetPayloadV4:
		return MethodGetPayloadV4
	case MethodGetPayloadV5:
		return MethodGetPayloadV5
	case MethodGetPayloadV6:
		return MethodGetPayloadV6
	case MethodGetPayloadBodiesByHashV1:
		return MethodGetPayloadBodiesByHashV1
	case MethodGetPayloadBodiesByRangeV1:
		return MethodGetPayloadBodiesByRangeV1
	case MethodGetPayloadBodiesByHashV2:
		return MethodGetPayloadBodiesByHashV2
	case MethodGetPayloadBodiesByRangeV2:
		return MethodGetPayloadBodiesByRangeV2
	case MethodGetBlobsV1:
		return MethodGetBlobsV1
	case MethodGetBlobsV2:
		return MethodGetBlobsV2
	case MethodGetBlobsV3:
		return MethodGetBlobsV3
	case MethodGetBlobsV4:
		return MethodGetBlobsV4
	case MethodGetInclusionListV1:
		return MethodGetInclusionListV1
	case MethodExchangeTransitionConfigurationV1:
		return MethodExchangeTransitionConfigurationV1
	case MethodExchangeCapabilities:
		return MethodExchangeCapabilities
	case MethodGetClientVersionV1:
		return MethodGetClientVersionV1
	}
	return string(b)
}

// Classify returns the class of a method from its name. Versions are not
// checked: engine_newPayloadV9 is ClassNewPayload and
// engine_forkchoiceUpdatedWithWitnessV3 is ClassForkchoice, so a new fork
// keeps the routing rules of its family.
func Classify(method string) Class {
	name, ok := strings.CutPrefix(method, EnginePrefix)
	if !ok {
		return ClassNonEngine
	}
	switch {
	case strings.HasPrefix(name, "forkchoiceUpdated"):
		return ClassForkchoice
	case strings.HasPrefix(name, "newPayload"):
		return ClassNewPayload
	case strings.HasPrefix(name, "getPayloadV") && isDigits(name[len("getPayloadV"):]):
		return ClassGetPayload
	}
	return ClassRead
}

// MethodVersion returns n when the method name ends in "V" followed by the
// decimal number n (engine_newPayloadV4 → 4), and 0 otherwise.
func MethodVersion(method string) int {
	i := len(method)
	for i > 0 && '0' <= method[i-1] && method[i-1] <= '9' {
		i--
	}
	digits := method[i:]
	if i == 0 || method[i-1] != 'V' || digits == "" || len(digits) > 9 {
		return 0
	}
	n := 0
	for _, c := range []byte(digits) {
		n = n*10 + int(c-'0')
	}
	return n
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Spec timeouts (execution-apis src/engine/*.md, "timeout:" lines).
const (
	timeoutNewPayload    = 8 * time.Second
	timeoutNewPayloadV5  = 6 * time.Second
	timeoutForkchoice    = 8 * time.Second
	timeoutGetPayload    = 1 * time.Second
	timeoutPayloadBodies = 10 * time.Second
	timeoutDefault       = 1 * time.Second
)

// Timeout returns the time the specification lets a consensus client wait for
// an answer to the method: 8 s for newPayloadV1–V4, 6 s for newPayloadV5 and
// later, 8 s for forkchoiceUpdated, 1 s for getPayload, 10 s for
// getPayloadBodies*, and 1 s for everything else (blobs, capabilities, client
// version, eth_* and unknown methods). Unknown versions of newPayload and
// forkchoiceUpdated, and geth's …WithWitness variants, follow their family.
func Timeout(method string) time.Duration {
	switch Classify(method) {
	case ClassNewPayload:
		if MethodVersion(method) >= 5 {
			return timeoutNewPayloadV5
		}
		return timeoutNewPayload
	case ClassForkchoice:
		return timeoutForkchoice
	case ClassGetPayload:
		return timeoutGetPayload
	case ClassRead:
		if strings.HasPrefix(method, "engine_getPayloadBodies") {
			return timeoutPayloadBodies
		}
	}
	return timeoutDefault
}

// ServedOnEnginePort reports whether method belongs on the engine port: any engine_*
// method, or one of the eth_* methods an EL must serve there (execution-apis
// src/engine/common.md). These are the only methods the proxy forwards: anything else
// (debug_setHead, admin_*, miner_* …) could change an EL behind the proxy's back.
func ServedOnEnginePort(method string) bool {
	switch method {
	case "eth_blockNumber", "eth_call", "eth_chainId", "eth_getCode", "eth_getBlockByHash",
		"eth_getBlockByNumber", "eth_getLogs", "eth_sendRawTransaction", "eth_syncing":
		return true
	}
	return strings.HasPrefix(method, EnginePrefix)
}
