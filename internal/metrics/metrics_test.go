package metrics_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/metrics"
	"github.com/sync-proxy/sync-proxy/internal/status/statustest"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// TestMetricsMove drives scripted beacon node traffic through a real proxy and fake ELs and
// checks what /metrics says afterwards.
func TestMetricsMove(t *testing.T) {
	oneEL := []statustest.EL{{Name: "el-b", Role: upstream.RoleFollower}}
	tests := []struct {
		name  string
		opts  statustest.Options
		drive func(t *testing.T, e *env)
		want  []want
	}{
		{
			name: "writer change",
			drive: func(t *testing.T, e *env) {
				// Drained after each block: an update still queued when the next one comes
				// would be coalesced.
				e.Block("bn-a", 1)
				e.Drain()
				e.Block("bn-a", 2)
				e.Drain()
				// bn-a falls silent; bn-b's block two slots later finds it silent.
				e.Block("bn-b", 4)
				e.Drain()
			},
			want: []want{
				{"syncproxy_writer_changes_total", []string{"reason", "first_beacon_node"}, 1},
				{"syncproxy_writer_changes_total", []string{"reason", "silent"}, 1},
				{"syncproxy_writer_changes_total", []string{"reason", "peer_ahead"}, 0},
				{"syncproxy_writer_elected", nil, 1},
				{"syncproxy_bn_writer", []string{"bn", "bn-a"}, 0},
				{"syncproxy_bn_writer", []string{"bn", "bn-b"}, 1},
				{"syncproxy_bn_healthy", []string{"bn", "bn-a"}, 0},
				{"syncproxy_bn_healthy", []string{"bn", "bn-b"}, 1},
				{"syncproxy_bns_healthy", nil, 1},
				{"syncproxy_bn_head_timestamp_seconds", []string{"bn", "bn-b"}, float64(statustest.BlockTS(4))},
				{"syncproxy_bn_lag_slots", []string{"bn", "bn-a"}, 2},
				{"syncproxy_requests_total", []string{"bn", "bn-a", "class", "new-payload", "outcome", "forwarded"}, 2},
				{"syncproxy_requests_total", []string{"bn", "bn-a", "class", "forkchoice", "outcome", "forwarded"}, 2},
				{"syncproxy_requests_total", []string{"bn", "bn-b", "class", "forkchoice", "outcome", "forwarded"}, 1},
				{"syncproxy_request_duration_seconds_count", []string{"class", "forkchoice"}, 3},
				{"syncproxy_el_head_number", []string{"el", "el-a"}, 4},
				{"syncproxy_el_lag_slots", []string{"el", "el-b"}, 0},
				{"syncproxy_el_last_status", []string{"el", "el-a", "status", "VALID"}, 1},
				{"syncproxy_el_payload_status_total", []string{"el", "el-a", "class", "new-payload", "status", "VALID"}, 3},
				{"syncproxy_el_delivered_total", []string{"el", "el-a"}, -6},
				{"syncproxy_el_request_duration_seconds_count", []string{"el", "el-b", "class", "forkchoice"}, 3},
				{"syncproxy_ready", nil, 1},
			},
		},
		{
			name: "filtered forkchoice from a follower beacon node",
			drive: func(t *testing.T, e *env) {
				e.Block("bn-a", 1)
				e.Post("bn-b", statustest.NewPayload(1))
				e.Post("bn-b", statustest.Forkchoice(1))
				e.Drain()
			},
			want: []want{
				{"syncproxy_requests_total", []string{"bn", "bn-b", "class", "new-payload", "outcome", "deduplicated"}, 1},
				{"syncproxy_requests_total", []string{"bn", "bn-b", "class", "forkchoice", "outcome", "filtered"}, 1},
				{"syncproxy_el_delivered_total", []string{"el", "el-a"}, -2},
				{"syncproxy_el_deduplicated_total", []string{"el", "el-a"}, 1},
			},
		},
		{
			name: "drops: coalesced forkchoiceUpdated, a block shed for the budget, a head while behind",
			// The budget holds blocks 1..3 and one head update: block 4 is shed.
			opts: statustest.Options{ELs: oneEL, BacklogBytes: int64(3*len(statustest.NewPayload(1)) + len(statustest.Forkchoice(3)))},
			drive: func(t *testing.T, e *env) {
				gate := make(chan struct{})
				el := e.ELs["el-b"]
				el.SetChain(engine.Block{Hash: statustest.BlockHash(0), Timestamp: statustest.BlockTS(0)})
				el.OnRequest(func(fakeel.Received) { <-gate })
				e.Post("bn-a", statustest.NewPayload(1))
				if !el.WaitFor(1, 5*time.Second) {
					t.Fatal("newPayload 1 never reached the EL")
				}
				e.Post("bn-a", statustest.NewPayload(2))
				e.Post("bn-a", statustest.NewPayload(3))
				e.Post("bn-a", statustest.Forkchoice(3))
				e.Post("bn-a", statustest.Forkchoice(3)) // the queued update is superseded
				e.Post("bn-a", statustest.NewPayload(4)) // over the budget: shed, el-b is behind
				e.Post("bn-a", statustest.Forkchoice(4)) // a head el-b cannot have yet
				s := e.scrape(t)
				check(t, s, []want{
					{"syncproxy_el_queue_depth", []string{"el", "el-b"}, 3},
					{"syncproxy_el_in_flight", []string{"el", "el-b"}, 1},
					{"syncproxy_el_behind", []string{"el", "el-b"}, 1},
					{"syncproxy_el_shed_blocks_total", []string{"el", "el-b"}, 1},
				})
				close(gate)
				e.Drain() // the lane heals: blocks 1..4 from the recent blocks, then head 4
				if h := el.Head(); h.Number != 4 {
					t.Fatalf("el-b head %d after healing, want 4", h.Number)
				}
			},
			want: []want{
				{"syncproxy_el_dropped_total", []string{"el", "el-b", "reason", "shed"}, 1},
				{"syncproxy_el_dropped_total", []string{"el", "el-b", "reason", "behind"}, 1},
				{"syncproxy_el_dropped_total", []string{"el", "el-b", "reason", "superseded"}, 1},
				{"syncproxy_el_dropped_total", []string{"el", "el-b", "reason", "stale_head"}, 0},
				{"syncproxy_el_shed_blocks_total", []string{"el", "el-b"}, 1},
				{"syncproxy_el_heals_total", []string{"el", "el-b"}, 1},
				{"syncproxy_el_behind", []string{"el", "el-b"}, 0},
				{"syncproxy_el_backlog_bytes", []string{"el", "el-b"}, 0},
				{"syncproxy_backlog_bytes", nil, 0},
				{"syncproxy_el_queue_depth", []string{"el", "el-b"}, 0},
				{"syncproxy_el_in_flight", []string{"el", "el-b"}, 0},
				{"syncproxy_el_delivered_total", []string{"el", "el-b"}, -3},
			},
		},
		{
			name: "divergence: VALID against INVALID, counted once",
			drive: func(t *testing.T, e *env) {
				e.ELs["el-b"].SetVerdict(statustest.BlockHash(1), engine.StatusInvalid)
				e.Block("bn-a", 1) // el-b also answers the forkchoiceUpdated VALID: same block, no second count
				e.Drain()
				e.Block("bn-a", 2)
				e.Drain()
			},
			want: []want{
				{"syncproxy_divergences_total", []string{"class", "new-payload"}, 1},
				{"syncproxy_divergences_total", []string{"class", "forkchoice"}, 0},
				{"syncproxy_el_payload_status_total", []string{"el", "el-b", "class", "new-payload", "status", "INVALID"}, 1},
				{"syncproxy_el_payload_status_total", []string{"el", "el-b", "class", "new-payload", "status", "VALID"}, 1},
			},
		},
		{
			name: "a different copy of a block is counted and is no divergence",
			drive: func(t *testing.T, e *env) {
				bad := bytes.Replace(statustest.NewPayload(1), []byte(`[],"0x`), []byte(`["0x01`+strings.Repeat("ba", 31)+`"],"0x`), 1)
				e.ELs["el-b"].SetBadCopy([]byte("0x01baba"))
				e.ELs["el-a"].SetBadCopy([]byte("0x01baba"))
				e.Post("bn-b", bad)
				e.Block("bn-a", 1)
				e.Drain()
			},
			want: []want{
				{"syncproxy_payload_copies_total", nil, 1},
				{"syncproxy_divergences_total", []string{"class", "new-payload"}, 0},
				{"syncproxy_el_payload_status_total", []string{"el", "el-b", "class", "new-payload", "status", "INVALID"}, 1},
				{"syncproxy_el_payload_status_total", []string{"el", "el-b", "class", "new-payload", "status", "VALID"}, 1},
			},
		},
		{
			name: "SYNCING against VALID is lag, not divergence",
			drive: func(t *testing.T, e *env) {
				e.ELs["el-b"].SetStatus(engine.StatusSyncing)
				e.Block("bn-a", 1)
				e.Drain()
			},
			want: []want{
				{"syncproxy_divergences_total", []string{"class", "new-payload"}, 0},
				{"syncproxy_divergences_total", []string{"class", "forkchoice"}, 0},
				{"syncproxy_el_lagging", []string{"el", "el-b"}, 1},
				{"syncproxy_el_lagging", []string{"el", "el-a"}, 0},
				{"syncproxy_el_last_status", []string{"el", "el-b", "status", "SYNCING"}, 1},
				{"syncproxy_el_last_status", []string{"el", "el-b", "status", "VALID"}, 0},
			},
		},
		{
			name: "EL down",
			drive: func(t *testing.T, e *env) {
				e.ELs["el-b"].Close()
				e.Block("bn-a", 1)
				e.Drain()
			},
			want: []want{
				{"syncproxy_el_up", []string{"el", "el-a"}, 1},
				{"syncproxy_el_up", []string{"el", "el-b"}, 0},
				{"syncproxy_el_state", []string{"el", "el-b", "state", "down"}, 1},
				{"syncproxy_el_state", []string{"el", "el-b", "state", "up"}, 0},
				{"syncproxy_el_state_changes_total", []string{"el", "el-b", "state", "down"}, 1},
				// The block failed; its head update was not sent (the EL may lack the block).
				{"syncproxy_el_errors_total", []string{"el", "el-b", "kind", "connect"}, 1},
				{"syncproxy_el_dropped_total", []string{"el", "el-b", "reason", "behind"}, 1},
				{"syncproxy_el_lost", []string{"el", "el-b"}, 1},
				{"syncproxy_el_lost", []string{"el", "el-a"}, 0},
				{"syncproxy_el_failed_total", []string{"el", "el-b"}, -2},
				{"syncproxy_els_reachable", nil, 1},
				{"syncproxy_ready", nil, 1},
			},
		},
		{
			name: "EL refuses our token",
			drive: func(t *testing.T, e *env) {
				e.ELs["el-b"].Set(fakeel.Unauthorized, 0)
				e.Block("bn-a", 1)
				e.Drain()
			},
			want: []want{
				{"syncproxy_el_state", []string{"el", "el-b", "state", "unauthorized"}, 1},
				{"syncproxy_el_state_changes_total", []string{"el", "el-b", "state", "unauthorized"}, 1},
				{"syncproxy_el_errors_total", []string{"el", "el-b", "kind", "http_status"}, 1},
				{"syncproxy_el_dropped_total", []string{"el", "el-b", "reason", "behind"}, 1},
			},
		},
		{
			name:  "nothing yet: no writer, not ready",
			drive: func(t *testing.T, e *env) {},
			want: []want{
				{"syncproxy_writer_elected", nil, 0},
				{"syncproxy_ready", nil, 0},
				{"syncproxy_el_state", []string{"el", "el-a", "state", "unknown"}, 1},
				{"syncproxy_el_dropped_total", []string{"el", "el-a", "reason", "shed"}, 0},
				{"syncproxy_el_errors_total", []string{"el", "el-a", "kind", "timeout"}, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.opts, metrics.Options{})
			tt.drive(t, e)
			check(t, e.scrape(t), tt.want)
		})
	}
}

