package gethproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// Ports handed to child processes come from below the kernel's ephemeral range, so that no
// outgoing connection can be using one as its source port when a process (re)binds it.
const (
	minPort = 20000
	maxPort = 32000 // Linux's ephemeral range starts at 32768 by default
)

// FreePort returns a random loopback TCP port outside the ephemeral range that is free now.
func FreePort() (int, error) {
	for range 100 {
		port := minPort + rand.IntN(maxPort-minPort)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port in [%d, %d) after 100 tries", minPort, maxPort)
}
