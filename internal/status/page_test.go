package status_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/status/statustest"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// scenario is the traffic the page tests show: bn-1 is the writer and moves the chain to
// block 5; bn-2 stopped at block 2; el-lagging stopped validating after block 1; el-bad
// disagrees with el-fast on block 3; el-backup is not running.
func scenario(t testing.TB) *statustest.Rig {
	t.Helper()
	r := statustest.New(t, statustest.Options{ELs: []statustest.EL{
		{Name: "el-fast", Role: upstream.RoleFollower},
		{Name: "el-lagging", Role: upstream.RoleFollower},
		{Name: "el-bad", Role: upstream.RoleSyncOnly},
		{Name: "el-backup", Role: upstream.RoleFollower},
	}})
	r.ELs["el-backup"].Close()
	r.Block("bn-1", 1)
	r.Post("bn-2", statustest.NewPayload(1))
	r.Drain()
	r.ELs["el-lagging"].SetStatus(engine.StatusSyncing)
	r.ELs["el-bad"].SetVerdict(statustest.BlockHash(3), engine.StatusInvalid)
	for n := uint64(2); n <= 5; n++ {
		r.Block("bn-1", n)
		if n == 2 {
			r.Post("bn-2", statustest.NewPayload(2))
			r.Post("bn-2", statustest.Forkchoice(2))
		}
		r.Drain()
	}
	return r
}

func newServer(t testing.TB, r *statustest.Rig) *httptest.Server {
	t.Helper()
	s, err := status.NewServer(r.Proxy, status.Options{Version: "v-test", Commit: "abc123", SlotDuration: statustest.Slot, Clock: r.Clock})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.ServeHTML)
	mux.HandleFunc("GET /status", s.ServeJSON)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp, string(b)
}

func TestStatusJSON(t *testing.T) {
	r := scenario(t)
	srv := newServer(t, r)
	resp, body := get(t, srv.URL+"/status")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var s status.Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	if s.Writer != "bn-1" || s.Mode != "mirror" || !s.Ready || s.Version != "v-test" || s.SlotSeconds != 12 {
		t.Errorf("writer %q mode %q ready %v version %q slot %v", s.Writer, s.Mode, s.Ready, s.Version, s.SlotSeconds)
	}
	if s.NewestHeadTimestamp != statustest.BlockTS(5) {
		t.Errorf("newest head %d; want %d", s.NewestHeadTimestamp, statustest.BlockTS(5))
	}
	bns := map[string]status.BN{}
	for _, b := range s.BNs {
		bns[b.Name] = b
	}
	if b := bns["bn-1"]; !b.Writer || !b.Healthy || b.HeadTimestamp != statustest.BlockTS(5) || b.HeadHash != statustest.BlockHash(5) || b.LastSeen == nil || b.Requests != 10 {
		t.Errorf("bn-1 %+v", b)
	}
	if b := bns["bn-2"]; b.Writer || b.Healthy || b.Unhealthy == "" || b.LagSlots != 3 {
		t.Errorf("bn-2 %+v; want unhealthy, 3 slots behind", b)
	}
	els := map[string]status.EL{}
	for _, e := range s.ELs {
		els[e.Name] = e
	}
	if len(s.ELs) != 4 || s.ELs[0].Name != "el-fast" {
		t.Fatalf("ELs %+v; want configuration order", s.ELs)
	}
	fast, lag := els["el-fast"], els["el-lagging"]
	if fast.Sync != status.SyncInSync || fast.Head == nil || fast.Head.Number != 5 || fast.LastStatus != "VALID" || !fast.Reachable {
		t.Errorf("el-fast %+v", fast)
	}
	if lag.Sync != status.SyncLagging || lag.LagSlots == nil || *lag.LagSlots != 4 || lag.Head == nil || lag.Head.Number != 1 || lag.LastStatus != "SYNCING" {
		t.Errorf("el-lagging %+v; want lagging 4 slots at block 1", lag)
	}
	if els["el-bad"].Role != "sync-only" {
		t.Errorf("el-bad role %q", els["el-bad"].Role)
	}
	if b := els["el-backup"]; b.State != "down" || b.Reachable || !strings.Contains(b.LastError, "connect") || b.LastErrorAt == nil || b.Failed == 0 {
		t.Errorf("el-backup %+v; want down with a connect error", b)
	}
	if s.DivergenceTotal != 1 || len(s.Divergences) != 1 {
		t.Fatalf("divergences %d %+v; want 1", s.DivergenceTotal, s.Divergences)
	}
	if d := s.Divergences[0]; d.ValidEL != "el-fast" || d.InvalidEL != "el-bad" || d.Block != statustest.BlockHash(3) || d.InvalidStatus != "INVALID" {
		t.Errorf("divergence %+v", d)
	}
	// Hashes are hex strings, not arrays of numbers.
	if !strings.Contains(body, `"hash": "0x`) {
		t.Errorf("hashes not written as hex:\n%s", body)
	}
}

