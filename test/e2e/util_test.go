package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

// freePorts returns n distinct loopback ports outside the ephemeral range that are free now.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ps, err := gethproc.FreePorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// fileTail returns the last n lines of a file, or why it could not be read.
func fileTail(path string, n int) string { return gethproc.FileTail(path, n) }

// keepLog copies a process's log to $E2E_LOG_DIR/<test>/<name>.log when the test failed (or
// always, with E2E_KEEP_LOGS=all) and the variable is set, so that CI can upload the folder:
// the temp dirs are removed after the test.
func keepLog(t testing.TB, name, path string) {
	dir := os.Getenv("E2E_LOG_DIR")
	if dir == "" || (!t.Failed() && os.Getenv("E2E_KEEP_LOGS") != "all") {
		return
	}
	dst := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Logf("keep %s log: %v", name, err)
		return
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Logf("keep %s log: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dst, name+".log"), raw, 0o644); err != nil {
		t.Logf("keep %s log: %v", name, err)
		return
	}
	t.Logf("%s log kept in %s", name, dst)
}
