package proxy

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// TestHundredThousandBeaconNodeNames: 100,000 distinct /bn/ names, each sending a
// forkchoiceUpdated, leave a table of the configured writer and at most MaxOthers others;
// every request is answered, the writer keeps its role, and the heap stays within a
// budget (an unbounded table grew by about 35 MB here).
func TestHundredThousandBeaconNodeNames(t *testing.T) {
	const names = 100_000
	r := newRig(t, []upstream.Role{upstream.RolePrimary, upstream.RoleFollower}, func(c *Config) {
		c.Election.Configured = []string{"lighthouse"}
	})
	if code, body := r.post("lighthouse", newPayloadBody("1", 1)); code != 200 {
		t.Fatalf("newPayload: %d %s", code, body)
	}
	if code, body := r.post("lighthouse", forkchoiceBody("2", 1, false)); code != 200 {
		t.Fatalf("forkchoiceUpdated: %d %s", code, body)
	}
	r.waitIdle()
	fcu := forkchoiceBody("3", 1, false)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := range names {
		req := httptest.NewRequest(http.MethodPost, fmt.Sprintf("/bn/node-%06d", i), bytes.NewReader(fcu))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		r.p.ServeHTTP(rec, req)
		if rec.Code != 200 || !bytes.Contains(rec.Body.Bytes(), []byte(`"payloadStatus"`)) {
			t.Fatalf("name %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)

	tb := r.p.Tracker().Table()
	if tb.Configured != 1 || tb.Others != beacon.DefaultMaxOthers || tb.Nodes != 1+beacon.DefaultMaxOthers {
		t.Fatalf("table %+v, want lighthouse and %d others", tb, beacon.DefaultMaxOthers)
	}
	if tb.Refused != names-beacon.DefaultMaxOthers {
		t.Fatalf("%d requests refused a place, want %d", tb.Refused, names-beacon.DefaultMaxOthers)
	}
	if w, _ := r.p.Tracker().Writer(); w != "lighthouse" {
		t.Fatalf("writer %q, want lighthouse", w)
	}
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	const budget = 1 << 20
	if grew > budget {
		t.Fatalf("heap grew by %d bytes over %d names, budget %d", grew, names, budget)
	}
	t.Logf("%d names in %s; heap %+d bytes; table %+v", names, took, grew, tb)
}
