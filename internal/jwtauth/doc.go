// Package jwtauth holds the Engine API JWT secrets, the inbound [Verifier] that
// authenticates beacon nodes (BNs), and the outbound [Signer] that authenticates
// sync-proxy to each execution client (EL).
//
// The rules come from the Engine API authentication spec
// (ethereum/execution-apis, src/engine/authentication.md) and, where the spec
// leaves room, from go-ethereum's server side (node/jwt_handler.go) and client
// side (node/jwt_auth.go), whose behaviour every EL is tested against.
//
// # Secrets
//
// A secret is 32 bytes, stored as 64 hex characters with an optional 0x prefix
// and surrounding whitespace (geth trims the file and requires exactly 32
// bytes). [Secret] never prints, formats, logs or marshals its bytes, so a
// config dump or a log line cannot leak it, and parse errors say what is wrong
// with the text without quoting it.
//
// # Inbound: BN → sync-proxy
//
// [Verifier.Verify] checks the Authorization header of every request the way
// geth's handler does:
//
//   - the scheme "Bearer " is matched in any case and the rest is trimmed; no
//     token at all is "missing token";
//   - a token that is not three base64url segments of JSON (or is over 8 KiB)
//     is "invalid token";
//   - only HS256 is accepted; "none" and every other algorithm, HS384 and HS512
//     included, are "unexpected signing method" before any key is tried;
//   - the signature must verify under one configured secret, HMACs compared in
//     constant time, else "signature is invalid". If the token's `id` claim
//     is the ID of a key, only that key is tried, so a BN cannot claim another
//     BN's identity with its own secret; otherwise every key is tried in
//     order, and the first that verifies names the BN;
//   - `exp`, when present, must be in the future ("token is expired"), and
//     `nbf`, when present, must not be ("token is not valid yet"); geth checks
//     `exp` but ignores `nbf`;
//   - `iat` is required ("missing issued-at") and must be within the allowed
//     drift of the proxy's clock in either direction, ±60 s in the spec and in
//     geth ("stale token", "future token"); fractional seconds are dropped, as
//     geth does;
//   - unknown claims are ignored, as the spec requires.
//
// Claims are judged only after the signature. Each failure is an [*AuthError]
// whose Reason is the short text the HTTP layer sends with the 401. The verified key's name is the BN's identity for the rest
// of the proxy.
//
// # Outbound: sync-proxy → EL
//
// The BN's Authorization header is never forwarded. [Signer] mints a token per
// EL with that EL's secret: header {"alg":"HS256","typ":"JWT"} and claims
// {"iat": now in whole seconds}, plus optional `id` and `clv` naming the proxy,
// and no `exp`, like geth's client. Where geth mints a fresh token for every
// request, Signer reuses one for a few seconds (5 s by default, never more than
// 10 s), which keeps the token well inside the EL's ±60 s window while sparing
// an HMAC per request.
package jwtauth
