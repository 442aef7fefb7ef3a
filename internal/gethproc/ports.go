package gethproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
)

// Ports handed to child processes come from below the kernel's ephemeral range, so that no
// outgoing connection can be using one as its source port when a process (re)binds it.
const (
	minPort = 20000
	maxPort = 32000 // Linux's ephemeral range starts at 32768 by default
)

// FreePorts returns n distinct loopback TCP ports outside the ephemeral range that are free
// now. Every port stays bound until all n are chosen, so no port is returned twice. Another
// process may still take one before the child binds it: see BindConflict.
func FreePorts(n int) ([]int, error) {
	if n < 1 || n > 64 {
		return nil, fmt.Errorf("FreePorts(%d): want 1 to 64 ports", n)
	}
	ports := make([]int, 0, n)
	held := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for try := 0; len(ports) < n && try < 100*n; try++ {
		port := minPort + rand.IntN(maxPort-minPort)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // in use, or one of ours: it is still held
		}
		held = append(held, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("found %d of %d free ports in [%d, %d) after %d tries", len(ports), n, minPort, maxPort, 100*n)
	}
	return ports, nil
}

// BindConflict reports whether a child's log says it lost one of its ports to another
// process between FreePorts and its own bind (geth and sync-proxy both print Go's error).
func BindConflict(log string) bool {
	return strings.Contains(log, "bind: address already in use")
}
