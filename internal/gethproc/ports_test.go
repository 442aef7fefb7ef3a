package gethproc

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePortsAreDistinctAndFree(t *testing.T) {
	for range 20 {
		ports, err := FreePorts(8)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if p < minPort || p >= maxPort {
				t.Fatalf("port %d outside [%d, %d)", p, minPort, maxPort)
			}
			if seen[p] {
				t.Fatalf("port %d returned twice in %v", p, ports)
			}
			seen[p] = true
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d not free after FreePorts: %v", p, err)
			}
			l.Close()
		}
	}
}

func TestFreePortsRejectsBadCounts(t *testing.T) {
	for _, n := range []int{-1, 0, 65} {
		if _, err := FreePorts(n); err == nil {
			t.Errorf("FreePorts(%d): want an error", n)
		}
	}
}

func TestBindConflict(t *testing.T) {
	cases := []struct {
		log  string
		want bool
	}{
		{"Fatal: Error starting protocol stack: listen tcp 127.0.0.1:30057: bind: address already in use", true},
		{"Fatal: Failed to read genesis file", false},
		{"", false},
	}
	for _, c := range cases {
		if got := BindConflict(c.log); got != c.want {
			t.Errorf("BindConflict(%q) = %v, want %v", c.log, got, c.want)
		}
	}
}
