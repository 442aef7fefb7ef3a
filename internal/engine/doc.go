// Package engine owns the Engine API wire format as sync-proxy sees it: the
// method table, the inspection of JSON-RPC requests and responses, and the
// JSON-RPC 2.0 envelopes and error codes the proxy answers with.
//
// The package never re-encodes a body it forwards. [Inspect] scans a request
// once, without decoding it, and reports only what routing needs: the method,
// the raw id, the method's [Class], and a handful of fields (block hash,
// parent, number, timestamp and slot of a newPayload; the three fork-choice
// hashes and the attribute timestamp of a forkchoiceUpdated; the payload id of
// a getPayload). Everything else, transactions above all, is skipped: a string
// is skipped by jumping from quote to quote with [bytes.IndexByte], so a 12 MB
// newPayload is inspected in a few milliseconds with a constant number of
// allocations. [InspectResponse] does the same for the execution client's
// answers, and reads the payload status only for newPayload and
// forkchoiceUpdated; other results are delimited, never walked.
//
// # Strictness
//
// What the proxy routes on is checked strictly: the top level must be a JSON
// object; "jsonrpc", when present, must be "2.0"; "method" must be a string;
// "id" must be a number, a string or null; hashes must be "0x" followed by 64
// hex digits (either case) and quantities "0x" followed by hex digits without
// leading zeros, all written without escapes. Strings the scanner decodes or
// compares (member names of the objects it walks, the method, the id, the
// "jsonrpc" value, status strings) are validated like any JSON decoder would.
//
// Strings inside skipped values (transactions, withdrawals, blobs, the rest of
// every result) are only delimited: the scanner honours backslash escapes to
// find the closing quote but does not reject raw control characters or
// malformed escapes in them. The execution client decodes those values and
// rejects them itself, and validating them would double the cost of the scan.
// Every other part of the grammar (nesting, commas, colons, literals, numbers,
// trailing bytes) is checked everywhere, so a body Inspect accepts is split
// into the same members by every JSON decoder that accepts it.
//
// Inspect reads the members in the order they come. Beacon nodes send
// "method" before "params"; when a body puts "params" first, Inspect skips
// it, and walks it again once the method is known.
//
// Because the proxy must route on exactly what the execution client will
// read, ambiguous member names are refused rather than resolved: a duplicated
// member, or a member whose name differs only in case from one the proxy
// reads ("Method", "BLOCKHASH"), makes Inspect fail. Go's encoding/json, which
// geth uses, matches names case-insensitively and keeps the last duplicate,
// while other decoders keep the first or reject the object. Batches (a
// top-level array) are not supported. Nesting is bounded by [MaxDepth].
//
// Facts about the Engine API cited in this package come from the execution-apis
// specification (src/engine/*.md) and geth's eth/catalyst and beacon/engine
// packages.
package engine