func TestBuildInfo(t *testing.T) {
	e := newEnv(t, statustest.Options{}, metrics.Options{Version: "v1.2.3", Commit: "abc1234"})
	check(t, e.scrape(t), []want{
		{"syncproxy_build_info", []string{"version", "v1.2.3", "commit", "abc1234", "goversion", runtime.Version()}, 1},
	})
}

// TestBNLabelsBounded checks that beacon node names past the cap share one label value and
// are left out of the per-node gauges.
func TestBNLabelsBounded(t *testing.T) {
	e := newEnv(t, statustest.Options{}, metrics.Options{MaxBNs: 2})
	for _, bn := range []string{"bn-1", "bn-2", "bn-3", "bn-4"} {
		e.Post(bn, statustest.NewPayload(1))
	}
	e.Drain()
	s := e.scrape(t)
	check(t, s, []want{
		{"syncproxy_requests_total", []string{"bn", "bn-1", "class", "new-payload", "outcome", "forwarded"}, 1},
		{"syncproxy_requests_total", []string{"bn", "bn-2", "class", "new-payload", "outcome", "deduplicated"}, 1},
		{"syncproxy_requests_total", []string{"bn", metrics.OtherBN, "class", "new-payload", "outcome", "deduplicated"}, 2},
	})
	for k := range s {
		if strings.Contains(k, `"bn-3"`) || strings.Contains(k, `"bn-4"`) {
			t.Errorf("%s: a beacon node past the cap has its own series", k)
		}
	}
}

