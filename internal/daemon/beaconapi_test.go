package daemon

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beaconapi"
	"github.com/sync-proxy/sync-proxy/internal/config"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
)

// TestBeaconAPIWiring: a beacon node configured with beacon-api=URL is polled by the
// running daemon, and the election sees what its API says; the network's genesis time
// reaches the election; the --bn nodes are the table's configured nodes.
func TestBeaconAPIWiring(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != beaconapi.SyncingPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"data":{"head_slot":"42","sync_distance":"3","is_syncing":true,"is_optimistic":false,"el_offline":false}}`))
	}))
	t.Cleanup(api.Close)
	el := fakeel.New("geth", nil)
	t.Cleanup(el.Close)
	secret := filepath.Join(t.TempDir(), "jwt.hex")
	if err := os.WriteFile(secret, []byte("5f9c0b8f2b6ad1a3e1e0f4c8b8f1e2d3c4b5a69788796a5b4c3d2e1f00112233"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := config.Default()
	cfg.Listen, cfg.OpsListen = "127.0.0.1:0", ""
	cfg.Network = "hoodi"
	cfg.ELs = []config.EL{{Name: "geth", URL: el.URL(), JWTSecret: secret, Role: "primary"}}
	cfg.BNs = []config.BN{{Name: "lh", JWTSecret: secret, BeaconAPI: api.URL}, {Name: "teku", JWTSecret: secret}}
	d, err := New(cfg, Build{Version: "test"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if got := d.poller.Interval(); got != 4*time.Second {
		t.Errorf("poll interval %v, want a third of a slot", got)
	}
	if st := d.poller.Status(); len(st) != 1 || st[0].Name != "lh" {
		t.Fatalf("polled %+v, want lh only", st)
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
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, b := range d.Proxy().Tracker().Snapshot() {
			if b.Name == "lh" && b.External.Known {
				if !b.External.Syncing || b.External.HeadSlot != 42 || b.Healthy {
					t.Fatalf("lh = %+v; want syncing at slot 42, unhealthy", b)
				}
				if !b.Configured {
					t.Fatal("lh, given with --bn, is not a configured node of the table: it could be forgotten")
				}
				if b.HeadTimestamp != 1742212800+42*12 || b.HeadSlot != 42 {
					t.Fatalf("lh head %d (slot %d); want hoodi's slot 42", b.HeadTimestamp, b.HeadSlot)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the beacon API was not polled within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
