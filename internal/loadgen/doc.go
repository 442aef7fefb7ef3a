// Package loadgen generates Engine API load and stands in for execution clients, so that the
// cost of a hop between a beacon node and its execution clients can be measured on one machine.
//
//   - [Template] renders realistic request bodies once (newPayloadV4 from an empty block to the
//     12 MB worst case of reference/engine-api.md §11, with RLP-encoded signed transactions;
//     forkchoiceUpdatedV3 with and without payload attributes) and stamps each request in place
//     with a fresh id, block hash, parent, number and timestamp, so that no request is
//     deduplicated and no body is re-rendered per request.
//   - [Run] sends a template at a fixed rate or as fast as a set number of senders can, each
//     request with a fresh HS256 token, and checks every answer with [Check].
//   - [FakeEL] answers like a fast execution client (VALID, a payloadId when asked to build,
//     the request's own id), counts accepted connections, and can hang instead of answering.
//   - [ReadProc] reads a process's CPU time and peak resident set from /proc (Linux).
package loadgen