// TestBNTableMetrics: the table's size by kind, its cap, the requests refused a place and
// the nodes forgotten, as the tracker counts them.
func TestBNTableMetrics(t *testing.T) {
	e := newEnv(t, statustest.Options{Election: func(c *beacon.Config) {
		c.Configured, c.MaxOthers = []string{"bn-1"}, 1
	}}, metrics.Options{})
	e.Block("bn-1", 1)
	e.Post("bn-2", statustest.NewPayload(1))
	e.Post("bn-3", statustest.NewPayload(1)) // bn-2 talks: refused
	e.Drain()
	check(t, e.scrape(t), []want{
		{"syncproxy_bn_table_nodes", []string{"kind", "configured"}, 1},
		{"syncproxy_bn_table_nodes", []string{"kind", "other"}, 1},
		{"syncproxy_bn_table_max_others", nil, 1},
		{"syncproxy_bn_refused_total", nil, 1},
		{"syncproxy_bn_forgotten_total", []string{"reason", "evicted"}, 0},
		{"syncproxy_bn_forgotten_total", []string{"reason", "expired"}, 0},
	})
	e.Clock.Advance(19 * time.Second) // bn-2 falls silent: bn-3 takes its place
	e.Post("bn-3", statustest.NewPayload(2))
	e.Clock.Advance(11 * time.Minute) // bn-3 idle past the expiry, but the writer: kept
	e.Block("bn-1", 2)                // bn-1 takes the role back
	e.Clock.Advance(2 * time.Minute)  // the next look for idle nodes forgets bn-3
	e.Block("bn-1", 3)
	e.Drain()
	check(t, e.scrape(t), []want{
		{"syncproxy_bn_table_nodes", []string{"kind", "configured"}, 1},
		{"syncproxy_bn_table_nodes", []string{"kind", "other"}, 0},
		{"syncproxy_bn_refused_total", nil, 1},
		{"syncproxy_bn_forgotten_total", []string{"reason", "evicted"}, 1},
		{"syncproxy_bn_forgotten_total", []string{"reason", "expired"}, 1},
	})
}

