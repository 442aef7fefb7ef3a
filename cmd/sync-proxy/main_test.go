package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/fakeel"
)

func noEnv(string) (string, bool) { return "", false }

// TestReadmeListsEveryFlag keeps the README's flag table complete.
func TestReadmeListsEveryFlag(t *testing.T) {
	var usage bytes.Buffer
	run(context.Background(), []string{"-h"}, noEnv, &usage, &usage)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`(?m)^  -([a-z-]+)`).FindAllStringSubmatch(usage.String(), -1)
	if len(names) < 20 {
		t.Fatalf("found only %d flags in the usage text:\n%s", len(names), usage.String())
	}
	for _, m := range names {
		name := m[1]
		if !bytes.Contains(readme, []byte("`--"+name+"`")) && !bytes.Contains(readme, []byte("`-"+name+"`")) {
			t.Errorf("README.md does not document the flag --%s", name)
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, noEnv, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.HasPrefix(out.String(), "sync-proxy dev (commit unknown)") {
		t.Fatalf("version output %q", out.String())
	}
}

func TestBadConfigurationListsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short.hex")
	if err := os.WriteFile(short, []byte("abcd\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{
		"--el", "name=a,url=http://127.0.0.1:1,jwt-secret=" + short,
		"--el", "name=b,url=http://127.0.0.1:2,jwt-secret=" + filepath.Join(dir, "missing.hex"),
		"--bn", "name=lh,jwt-secret=" + short,
	}, noEnv, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	msg := errOut.String()
	for _, want := range []string{"short.hex", "missing.hex"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "abcd") {
		t.Errorf("message reveals a secret file's content:\n%s", msg)
	}

	errOut.Reset()
	code = run(context.Background(), []string{"--listen", "0.0.0.0:0", "--el", "http://127.0.0.1:1", "--slot-duration", "x"}, noEnv, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), `"x" is not a duration`) {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

// TestRunAndStop starts the daemon, checks it answers, and stops it with the context, as a
// signal would: exit 0.
func TestRunAndStop(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "el.hex")
	if err := os.WriteFile(secret, []byte("0x"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	el := fakeel.New("el", nil)
	defer el.Close()
	engine, ops := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var errOut bytes.Buffer
	go func() {
		done <- run(ctx, []string{"--listen", engine, "--ops-listen", ops, "--el", "name=a,url=" + el.URL() + ",jwt-secret=" + secret + ",role=primary"},
			noEnv, &bytes.Buffer{}, &errOut)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + ops + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never became healthy: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Post("http://"+engine+"/", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":"a","method":"eth_chainId","params":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), `"id":"a","result":"0x10"`) {
		t.Fatalf("answer %s", body)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