func TestStatusPage(t *testing.T) {
	r := scenario(t)
	srv := newServer(t, r)
	resp, body := get(t, srv.URL+"/")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP %q does not forbid loading anything", csp)
	}
	for _, want := range []string{
		`<meta http-equiv="refresh" content="5">`,
		`name="viewport"`,
		`prefers-color-scheme: dark`,
		`id="writer" class="badge info">★ bn-1<`,
		`data-el="el-lagging"`,
		`▲ LAGGING 4 slots`,
		`✓ IN SYNC`,
		`… SYNCING`,
		`★ WRITER`,
		`✕ UNHEALTHY: silent`,
		`✕ DIVERGENCE`,
		`✕ DOWN`,
		`connection refused`,
		`✕ 1</span>`,
		`● READY`,
		`v-test (abc123)`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Nothing external: no scripts, stylesheets, images or fonts from anywhere.
	external := regexp.MustCompile(`(?i)<script|<link|<img|@import|url\(|src=`)
	if m := external.FindString(body); m != "" {
		t.Errorf("page loads something: %q", m)
	}
}

func TestStatusPageEmpty(t *testing.T) {
	r := statustest.New(t, statustest.Options{})
	srv := newServer(t, r)
	_, body := get(t, srv.URL+"/")
	for _, want := range []string{`✕ NO WRITER`, `✕ NOT READY`, `No beacon node has sent a request yet.`, `○ NOT CONTACTED`, `✓ None seen.`} {
		if !strings.Contains(body, want) {
			t.Errorf("empty page lacks %q", want)
		}
	}
}

// TestStatusBNTable: /status and the page show the table's bounds, which nodes were
// configured, and the requests of nodes refused a place.
func TestStatusBNTable(t *testing.T) {
	r := statustest.New(t, statustest.Options{Election: func(c *beacon.Config) {
		c.Configured, c.MaxOthers = []string{"bn-1"}, 1
	}})
	r.Block("bn-1", 1)
	r.Post("bn-2", statustest.NewPayload(1))
	r.Post("bn-3", statustest.NewPayload(1)) // the table is full and bn-2 talks: not tracked
	r.Drain()
	srv := newServer(t, r)
	_, body := get(t, srv.URL+"/status")
	var s status.Snapshot
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("decode: %v\n%s", err, body)
	}
	want := status.BNTable{Configured: 1, Others: 1, MaxOthers: 1, IdleExpirySeconds: 600, Refused: 1}
	if s.BNTable != want {
		t.Errorf("bn_table %+v, want %+v", s.BNTable, want)
	}
	if len(s.BNs) != 2 || s.BNs[0].Name != "bn-1" || !s.BNs[0].Configured || s.BNs[1].Configured {
		t.Errorf("bns %+v; want bn-1 (configured) and bn-2", s.BNs)
	}
	_, page := get(t, srv.URL+"/")
	for _, w := range []string{
		`bn-1 <span class="role">configured</span>`,
		`1 configured (kept) · 1 of at most 1 others, each forgotten after 600 s idle`,
		`requests from new nodes not tracked, the table being full: 1`,
	} {
		if !strings.Contains(page, w) {
			t.Errorf("page lacks %q", w)
		}
	}
}
