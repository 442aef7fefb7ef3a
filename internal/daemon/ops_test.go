package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/config"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/status/statustest"
)

// TestOpsListener runs the whole daemon in front of a fake EL and checks every endpoint of
// the operations listener before and after a beacon node has spoken.
func TestOpsListener(t *testing.T) {
	const hexSecret = "5f9c0b8f2b6ad1a3e1e0f4c8b8f1e2d3c4b5a69788796a5b4c3d2e1f00112233"
	secret, err := jwtauth.ParseSecret([]byte(hexSecret))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "el.jwt")
	if err := os.WriteFile(path, []byte(hexSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	el := fakeel.New("geth", &secret)
	t.Cleanup(el.Close)

	cfg := config.Default()
	cfg.Listen, cfg.OpsListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ELs = []config.EL{{Name: "geth", URL: el.URL(), JWTSecret: path, Role: "follower"}}
	d, err := New(cfg, Build{Version: "v9.9.9", Commit: "abc1234"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-d.Ready():
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	ops := "http://" + d.OpsAddr().String()
	engine := "http://" + d.EngineAddr().String()

	tests := []struct {
		name, method, path string
		wantCode           int
		wantType, wantBody string
	}{
		{"alive", "GET", "/healthz", 200, "text/plain", "ok"},
		{"not ready before a beacon node", "GET", "/readyz", 503, "text/plain", "no writer"},
		{"metrics", "GET", "/metrics", 200, "text/plain", `syncproxy_build_info{commit="abc1234",goversion=`},
		{"runtime metrics", "GET", "/metrics", 200, "text/plain", "go_goroutines"},
		{"status json", "GET", "/status", 200, "application/json", `"version": "v9.9.9"`},
		{"status page", "GET", "/", 200, "text/html", "✕ NO WRITER"},
		{"unknown path", "GET", "/nope", 404, "text/plain", ""},
		{"wrong method", "POST", "/metrics", 405, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, typ, body := do(t, tt.method, ops+tt.path)
			if code != tt.wantCode || !strings.HasPrefix(typ, tt.wantType) || !strings.Contains(body, tt.wantBody) {
				t.Errorf("%s %s = %d %q %q; want %d %q containing %q", tt.method, tt.path, code, typ, trim(body), tt.wantCode, tt.wantType, tt.wantBody)
			}
		})
	}

	// A beacon node speaks; once the EL has answered, the proxy is ready and every view
	// says so.
	for _, body := range [][]byte{statustest.NewPayload(1), statustest.Forkchoice(1)} {
		resp, err := http.Post(engine+"/bn/bn-1", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatalf("engine request: %v", err)
		}
		resp.Body.Close()
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if err := d.Proxy().Drain(dctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if code, _, body := do(t, "GET", ops+"/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz after traffic = %d %q", code, body)
	}
	_, _, metrics := do(t, "GET", ops+"/metrics")
	for _, want := range []string{
		`syncproxy_requests_total{bn="bn-1",class="forkchoice",outcome="forwarded"} 1`,
		`syncproxy_writer_changes_total{reason="first_beacon_node"} 1`,
		`syncproxy_el_up{el="geth"} 1`,
		`syncproxy_ready 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, _, js := do(t, "GET", ops+"/status")
	var s status.Snapshot
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		t.Fatalf("/status: %v", err)
	}
	if s.Writer != "bn-1" || !s.Ready || len(s.ELs) != 1 || s.ELs[0].State != "up" || s.ELs[0].LastStatus != "VALID" {
		t.Errorf("/status = %+v", s)
	}
	if _, _, page := do(t, "GET", ops+"/"); !strings.Contains(page, "★ bn-1") || !strings.Contains(page, "● READY") {
		t.Errorf("status page does not show the writer and readiness:\n%s", trim(page))
	}
}

func do(t *testing.T, method, url string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}
