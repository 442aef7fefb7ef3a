package e2e

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// requireLoopbackOnly fails unless every listening TCP socket and every UDP socket the
// process owns is bound to a loopback address. It reads /proc, so it checks only on Linux.
func requireLoopbackOnly(t *testing.T, name string, pid int) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Logf("%s: loopback check needs /proc; skipped on %s", name, runtime.GOOS)
		return
	}
	socks, err := processSockets(pid)
	if err != nil {
		t.Fatalf("%s: list sockets: %v", name, err)
	}
	if len(socks) == 0 {
		t.Fatalf("%s (pid %d): no listening sockets found", name, pid)
	}
	for _, s := range socks {
		if !s.addr.Addr().IsLoopback() {
			t.Fatalf("%s (pid %d) has a %s socket on %s, want loopback only; all: %v", name, pid, s.proto, s.addr, socks)
		}
	}
	t.Logf("%s sockets: %v", name, socks)
}

type socket struct {
	proto string
	addr  netip.AddrPort
}

func (s socket) String() string { return s.proto + " " + s.addr.String() }

// processSockets lists the TCP listeners and UDP sockets owned by pid.
func processSockets(pid int) ([]socket, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return nil, err
	}
	var out []socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		socks, err := procNetSockets(pid, proto, inodes)
		if err != nil {
			return nil, err
		}
		out = append(out, socks...)
	}
	return out, nil
}

// socketInodes returns the inodes of the sockets among the process's open files.
func socketInodes(pid int) (map[string]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	return inodes, nil
}

// procNetSockets parses /proc/<pid>/net/<proto>: TCP sockets in LISTEN state (0A) and all UDP
// sockets whose inode the process owns.
func procNetSockets(pid int, proto string, inodes map[string]bool) ([]socket, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, proto))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []socket
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || !inodes[fields[9]] {
			continue
		}
		if strings.HasPrefix(proto, "tcp") && fields[3] != "0A" {
			continue
		}
		addr, err := parseProcAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", proto, err)
		}
		out = append(out, socket{proto: proto, addr: addr})
	}
	return out, sc.Err()
}

// parseProcAddr decodes "0100007F:1F90": the address as 32-bit words in host (little-endian)
// order, then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(host)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(p)), nil
}
