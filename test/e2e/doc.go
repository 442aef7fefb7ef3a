// Package e2e runs real execution clients (geth) on 127.0.0.1 and drives them with the
// internal/cldriver consensus-layer stand-in, directly and through a freshly built sync-proxy.
//
// geth is found through $GETH_BINARY, then PATH, then $GOPATH/bin/geth; when it is missing the
// tests fail (CI installs it with `go install github.com/ethereum/go-ethereum/cmd/geth@v1.17.10`).
//
//	go test ./test/e2e/ -v -count=1
//
// Every helper keeps its processes on loopback: geth's p2p listener is pinned to 127.0.0.1 by
// a TOML config, discovery is off, and each process's sockets are checked through /proc.
package e2e
