package status

import (
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

func TestBuildELSync(t *testing.T) {
	const slot = 12 * time.Second
	head := func(ts uint64) upstream.Block { return upstream.Block{Hash: engine.Hash{1}, Number: 1, Timestamp: ts} }
	tests := []struct {
		name     string
		st       upstream.Stats
		newest   uint64
		anyValid bool
		wantSync string
		wantLag  float64 // -1: unknown
	}{
		{"at the newest head", upstream.Stats{Head: head(1200)}, 1200, true, SyncInSync, 0},
		{"one slot behind is a race", upstream.Stats{Head: head(1188)}, 1200, true, SyncInSync, 1},
		{"two slots behind", upstream.Stats{Head: head(1176)}, 1200, true, SyncLagging, 2},
		{"half a slot", upstream.Stats{Head: head(1194)}, 1200, true, SyncInSync, 0.5},
		{"no head yet", upstream.Stats{}, 1200, false, SyncUnknown, -1},
		{"head hash without timestamp", upstream.Stats{Head: upstream.Block{Hash: engine.Hash{1}}}, 1200, false, SyncUnknown, -1},
		{"SYNCING while another EL says VALID", upstream.Stats{LastStatus: engine.StatusSyncing}, 1200, true, SyncLagging, -1},
		{"ACCEPTED while another EL says VALID", upstream.Stats{Head: head(1200), LastStatus: engine.StatusAccepted}, 1200, true, SyncLagging, 0},
		{"SYNCING while nobody says VALID", upstream.Stats{LastStatus: engine.StatusSyncing}, 1200, false, SyncUnknown, -1},
		{"a relay's SYNCING says nothing", upstream.Stats{Role: upstream.RoleRelay, LastStatus: engine.StatusSyncing}, 1200, true, SyncUnknown, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := buildEL(tt.st, tt.newest, slot, tt.anyValid)
			if e.Sync != tt.wantSync {
				t.Errorf("Sync = %q; want %q", e.Sync, tt.wantSync)
			}
			switch {
			case tt.wantLag < 0 && e.LagSlots != nil:
				t.Errorf("LagSlots = %v; want unknown", *e.LagSlots)
			case tt.wantLag >= 0 && (e.LagSlots == nil || *e.LagSlots != tt.wantLag):
				t.Errorf("LagSlots = %v; want %v", e.LagSlots, tt.wantLag)
			}
		})
	}
}

func TestBuildELFields(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	st := upstream.Stats{
		Name: "geth", URL: "http://user:secret@10.0.0.1:8551/?token=x", Role: upstream.RolePrimary, State: upstream.StateUnauthorized,
		QueueDepth: 3, InFlight: true, Delivered: 7, Failed: 2,
		Drops:      map[upstream.DropReason]uint64{upstream.DropShed: 4},
		LastStatus: engine.StatusValid, LastError: "http status 401: stale token", LastErrorAt: now,
		LastLatency: 1500 * time.Microsecond,
	}
	e := buildEL(st, 0, 12*time.Second, true)
	if strings.Contains(e.URL, "secret") || strings.Contains(e.URL, "token") || e.URL != "http://10.0.0.1:8551/" {
		t.Errorf("URL %q leaks credentials or is mangled", e.URL)
	}
	if e.Role != "primary" || e.State != "unauthorized" || e.Reachable {
		t.Errorf("role/state/reachable = %s/%s/%v", e.Role, e.State, e.Reachable)
	}
	if e.Drops["shed"] != 4 || e.QueueDepth != 3 || !e.InFlight || e.Delivered != 7 || e.Failed != 2 {
		t.Errorf("counters %+v", e)
	}
	if e.LastErrorAt == nil || !e.LastErrorAt.Equal(now) || e.LastOKAt != nil || e.LatencySeconds != 0.0015 {
		t.Errorf("times %+v", e)
	}
	if e.Head != nil || e.LastValid != nil {
		t.Errorf("blocks without hashes shown: %+v %+v", e.Head, e.LastValid)
	}
	if e.Behind || e.Sync == SyncBehind || e.BehindSince != nil {
		t.Errorf("a lane that is not behind shown behind: %+v", e)
	}
	st.Behind, st.BehindSince, st.ShedBlocks, st.ShedBytes, st.Heals, st.HeldBytes = true, now, 12, 3<<20, 1, 5<<20
	st.Head = upstream.Block{Hash: engine.Hash{1}, Number: 9, Timestamp: 1_700_000_000}
	e = buildEL(st, 1_700_000_000, 12*time.Second, true)
	if !e.Behind || e.Sync != SyncBehind || e.BehindSince == nil || !e.BehindSince.Equal(now) ||
		e.ShedBlocks != 12 || e.ShedBytes != 3<<20 || e.Heals != 1 || e.BacklogBytes != 5<<20 {
		t.Errorf("behind lane: %+v", e)
	}
	if b := elSync(e); b.Text != "BEHIND: HEALING" || b.Tone != "bad" {
		t.Errorf("behind badge %+v", b)
	}
	st.Behind, st.Lost = false, true
	e = buildEL(st, 1_700_000_000, 12*time.Second, true)
	if e.Behind || !e.Lost || e.Sync != SyncLost {
		t.Errorf("lost lane: %+v", e)
	}
	if b := elSync(e); b.Text != "LOST A BLOCK: CATCHING UP" || b.Tone != "bad" {
		t.Errorf("lost badge %+v", b)
	}
}

