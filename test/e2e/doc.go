// Package e2e runs real clients on 127.0.0.1 against a freshly built sync-proxy: geth
// (driven by the internal/cldriver consensus-layer stand-in, or by real Lodestar beacon
// nodes) and nginx. Processes are started through internal/gethproc and stopped by PID.
//
//	TestDriverDirect        the harness itself: geth driven directly, restarts
//	TestProxyDirectMode     (a) direct mode, two BNs, a primary and two followers
//	TestProxyMirrorNginx    (b) the Flashbots topology: nginx mirrors each BN to sync-proxy
//	                            (deploy/nginx/e2e-mirror.conf.tmpl), mirror mode; then a hung
//	                            sync-proxy must not hold the BNs up
//	TestProxyWriterFailover (c) the writer BN goes silent, the other takes over; stale heads
//	                            from the writer and from a returning BN never move a geth back
//	TestProxyELOutage       (d) followers stopped (SIGTERM) or killed (SIGKILL) for three
//	                            blocks: nobody else slows down, the returning geth catches up
//	TestLodestar            (e) three Lodestar v1.5.1 beacon nodes drive three gethes through
//	                            sync-proxy; a non-validating BN restarts mid-run
//
// Real clients are found as follows; a missing one is a failure, never a skip.
//
//   - geth v1.17.10: $GETH_BINARY, PATH, then $GOPATH/bin/geth.
//   - nginx: $NGINX_BINARY, PATH, then /usr/sbin/nginx.
//   - Lodestar v1.5.1: $SYNC_PROXY_LODESTAR_DIR (default ~/.cache/sync-proxy/lodestar), run with
//     node from PATH.
//
// `make test` installs them first (scripts/setup.sh); `scripts/setup.sh geth lodestar` alone
// installs geth and Lodestar.
//
// Run them with
//
//	go test ./test/e2e/ -v -count=1
//
// With E2E_LOG_DIR set, the logs of every process of a failed test (every test, with
// E2E_KEEP_LOGS=all) are copied there; Lodestar's without colour codes.
//
// Every helper keeps its processes on loopback: geth's p2p listener is pinned to 127.0.0.1 by
// a TOML config, discovery is off, nginx and Lodestar listen on 127.0.0.1, and each process's
// sockets are checked through /proc.
package e2e