// TestNaming checks the conventions on every family: the namespace, _total on counters and
// only there, _seconds on histograms, and help text.
func TestNaming(t *testing.T) {
	e := newEnv(t, statustest.Options{}, metrics.Options{Runtime: true})
	e.Block("bn-a", 1)
	e.Drain()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(name, "syncproxy_") {
			t.Errorf("%s: not in the syncproxy_ namespace", name)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help text", name)
		}
		typ := mf.GetType().String()
		switch {
		case typ == "COUNTER" && !strings.HasSuffix(name, "_total"):
			t.Errorf("%s: a counter without _total", name)
		case typ != "COUNTER" && strings.HasSuffix(name, "_total"):
			t.Errorf("%s: a %s named like a counter", name, typ)
		case typ == "HISTOGRAM" && !strings.HasSuffix(name, "_seconds"):
			t.Errorf("%s: a histogram of durations without _seconds", name)
		}
	}
}

func TestNewRefusesNilRegisterer(t *testing.T) {
	if _, err := metrics.New(nil, metrics.Options{}); err == nil {
		t.Fatal("New(nil) succeeded")
	}
}

func TestNewRefusesDoubleRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.Options{}); err != nil {
		t.Fatalf("first New: %v", err)
	}
	if _, err := metrics.New(reg, metrics.Options{}); err == nil {
		t.Fatal("second New on the same registry succeeded")
	}
}

// The reasons of beacon.Change become snake_case label values.
func TestWriterReasonLabels(t *testing.T) {
	e := newEnv(t, statustest.Options{}, metrics.Options{})
	s := e.scrape(t)
	for _, r := range []beacon.Reason{beacon.ReasonFirst, beacon.ReasonSilent, beacon.ReasonExternal,
		beacon.ReasonNoForkchoice, beacon.ReasonNoHead, beacon.ReasonWallLag, beacon.ReasonPeerAhead, beacon.ReasonRemoved} {
		k := key("syncproxy_writer_changes_total", "reason", strings.ReplaceAll(string(r), " ", "_"))
		if v, ok := s[k]; !ok || v != 0 {
			t.Errorf("%s = %v, present %v; want 0, present", k, v, ok)
		}
	}
}