func TestByteSize(t *testing.T) {
	for _, c := range []struct {
		n    any
		want string
	}{{int64(0), "0 B"}, {int64(1023), "1023 B"}, {uint64(300 << 10), "300 KiB"}, {int64(31<<20 + 1<<19), "31.5 MiB"}, {int64(3 << 30), "3.0 GiB"}} {
		if got := byteSize(c.n); got != c.want {
			t.Errorf("byteSize(%v) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestNotReady(t *testing.T) {
	up := EL{Role: "follower", Reachable: true}
	relayUp := EL{Role: "relay", Reachable: true}
	down := EL{Role: "follower"}
	tests := []struct {
		name string
		s    Snapshot
		want string
	}{
		{"no writer", Snapshot{ELs: []EL{up}}, "no writer"},
		{"no EL answers", Snapshot{Writer: "bn", ELs: []EL{down}}, "no execution client"},
		{"only a relay answers", Snapshot{Writer: "bn", ELs: []EL{relayUp, down}}, "no execution client"},
		{"ready", Snapshot{Writer: "bn", ELs: []EL{down, up}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := notReady(tt.s)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("notReady = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	now := time.Unix(1000, 0)
	at := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	tests := []struct{ got, want string }{
		{ago(now, nil), "never"},
		{ago(now, at(300*time.Millisecond)), "just now"},
		{ago(now, at(42*time.Second)), "42 s ago"},
		{ago(now, at(5*time.Minute)), "5 min ago"},
		{ago(now, at(-time.Minute)), "just now"},
		{ago(now, at(3*time.Hour+5*time.Minute)), "3h5m0s ago"},
		{slots(0), "0 slots"},
		{slots(1), "1 slot"},
		{slots(2.5), "2.5 slots"},
		{short(engine.Hash{0xab, 0xcd, 31: 0xef}), "0xabcd…00ef"},
		{ms(0.0125), "12.5 ms"},
		{dropList(nil), "none"},
		{dropList(map[string]uint64{"superseded": 2, "shed": 1, "shutdown": 0}), "3 (shed 1, superseded 2)"},
		{utc(1_700_000_000), "22:13:20 UTC"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q; want %q", tt.got, tt.want)
		}
	}
}

// TestBadgesSayTheirState checks that no state is shown by colour alone: every badge has
// words.
func TestBadgesSayTheirState(t *testing.T) {
	lag := 3.0
	var badges []badge
	for _, s := range []string{"unknown", "up", "down", "unauthorized"} {
		badges = append(badges, elState(EL{State: s}))
	}
	for _, s := range []string{SyncInSync, SyncUnknown} {
		badges = append(badges, elSync(EL{Sync: s}))
	}
	badges = append(badges, elSync(EL{Sync: SyncLagging, LagSlots: &lag}), elSync(EL{Sync: SyncLagging, LastStatus: "SYNCING"}))
	for _, s := range []string{"", "VALID", "INVALID", "INVALID_BLOCK_HASH", "SYNCING", "ACCEPTED", "WEIRD"} {
		badges = append(badges, verdict(s))
	}
	badges = append(badges, bnHealth(BN{Healthy: true}), bnHealth(BN{Unhealthy: "silent"}))
	seen := map[string]bool{}
	for _, b := range badges {
		if b.Text == "" || b.Symbol == "" || b.Tone == "" {
			t.Errorf("badge %+v lacks text, symbol or tone", b)
		}
		if seen[b.Text] {
			t.Errorf("two states share the text %q", b.Text)
		}
		seen[b.Text] = true
	}
	if b := elSync(EL{Sync: SyncLagging, LagSlots: &lag}); b.Text != "LAGGING 3 slots" {
		t.Errorf("lagging badge %q", b.Text)
	}
}
