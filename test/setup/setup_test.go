package setup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// script is scripts/setup.sh, from this package's folder.
func script(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "scripts", "setup.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("scripts/setup.sh: %v", err)
	}
	return p
}

// goBinary is the go command on PATH (the one `make test` runs the tests with).
func goBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not found on PATH: %v", err)
	}
	return p
}

// runSetup runs scripts/setup.sh with env added to a minimal environment.
func runSetup(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script(t)}, args...)...)
	cmd.Env = append([]string{"HOME=" + os.Getenv("HOME"), "GO=" + goBinary(t)}, env...)
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GOFLAGS", "GOTOOLCHAIN"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(10 * time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("scripts/setup.sh %v: still running after 10 minutes:\n%s", args, out.String())
		return "", nil
	}
}

// modVersion is the module version a Go binary was built from.
func modVersion(t *testing.T, bin string) string {
	t.Helper()
	out, err := exec.Command(goBinary(t), "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m %s: %v\n%s", bin, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "mod" {
			return f[2]
		}
	}
	t.Fatalf("go version -m %s: no mod line:\n%s", bin, out)
	return ""
}

// A new user's machine: nothing in GOBIN. The script installs the pinned staticcheck and geth
// there, and a second run installs nothing.
func TestSetupInstallsGoToolsIntoAnEmptyGOBIN(t *testing.T) {
	gobin := t.TempDir()
	env := []string{"GOBIN=" + gobin, "PATH=" + os.Getenv("PATH")}
	out, err := runSetup(t, env, "staticcheck", "geth")
	if err != nil {
		t.Fatalf("setup.sh staticcheck geth: %v\n%s", err, out)
	}
	for _, tool := range []struct{ name, version string }{
		{"staticcheck", "v0.8.2"},
		{"geth", "v1.17.10"},
	} {
		bin := filepath.Join(gobin, tool.name)
		if got := modVersion(t, bin); got != tool.version {
			t.Errorf("%s: version %s, want %s", bin, got, tool.version)
		}
		if !strings.Contains(out, "installing "+tool.name+" "+tool.version+" into "+gobin) {
			t.Errorf("no install line for %s in:\n%s", tool.name, out)
		}
	}
	out, err = runSetup(t, env, "staticcheck", "geth")
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if strings.Contains(out, "installing") || !strings.HasPrefix(out, "setup: ready: staticcheck v0.8.2, geth v1.17.10") {
		t.Errorf("second run should only say ready:\n%s", out)
	}
}

// A wrong version in GOBIN is replaced, not trusted.
func TestSetupReplacesAnotherVersion(t *testing.T) {
	gobin := t.TempDir()
	// a Go binary from another module stands in for a stale staticcheck
	if err := os.WriteFile(filepath.Join(gobin, "staticcheck"), []byte("#!/bin/sh\necho stale\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := runSetup(t, []string{"GOBIN=" + gobin, "PATH=" + os.Getenv("PATH")}, "staticcheck")
	if err != nil {
		t.Fatalf("setup.sh staticcheck: %v\n%s", err, out)
	}
	if got := modVersion(t, filepath.Join(gobin, "staticcheck")); got != "v0.8.2" {
		t.Errorf("staticcheck version %s after setup, want v0.8.2\n%s", got, out)
	}
}

// Without apt-get (or without root) the script cannot install system packages: it stops with
// one line naming the exact command, listing what is missing.
func TestSetupNamesTheCommandWhenItCannotInstall(t *testing.T) {
	// a PATH with the base tools the script needs, and no apt-get, Chromium, node or compiler
	bin := t.TempDir()
	for _, name := range []string{"bash", "awk", "sort", "tr", "sed", "id", "dirname", "grep"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"PATH=" + bin,
		"GOBIN=" + t.TempDir(),
		"SYNC_PROXY_LODESTAR_DIR=" + t.TempDir(), // no Lodestar yet: its build tools are needed too
		"CHROMIUM=",
	}
	out, err := runSetup(t, env, "system")
	if err == nil {
		t.Fatalf("setup.sh system succeeded with no Chromium or node on PATH:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line, got %d:\n%s", len(lines), out)
	}
	const prefix = "setup: missing system packages; install them with: sudo apt-get install -y --no-install-recommends "
	if !strings.HasPrefix(lines[0], prefix) {
		t.Fatalf("line %q does not name the command %q", lines[0], prefix)
	}
	pkgs := map[string]bool{}
	for _, p := range strings.Fields(strings.TrimPrefix(lines[0], prefix)) {
		if pkgs[p] {
			t.Errorf("package %s named twice: %s", p, lines[0])
		}
		pkgs[p] = true
	}
	for _, want := range []string{"chromium", "nodejs", "npm", "g++", "make", "python3"} {
		if !pkgs[want] {
			t.Errorf("%s missing from %q", want, lines[0])
		}
	}
}

// scripts/phases.sh, which `make test` and `make check` run: every phase's time at the end, and
// the first failure stops the run with its exit status and the times so far.
func TestPhasesReportsEachPhase(t *testing.T) {
	phases, err := filepath.Abs(filepath.Join("..", "..", "scripts", "phases.sh"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		rc     int
		report []string // the lines after "== phases", by prefix
		absent string
	}{
		{"all pass", []string{"lint=true", "test=sleep 0.2"}, 0,
			[]string{"   lint ", "   test ", "   total "}, "FAILED"},
		{"second fails", []string{"lint=true", "test=exit 3", "fuzz=echo never-run"}, 3,
			[]string{"   lint ", "   test ", "   total "}, "never-run"},
		{"not NAME=COMMAND", []string{"lint"}, 2, nil, "== phases"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("bash", append([]string{phases}, tc.args...)...)
			out, err := cmd.CombinedOutput()
			rc := 0
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if rc != tc.rc {
				t.Fatalf("exit %d, want %d:\n%s", rc, tc.rc, out)
			}
			if strings.Contains(string(out), tc.absent) {
				t.Errorf("output has %q:\n%s", tc.absent, out)
			}
			if tc.report == nil {
				return
			}
			_, report, ok := strings.Cut(string(out), "== phases\n")
			if !ok {
				t.Fatalf("no report:\n%s", out)
			}
			lines := strings.Split(strings.TrimRight(report, "\n"), "\n")
			if len(lines) != len(tc.report) {
				t.Fatalf("report has %d lines, want %d:\n%s", len(lines), len(tc.report), report)
			}
			for i, want := range tc.report {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d %q, want prefix %q", i, lines[i], want)
				}
			}
			if tc.rc != 0 && !strings.Contains(lines[1], "FAILED (exit 3)") {
				t.Errorf("failed phase not marked: %q", lines[1])
			}
		})
	}
}
