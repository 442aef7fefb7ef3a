package status_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/status/statustest"
)

// chromiumPath finds Chromium: $CHROMIUM, /usr/bin/chromium, or chromium on the PATH. The
// page test is part of the suite: a machine without Chromium fails it (apt-get install
// chromium), it is never skipped.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), "/usr/bin/chromium"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium not found (set $CHROMIUM or apt-get install chromium): the status page test needs a real browser")
	return ""
}

// artifactDir is where screenshots go: $SYNC_PROXY_ARTIFACTS, else test/e2e/artifacts
// (gitignored) at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SYNC_PROXY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "test", "e2e", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact dir: %v", err)
	}
	return dir
}

// browser starts headless Chromium for the test; it stops at cleanup.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, // root in CI
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser; it must not run under a timeout (see chromedp.Run).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// run runs actions with a deadline.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func screenshot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save screenshot: %v", err)
	}
	abs, _ := filepath.Abs(path)
	t.Logf("screenshot: %s (%d bytes)", abs, len(png))
	return png
}

// TestStatusPageInChromium loads the status page of a real proxy in headless Chromium,
// checks that the writer and the lagging EL are shown in words and in colour, that the page
// fits a phone, and that it refreshes itself; it saves screenshots as test artifacts. With
// UPDATE_SCREENSHOT=1 it also writes docs/status-page.png.
func TestStatusPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("-short (make check) runs no real clients; make test runs this one with Chromium")
	}
	r := scenario(t)
	s, err := status.NewServer(r.Proxy, status.Options{Version: "v0.1.0", Commit: "3f2c9e1", SlotDuration: statustest.Slot,
		Clock: r.Clock, Refresh: time.Second})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.ServeHTML)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := browser(t, 1100, 900)
	run(t, ctx, "load the page", chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#writer")))

	if got := text(t, ctx, "#writer"); !strings.Contains(got, "bn-1") {
		t.Errorf("writer shown as %q; want bn-1", got)
	}
	lagging := `[data-el="el-lagging"] [data-kind="sync"]`
	if got := text(t, ctx, lagging); !strings.Contains(got, "LAGGING") || !strings.Contains(got, "4 slots") {
		t.Errorf("el-lagging sync shown as %q; want LAGGING 4 slots", got)
	}
	if got := text(t, ctx, `[data-el="el-fast"] [data-kind="sync"]`); !strings.Contains(got, "IN SYNC") {
		t.Errorf("el-fast sync shown as %q; want IN SYNC", got)
	}
	if got := text(t, ctx, `[data-bn="bn-1"] [data-kind="writer"]`); !strings.Contains(got, "WRITER") {
		t.Errorf("bn-1 card says %q; want WRITER", got)
	}
	if got := text(t, ctx, `[data-divergence]`); !strings.Contains(got, "DIVERGENCE") || !strings.Contains(got, "el-bad") {
		t.Errorf("divergence shown as %q", got)
	}
	// Colour as well as words: the lagging badge and the in-sync badge differ in colour,
	// and neither is the card's own background.
	colours := eval[[]string](t, ctx, `[`+
		`getComputedStyle(document.querySelector('[data-el="el-lagging"] [data-kind="sync"]')).backgroundColor,`+
		`getComputedStyle(document.querySelector('[data-el="el-fast"] [data-kind="sync"]')).backgroundColor,`+
		`getComputedStyle(document.querySelector('[data-el="el-fast"]')).backgroundColor]`)
	if colours[0] == colours[1] || colours[0] == colours[2] || colours[1] == colours[2] {
		t.Errorf("badge colours lagging %s, in sync %s, card %s: want three different colours", colours[0], colours[1], colours[2])
	}
	png := screenshot(t, ctx, "status-page.png")
	if os.Getenv("UPDATE_SCREENSHOT") == "1" {
		docs := filepath.Join("..", "..", "docs", "status-page.png")
		if err := os.WriteFile(docs, png, 0o644); err != nil {
			t.Fatalf("update %s: %v", docs, err)
		}
		t.Logf("updated %s", docs)
	}

	// A phone: nothing may stick out sideways.
	run(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#writer")))
	if w := eval[[]int](t, ctx, `[document.documentElement.scrollWidth, window.innerWidth]`); w[0] > w[1] {
		t.Errorf("on a 390 px phone the page is %d px wide, wider than the %d px screen", w[0], w[1])
	}
	screenshot(t, ctx, "status-page-phone.png")

	// The page refreshes itself: el-fast goes away, the next block finds it down, and the
	// open page shows that without being told to reload.
	r.ELs["el-fast"].Close()
	r.Block("bn-1", 6)
	r.Drain()
	state := `[data-el="el-fast"] [data-kind="state"]`
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(state)))
		cancel()
		if err == nil && strings.Contains(got, "DOWN") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not refresh itself to show el-fast down (last %q, %v)", got, err)
		}
		<-tick.C
	}
}
