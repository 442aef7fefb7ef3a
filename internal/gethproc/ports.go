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

// FreePort returns a random loopback TCP port outside the ephemeral range that is free now.
func FreePort() (int, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}

// FreePorts returns n distinct loopback TCP ports outside the ephemeral range that are free
// now. Every port stays bound until all n are chosen, so two calls to FreePort for one child
// process can never return the same port twice. Another process may still take one before
// the child binds it: see bindConflict.
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
	for range 100 * n {
		if len(ports) == n {
			break
		}
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

// bindConflict reports whether a child's log says it lost one of its ports to another
// process between FreePorts and its own bind.
func bindConflict(log string) bool {
	return strings.Contains(log, "bind: address already in use")
}
