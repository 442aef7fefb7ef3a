package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDevnetWithLateReorgs runs the devnet as `make devnet DEVNETFLAGS='--slot 1s
// --late-reorg-every 3'` does, with real geth and a freshly built sync-proxy, for a few
// seconds: every slot's block reaches all three ELs, and every third slot bn-1 re-orgs the
// head out (a build on its parent), which all three ELs follow as well.
func TestDevnetWithLateReorgs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (make check) runs no real clients; make test runs this one with geth")
	}
	bin := filepath.Join(t.TempDir(), "sync-proxy")
	if out, err := exec.Command("go", "build", "-o", bin, "../sync-proxy").CombinedOutput(); err != nil {
		t.Fatalf("build sync-proxy: %v\n%s", err, out)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 14*time.Second)
	defer cancel()
	err := run(ctx, options{syncProxy: bin, slot: time.Second, dir: t.TempDir(), maxDuration: time.Minute, lateReorg: 3}, &out)
	if err != nil {
		t.Fatalf("devnet: %v\n%s", err, out.String())
	}
	blockLine := regexp.MustCompile(`slot (\d+) block #(\d+) `)
	var blocks, reorgs int
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "failed") {
			t.Errorf("a slot failed: %s", line)
		}
		m := blockLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		blocks++
		if !strings.Contains(line, "3/3 ELs at #"+m[2]) {
			t.Errorf("not every EL followed: %s", line)
		}
		if strings.Contains(line, "re-orged out") {
			reorgs++
			if slot, _ := strconv.Atoi(m[1]); slot%3 != 0 {
				t.Errorf("a late re-org in slot %d, want every third slot: %s", slot, line)
			}
			if !strings.Contains(line, "bn-2 got VALID/VALID") {
				t.Errorf("re-org slot: bn-2 did not get VALID for the block: %s", line)
			}
		}
	}
	if blocks < 6 || reorgs < 2 {
		t.Fatalf("%d blocks, %d of them late re-orgs: want at least 6 and 2\n%s", blocks, reorgs, out.String())
	}
	t.Logf("%d blocks, %d late re-orgs, every EL followed each", blocks, reorgs)
}
