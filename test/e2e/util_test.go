package e2e

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
)

// Ports handed to child processes come from below the kernel's ephemeral range, so that no
// outgoing connection can be using one as its source port when a process (re)binds it.
const (
	minTestPort = 20000
	maxTestPort = 32000 // Linux's ephemeral range starts at 32768 by default
)

// freePort returns a random loopback TCP port outside the ephemeral range that is free now.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		port := minTestPort + rand.IntN(maxTestPort-minTestPort)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l.Close()
		return port
	}
	t.Fatalf("no free port in [%d, %d) after 100 tries", minTestPort, maxTestPort)
	return 0
}

// fileTail returns the last n lines of a file, or why it could not be read.
func fileTail(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return tail(raw, n)
}

// tail returns the last n lines of b.
func tail(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
