// Package gethproc runs real geth processes for the end-to-end tests (test/e2e) and the
// devnet (cmd/sync-proxy-devnet): it writes a merged-at-genesis genesis file, initialises
// datadirs, starts and stops geth (and any other child process) by PID, and picks loopback
// ports.
//
// Every geth it starts listens on 127.0.0.1 only: the p2p listener is pinned to loopback by a
// TOML config (the --port flag can only set ":port"), discovery is off and no peers are
// allowed. A geth started here has no way to move its head except the Engine API.
//
// Nothing here calls testing: every failure is an error, so the devnet can use it too.
package gethproc
