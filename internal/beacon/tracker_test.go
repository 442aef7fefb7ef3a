package beacon

import (
	"bytes"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
)

// The tests use 2 s slots: silence 1.5 slots, wall lag 3 slots, peer margin 1 slot.
const slot = 2 * time.Second

var genesis = time.Unix(1_700_000_000, 0).UTC()

func testConfig() Config {
	return Config{SlotDuration: slot, SilenceTimeout: 3 * time.Second, MaxWallLag: 6 * time.Second, PeerMargin: 2 * time.Second}
}

// slotTS is the payload timestamp of slot s.
func slotTS(s int) uint64 { return uint64(genesis.Unix()) + uint64(s)*uint64(slot/time.Second) }

// slotStart is the wall-clock start of slot s.
func slotStart(s int) time.Time { return genesis.Add(time.Duration(s) * slot) }

type harness struct {
	t      *testing.T
	clk    *clock.Manual
	tr     *Tracker
	logs   *bytes.Buffer
	hooked []Change
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, clk: clock.NewManual(genesis), logs: &bytes.Buffer{}}
	tr, err := NewTracker(cfg, h.clk, slog.New(slog.NewTextHandler(h.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	tr.OnChange(func(c Change) { h.hooked = append(h.hooked, c) })
	h.tr = tr
	return h
}

// at sets the clock.
func (h *harness) at(t time.Time) *harness { h.clk.Set(t); return h }

// payload sends newPayload for slot s's block.
func (h *harness) payload(bn string, s int) *Change {
	_, c := h.tr.Observe(bn, Observation{PayloadTimestamp: slotTS(s)})
	return c
}

// head sends forkchoiceUpdated naming slot s's block (resolved).
func (h *harness) head(bn string, s int) *Change {
	_, c := h.tr.Observe(bn, Observation{HeadTimestamp: slotTS(s), HeadKnown: true})
	return c
}

// block sends newPayload then forkchoiceUpdated for slot s's block, at the current time.
func (h *harness) block(bn string, s int) {
	h.payload(bn, s)
	h.head(bn, s)
}

func (h *harness) wantWriter(want string) {
	h.t.Helper()
	if got, ok := h.tr.Writer(); !ok || got != want {
		h.t.Fatalf("at %s: Writer() = %q, %v; want %q", h.clk.Now().Sub(genesis), got, ok, want)
	}
}

// wantChanges checks the changes the hook saw, as "from>to:reason".
func (h *harness) wantChanges(want ...string) {
	h.t.Helper()
	got := make([]string, len(h.hooked))
	for i, c := range h.hooked {
		got[i] = fmt.Sprintf("%s>%s:%s", c.From, c.To, c.Reason)
	}
	if !slices.Equal(got, want) {
		h.t.Fatalf("changes = %q, want %q", got, want)
	}
}

func (h *harness) bn(name string) BN {
	h.t.Helper()
	for _, b := range h.tr.Snapshot() {
		if b.Name == name {
			return b
		}
	}
	h.t.Fatalf("no beacon node %q in snapshot", name)
	return BN{}
}

func TestFirstBeaconNode(t *testing.T) {
	tests := []struct {
		name  string
		first Observation
		want  []string // changes once b has sent a block at the same slot
	}{
		{"newPayload", Observation{PayloadTimestamp: slotTS(10)}, []string{">a:first beacon node"}},
		{"forkchoiceUpdated resolved", Observation{HeadTimestamp: slotTS(10), HeadKnown: true}, []string{">a:first beacon node"}},
		// A first node that has shown no head writes until a node with a head arrives.
		{"exchangeCapabilities", Observation{}, []string{">a:first beacon node", "a>b:no head known"}},
		{"forkchoiceUpdated unresolved", Observation{HeadKnown: true}, []string{">a:first beacon node", "a>b:no head known"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig()).at(slotStart(10).Add(100 * time.Millisecond))
			if w, ok := h.tr.Writer(); ok || w != "" {
				t.Fatalf("Writer() before any request = %q, %v; want none", w, ok)
			}
			if h.tr.IsWriter("a") {
				t.Fatal("IsWriter(a) before any request")
			}
			w, c := h.tr.Observe("a", tt.first)
			want := &Change{From: "", To: "a", Reason: ReasonFirst, At: h.clk.Now()}
			if w != "a" || !reflect.DeepEqual(c, want) {
				t.Fatalf("Observe = %q, %+v; want a, %+v", w, c, want)
			}
			if !h.tr.IsWriter("a") || h.tr.IsWriter("b") {
				t.Fatal("IsWriter disagrees with Observe")
			}
			// A second node level with the first never takes the role from it.
			h.block("b", 10)
			h.wantChanges(tt.want...)
		})
	}
}

func TestRacingNodesNeverSwap(t *testing.T) {
	type arrival struct {
		at  time.Duration // after the slot start
		bn  string
		fcu bool
	}
	// Each pattern returns one slot's arrivals; the first slot always starts with "a".
	tests := []struct {
		name    string
		pattern func(s int, r *rand.Rand) []arrival
	}{
		{"writer a few ms late every slot", func(int, *rand.Rand) []arrival {
			return []arrival{{300 * time.Millisecond, "b", false}, {305 * time.Millisecond, "a", false}, {340 * time.Millisecond, "b", true}, {345 * time.Millisecond, "a", true}}
		}},
		{"writer early every slot", func(int, *rand.Rand) []arrival {
			return []arrival{{300 * time.Millisecond, "a", false}, {303 * time.Millisecond, "b", false}, {340 * time.Millisecond, "a", true}, {343 * time.Millisecond, "b", true}}
		}},
		{"peer's head before writer's payload", func(int, *rand.Rand) []arrival {
			return []arrival{{300 * time.Millisecond, "b", false}, {320 * time.Millisecond, "b", true}, {330 * time.Millisecond, "a", false}, {350 * time.Millisecond, "a", true}}
		}},
		{"alternating", func(s int, _ *rand.Rand) []arrival {
			first, second := "a", "b"
			if s%2 == 1 {
				first, second = second, first
			}
			return []arrival{{300 * time.Millisecond, first, false}, {305 * time.Millisecond, second, false}, {340 * time.Millisecond, first, true}, {345 * time.Millisecond, second, true}}
		}},
		{"random jitter up to one second", func(_ int, r *rand.Rand) []arrival {
			var out []arrival
			for _, bn := range []string{"a", "b"} {
				np := time.Duration(r.IntN(1000)) * time.Millisecond
				out = append(out, arrival{np, bn, false}, arrival{np + time.Duration(r.IntN(50)+1)*time.Millisecond, bn, true})
			}
			return out
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			r := rand.New(rand.NewPCG(1, 2))
			h.at(slotStart(0)).block("a", 0)
			for s := 1; s <= 100; s++ {
				arr := tt.pattern(s, r)
				slices.SortStableFunc(arr, func(x, y arrival) int { return int(x.at - y.at) })
				for _, a := range arr {
					h.at(slotStart(s).Add(a.at))
					if a.fcu {
						h.head(a.bn, s)
					} else {
						h.payload(a.bn, s)
					}
					if !h.tr.IsWriter("a") {
						t.Fatalf("slot %d: %s's %v made b the writer", s, a.bn, a)
					}
				}
			}
			h.wantChanges(">a:first beacon node")
			for _, b := range h.tr.Snapshot() {
				if !b.Healthy {
					t.Errorf("%s unhealthy: %s", b.Name, b.Unhealthy)
				}
			}
		})
	}
}

func TestSilenceFailover(t *testing.T) {
	silence := testConfig().SilenceTimeout
	tests := []struct {
		name       string
		after      time.Duration // after the writer's last request
		call       string        // how the tracker is asked: "observe" (b's request) or "iswriter"
		wantWriter string
	}{
		{"b's request at exactly the timeout", silence, "observe", "a"},
		{"b's request 1ns after the timeout", silence + time.Nanosecond, "observe", "b"},
		{"IsWriter at exactly the timeout", silence, "iswriter", "a"},
		{"IsWriter 1ns after the timeout", silence + time.Nanosecond, "iswriter", "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			// a stops; b carries on with the next slot.
			last := slotStart(10)
			h.at(slotStart(11)).block("b", 11)
			h.at(last.Add(tt.after))
			switch tt.call {
			case "observe":
				w, c := h.tr.Observe("b", Observation{})
				if w != tt.wantWriter {
					t.Fatalf("Observe(b) writer = %q, want %q", w, tt.wantWriter)
				}
				if (c != nil) != (tt.wantWriter == "b") {
					t.Fatalf("Observe(b) change = %+v", c)
				}
			case "iswriter":
				if got := h.tr.IsWriter("a"); got != (tt.wantWriter == "a") {
					t.Fatalf("IsWriter(a) = %v, want %v", got, tt.wantWriter == "a")
				}
			}
			h.wantWriter(tt.wantWriter)
			if tt.wantWriter == "b" {
				h.wantChanges(">a:first beacon node", "a>b:silent")
				if c := h.hooked[1]; !c.At.Equal(last.Add(tt.after)) {
					t.Errorf("change at %v, want %v", c.At, last.Add(tt.after))
				}
				if a := h.bn("a"); a.Healthy || a.Unhealthy != ReasonSilent {
					t.Errorf("a: healthy=%v unhealthy=%q, want silent", a.Healthy, a.Unhealthy)
				}
			} else {
				h.wantChanges(">a:first beacon node")
			}
		})
	}
}

func TestWallClockLag(t *testing.T) {
	maxLag := testConfig().MaxWallLag
	tests := []struct {
		name       string
		maxLag     time.Duration
		bHead      int           // b's head slot; a's head stays at slot 10
		after      time.Duration // after a's head's timestamp; both keep talking
		wantWriter string
		wantReason Reason // a's health
	}{
		{"lag exactly the bound", maxLag, 11, maxLag, "a", ""},
		{"lag 1ns over the bound", maxLag, 11, maxLag + time.Nanosecond, "b", ReasonWallLag},
		{"check disabled", 0, 11, time.Hour, "a", ""},
		{"all behind: writer keeps the role on a tie", maxLag, 10, maxLag + time.Second, "a", ReasonWallLag},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.MaxWallLag = tt.maxLag
			h := newHarness(t, cfg)
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			h.at(slotStart(11)).block("b", tt.bHead)
			// Both keep talking every second; a keeps announcing its old head.
			end := slotStart(10).Add(tt.after)
			for now := slotStart(11); now.Before(end); now = now.Add(time.Second) {
				h.at(now).head("b", tt.bHead)
				h.head("a", 10)
				h.wantWriter("a")
			}
			h.at(end)
			// The writer's own request is the one that finds it late.
			w, _ := h.tr.Observe("a", Observation{HeadTimestamp: slotTS(10), HeadKnown: true})
			if w != tt.wantWriter {
				t.Fatalf("writer = %q, want %q", w, tt.wantWriter)
			}
			if a := h.bn("a"); a.Unhealthy != tt.wantReason {
				t.Errorf("a unhealthy = %q, want %q", a.Unhealthy, tt.wantReason)
			}
			if tt.wantWriter == "b" {
				h.wantChanges(">a:first beacon node", "a>b:behind wall clock")
			} else {
				h.wantChanges(">a:first beacon node")
			}
		})
	}
}

func TestPeerAhead(t *testing.T) {
	tests := []struct {
		name       string
		margin     time.Duration
		ahead      int // slots b is ahead of a
		bExternal  External
		wantWriter string
	}{
		{"one slot, margin one slot", 2 * time.Second, 1, External{}, "a"},
		{"two slots, margin one slot", 2 * time.Second, 2, External{}, "b"},
		{"exactly the margin", 4 * time.Second, 2, External{}, "a"},
		{"over a margin that is not a whole slot", 3 * time.Second, 2, External{}, "b"},
		{"unhealthy peer far ahead does not take over", 2 * time.Second, 3, External{Known: true, Syncing: true}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.PeerMargin = tt.margin
			cfg.MaxWallLag = time.Minute // only the peer rule is under test
			h := newHarness(t, cfg)
			h.tr.SetExternal("b", tt.bExternal)
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			for s := 11; s <= 10+tt.ahead; s++ {
				h.at(slotStart(s)).head("a", 10) // the writer keeps talking, at its old head
				h.block("b", s)
				if s < 10+tt.ahead {
					h.wantWriter("a")
				}
			}
			// A peer ahead takes the role once it has been ahead for more than half a slot.
			h.wantWriter("a")
			h.at(slotStart(10 + tt.ahead).Add(slot / 2))
			h.wantWriter("a")
			h.at(slotStart(10 + tt.ahead).Add(slot/2 + time.Nanosecond))
			h.wantWriter(tt.wantWriter)
			if tt.wantWriter == "b" {
				h.wantChanges(">a:first beacon node", "a>b:peer ahead")
			} else {
				h.wantChanges(">a:first beacon node")
			}
		})
	}
}

func TestNoHealthyNode(t *testing.T) {
	syncing := External{Known: true, Syncing: true}
	t.Run("most advanced keeps writing, writer wins ties and the margin", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.tr.SetExternal("a", syncing)
		h.tr.SetExternal("b", syncing)
		h.at(slotStart(10)).block("a", 10)
		h.block("b", 10)
		h.wantWriter("a") // tie
		h.at(slotStart(11)).block("b", 11)
		h.head("a", 10)
		h.wantWriter("a") // within the margin
		h.at(slotStart(12)).head("a", 10)
		h.block("b", 12)
		h.wantWriter("a") // more than the margin ahead, for half a slot at most
		h.at(slotStart(12).Add(slot/2 + 1))
		h.wantWriter("b") // and for longer
		h.wantChanges(">a:first beacon node", "a>b:peer ahead")
		for _, b := range h.tr.Snapshot() {
			if b.Healthy {
				t.Errorf("%s healthy, want syncing", b.Name)
			}
		}
	})
	t.Run("everyone silent keeps the writer", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.at(slotStart(10)).block("a", 10)
		h.block("b", 10)
		h.at(slotStart(10).Add(time.Hour))
		h.wantWriter("a")
		if !h.tr.IsWriter("a") {
			t.Fatal("IsWriter(a) = false")
		}
		// The first node to talk again takes the role from a silent writer.
		h.head("b", 10)
		h.wantWriter("b")
		h.wantChanges(">a:first beacon node", "a>b:silent")
		if b := h.bn("b"); b.Unhealthy != ReasonWallLag {
			t.Errorf("b unhealthy = %q, want %q", b.Unhealthy, ReasonWallLag)
		}
	})
	t.Run("a talking node beats a silent one even with a lower head", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.at(slotStart(10)).block("a", 20)
		h.tr.Observe("b", Observation{HeadKnown: true}) // unresolved head: no head at all
		h.wantWriter("a")
		h.at(slotStart(10).Add(4 * time.Second))
		h.tr.Observe("b", Observation{})
		h.wantWriter("b")
		h.wantChanges(">a:first beacon node", "a>b:silent")
	})
	t.Run("never no writer", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.tr.Observe("a", Observation{})
		for i := range 50 {
			h.clk.Advance(time.Duration(i) * time.Second)
			if _, ok := h.tr.Writer(); !ok {
				t.Fatalf("no writer after %d steps", i)
			}
		}
	})
}

func TestOldWriterRecovers(t *testing.T) {
	h := newHarness(t, testConfig())
	h.at(slotStart(10)).block("a", 10)
	h.block("b", 10)
	// a goes away for three slots; b takes over at its first request after the timeout.
	for s := 11; s <= 13; s++ {
		h.at(slotStart(s)).block("b", s)
	}
	h.wantWriter("b")
	// a comes back healthy and level: b keeps the role, whoever is first.
	for s := 14; s <= 20; s++ {
		h.at(slotStart(s)).block("a", s)
		h.block("b", s)
		h.wantWriter("b")
		if a := h.bn("a"); !a.Healthy {
			t.Fatalf("slot %d: a unhealthy: %s", s, a.Unhealthy)
		}
	}
	// b goes silent: a takes the role back at its first request after the timeout.
	h.at(slotStart(21)).block("a", 21)
	h.wantWriter("b")
	h.at(slotStart(22)).block("a", 22)
	h.wantWriter("a")
	h.wantChanges(">a:first beacon node", "a>b:silent", "b>a:silent")
}

func TestStaleHead(t *testing.T) {
	t.Run("restarting node is never elected", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.at(slotStart(20)).block("a", 20)
		h.tr.Observe("b", Observation{HeadTimestamp: slotTS(5), HeadKnown: true})
		for s := 21; s <= 30; s++ {
			h.at(slotStart(s)).block("a", s)
			h.payload("b", s) // imports fresh gossip blocks
			h.tr.Observe("b", Observation{HeadTimestamp: slotTS(5 + s - 20), HeadKnown: true})
			h.wantWriter("a")
		}
		b := h.bn("b")
		if b.Unhealthy != ReasonWallLag || b.HeadTimestamp != slotTS(15) || b.MaxPayloadTimestamp != slotTS(30) {
			t.Errorf("b = %+v; want behind wall clock at slot 15 with payloads up to slot 30", b)
		}
		h.wantChanges(">a:first beacon node")
	})
	t.Run("unresolved heads leave the head where it was", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.at(slotStart(20)).block("a", 20)
		h.tr.Observe("b", Observation{HeadKnown: true})
		h.payload("b", 21) // ahead, but fork choice is what counts once known
		h.wantWriter("a")
		if b := h.bn("b"); b.HeadTimestamp != 0 || b.Unhealthy != ReasonNoHead || !b.HeadFromForkchoice {
			t.Errorf("b = %+v; want no head", b)
		}
		h.head("b", 20)
		h.tr.Observe("b", Observation{HeadKnown: true})
		if b := h.bn("b"); b.HeadTimestamp != slotTS(20) || !b.Healthy {
			t.Errorf("b = %+v; want healthy at slot 20", b)
		}
	})
	tests := []struct {
		name       string
		staleSlot  int // the writer restarts and announces this head at slot 21; b is at 21
		wantReason string
	}{
		{"writer restarts two slots back", 19, "a>b:peer ahead"},
		{"writer restarts far back", 5, "a>b:behind wall clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.at(slotStart(20)).block("a", 20)
			h.block("b", 20)
			h.at(slotStart(21)).block("b", 21)
			h.head("a", tt.staleSlot)
			h.wantWriter("b")
			h.wantChanges(">a:first beacon node", tt.wantReason)
			// b is level-or-ahead from now on; a catching up does not take the role back.
			h.at(slotStart(22)).block("a", 22)
			h.block("b", 22)
			h.wantWriter("b")
		})
	}
}

func TestExternal(t *testing.T) {
	tests := []struct {
		name        string
		ext         External
		wantHealthy bool
	}{
		{"syncing", External{Known: true, Syncing: true}, false},
		{"optimistic", External{Known: true, Optimistic: true}, false},
		{"offline", External{Known: true, Offline: true}, false},
		{"execution client offline", External{Known: true, ELOffline: true}, false},
		{"healthy", External{Known: true, HeadSlot: 10}, true},
		{"unknown is ignored", External{Syncing: true, Offline: true}, true},
		{"head slot without the genesis time is not progress", External{Known: true, HeadSlot: 1 << 40}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, testConfig())
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			at := slotStart(10).Add(time.Second)
			h.at(at)
			tt.ext.At = at
			// b reported first: whatever it says, it must not take the role from a healthy writer.
			if c := h.tr.SetExternal("b", tt.ext); c != nil {
				t.Fatalf("SetExternal(b) = %+v, want no change", c)
			}
			c := h.tr.SetExternal("a", tt.ext)
			if tt.wantHealthy {
				if c != nil {
					t.Fatalf("SetExternal(a) = %+v, want no change", c)
				}
				h.wantWriter("a")
			} else {
				h.tr.SetExternal("b", External{Known: true, At: at})
				h.wantWriter("b")
				h.wantChanges(">a:first beacon node", "a>b:unhealthy per beacon api")
				if a := h.bn("a"); a.Healthy || a.Unhealthy != ReasonExternal || a.External != tt.ext {
					t.Errorf("a = %+v; want unhealthy per beacon api with External %+v", a, tt.ext)
				}
				// a recovering does not take the role back.
				h.tr.SetExternal("a", External{Known: true, At: at})
				h.wantWriter("b")
			}
			if c != nil && (c.From != "a" || c.To != "b" || c.Reason != ReasonExternal || !c.At.Equal(at)) {
				t.Fatalf("SetExternal(a) = %+v", c)
			}
			if a := h.bn("a"); !a.Healthy {
				t.Errorf("a = %+v; want healthy", a)
			}
		})
	}
	t.Run("reported before its first request", func(t *testing.T) {
		h := newHarness(t, testConfig())
		h.at(slotStart(10))
		if c := h.tr.SetExternal("c", External{Known: true}); c != nil {
			t.Fatalf("SetExternal(c) = %+v, want no change", c)
		}
		if w, ok := h.tr.Writer(); ok {
			t.Fatalf("Writer() = %q; a node without requests must not be elected", w)
		}
		c := h.bn("c")
		if c.Requests != 0 || c.Healthy || c.Unhealthy != ReasonSilent || c.Writer || !c.FirstSeen.IsZero() {
			t.Errorf("c = %+v", c)
		}
		h.block("c", 10)
		h.wantWriter("c")
	})
}

func TestSnapshot(t *testing.T) {
	h := newHarness(t, testConfig())
	t0 := slotStart(10).Add(500 * time.Millisecond)
	h.at(t0).block("b", 10)
	h.at(t0.Add(10*time.Millisecond)).payload("a", 10)
	ext := External{Known: true, HeadSlot: 10, SyncDistance: 0, At: t0}
	h.tr.SetExternal("a", ext)
	h.at(slotStart(11).Add(time.Second))
	h.payload("b", 11) // fork choice still at 10
	got := h.tr.Snapshot()
	want := []BN{
		{
			Name: "a", FirstSeen: t0.Add(10 * time.Millisecond), LastSeen: t0.Add(10 * time.Millisecond), Requests: 1,
			HeadTimestamp: slotTS(10), MaxPayloadTimestamp: slotTS(10), Healthy: true, LagSlots: 1.5, External: ext,
		},
		{
			Name: "b", FirstSeen: t0, LastSeen: slotStart(11).Add(time.Second), Requests: 3,
			HeadTimestamp: slotTS(10), HeadFromForkchoice: true, MaxPayloadTimestamp: slotTS(11), Healthy: true, Writer: true, LagSlots: 1.5,
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Snapshot() =\n%+v\nwant\n%+v", got, want)
	}
	got[0].Name = "changed"
	if h.tr.Snapshot()[0].Name != "a" {
		t.Fatal("Snapshot shares memory with the tracker")
	}
	// Both silent.
	h.at(slotStart(11).Add(4*time.Second + time.Millisecond))
	for _, b := range h.tr.Snapshot() {
		if b.Unhealthy != ReasonSilent || b.Healthy {
			t.Errorf("%s: healthy=%v unhealthy=%q, want silent", b.Name, b.Healthy, b.Unhealthy)
		}
	}
}

func TestOnChange(t *testing.T) {
	h := newHarness(t, testConfig())
	var second []Change
	h.tr.OnChange(nil)
	h.tr.OnChange(func(c Change) { second = append(second, c) })
	var returned []Change
	keep := func(c *Change) {
		if c != nil {
			returned = append(returned, *c)
		}
	}
	h.at(slotStart(10))
	_, c := h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(10)})
	keep(c)
	_, c = h.tr.Observe("b", Observation{PayloadTimestamp: slotTS(10)})
	keep(c)
	h.at(slotStart(11))
	_, c = h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(10)})
	keep(c)
	h.at(slotStart(12))
	_, c = h.tr.Observe("b", Observation{PayloadTimestamp: slotTS(12)}) // peer ahead
	keep(c)
	h.at(slotStart(12).Add(slot/2 + 1)) // for more than half a slot
	_, c = h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(10)})
	keep(c)
	h.at(slotStart(12).Add(slot/2 + 500*time.Millisecond))
	keep(h.tr.SetExternal("b", External{Known: true, Optimistic: true}))
	_, c = h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(12)})
	keep(c)
	keep(h.tr.Remove("a"))
	keep(h.tr.Remove("b"))
	keep(h.tr.Remove("nobody"))
	h.wantChanges(
		">a:first beacon node",
		"a>b:peer ahead",
		"b>a:unhealthy per beacon api",
		"a>b:removed",
		"b>:removed",
	)
	if !reflect.DeepEqual(h.hooked, returned) || !reflect.DeepEqual(second, returned) {
		t.Fatalf("hooks saw %+v and %+v, callers got %+v", h.hooked, second, returned)
	}
	if w, ok := h.tr.Writer(); ok {
		t.Fatalf("Writer() = %q after removing every node", w)
	}
	// Logged once per change, at Info, with the reason.
	logs := h.logs.String()
	if n := strings.Count(logs, `msg="writer changed"`); n != len(returned) {
		t.Errorf("%d writer-change log lines, want %d:\n%s", n, len(returned), logs)
	}
	for _, c := range returned {
		if !strings.Contains(logs, fmt.Sprintf("reason=%q", c.Reason)) && !strings.Contains(logs, "reason="+string(c.Reason)) {
			t.Errorf("no log line with reason %q", c.Reason)
		}
	}
	if !strings.Contains(logs, "level=INFO") || strings.Contains(logs, "level=WARN") {
		t.Errorf("unexpected log levels:\n%s", logs)
	}
}

func TestEmptyNameIgnored(t *testing.T) {
	h := newHarness(t, testConfig())
	if w, c := h.tr.Observe("", Observation{PayloadTimestamp: slotTS(1)}); w != "" || c != nil {
		t.Fatalf("Observe(\"\") = %q, %+v", w, c)
	}
	if n := len(h.tr.Snapshot()); n != 0 {
		t.Fatalf("Snapshot has %d nodes", n)
	}
}

func TestTiesGoToFirstSeenThenName(t *testing.T) {
	h := newHarness(t, testConfig())
	h.at(slotStart(10))
	h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(10)})
	h.clk.Advance(time.Millisecond)
	h.tr.Observe("d", Observation{PayloadTimestamp: slotTS(10)})
	h.tr.Observe("c", Observation{PayloadTimestamp: slotTS(10)})
	h.tr.Observe("b", Observation{PayloadTimestamp: slotTS(10)}) // b, c, d first seen together
	h.tr.SetExternal("a", External{Known: true, Syncing: true})
	h.wantWriter("b") // level and healthy, seen at the same time: by name
	h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(10)})
	h.tr.SetExternal("a", External{})
	h.tr.SetExternal("b", External{Known: true, Syncing: true})
	h.wantWriter("a") // a was seen first
	h.wantChanges(">a:first beacon node", "a>b:unhealthy per beacon api", "b>a:unhealthy per beacon api")
}

// TestConcurrent runs every method at once under -race and checks that the changes reach the
// hooks in order (each From is the previous To) and that each reaches exactly one caller.
func TestConcurrent(t *testing.T) {
	clk := clock.NewManual(slotStart(10))
	tr, err := NewTracker(testConfig(), clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var hooked []Change
	tr.OnChange(func(c Change) { mu.Lock(); hooked = append(hooked, c); mu.Unlock() })
	var retMu sync.Mutex
	var returned []Change
	var wg sync.WaitGroup
	for g := range 4 {
		bn := fmt.Sprintf("bn%d", g)
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 2000 {
				var c *Change
				switch r.IntN(6) {
				case 0:
					_, c = tr.Observe(bn, Observation{PayloadTimestamp: slotTS(10 + i/50 + r.IntN(3))})
				case 1:
					_, c = tr.Observe(bn, Observation{HeadTimestamp: slotTS(10 + i/50 + r.IntN(3)), HeadKnown: true})
				case 2:
					tr.IsWriter(bn)
				case 3:
					c = tr.SetExternal(bn, External{Known: true, Syncing: r.IntN(4) == 0})
				case 4:
					tr.Snapshot()
				case 5:
					clk.Advance(time.Duration(r.IntN(400)) * time.Millisecond)
				}
				if c != nil {
					retMu.Lock()
					returned = append(returned, *c)
					retMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	// IsWriter and Snapshot may change the writer too, without returning the change.
	for _, c := range returned {
		if !slices.Contains(hooked, c) {
			t.Errorf("change %+v returned but not hooked", c)
		}
	}
	if len(hooked) < 2 {
		t.Fatalf("only %d changes: the test does not exercise failover", len(hooked))
	}
	for i := 1; i < len(hooked); i++ {
		if hooked[i].From != hooked[i-1].To {
			t.Fatalf("change %d %+v does not follow %+v", i, hooked[i], hooked[i-1])
		}
	}
	if w, ok := tr.Writer(); !ok || w != hooked[len(hooked)-1].To {
		t.Errorf("Writer() = %q, %v; last change %+v", w, ok, hooked[len(hooked)-1])
	}
}

func TestObserveDoesNotAllocate(t *testing.T) {
	h := newHarness(t, testConfig())
	h.at(slotStart(10)).block("a", 10)
	h.block("b", 10)
	s := 10
	allocs := testing.AllocsPerRun(1000, func() {
		s++
		h.clk.Set(slotStart(s))
		h.tr.Observe("b", Observation{PayloadTimestamp: slotTS(s)})
		h.tr.Observe("a", Observation{PayloadTimestamp: slotTS(s)})
		h.tr.Observe("b", Observation{HeadTimestamp: slotTS(s), HeadKnown: true})
		h.tr.Observe("a", Observation{HeadTimestamp: slotTS(s), HeadKnown: true})
		h.tr.IsWriter("a")
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per slot, want 0", allocs)
	}
	h.wantChanges(">a:first beacon node")
}

func BenchmarkObserve(b *testing.B) {
	for _, nodes := range []int{2, 16} {
		b.Run(fmt.Sprintf("bns=%d", nodes), func(b *testing.B) {
			clk := clock.NewManual(slotStart(0))
			tr, err := NewTracker(testConfig(), clk, nil)
			if err != nil {
				b.Fatal(err)
			}
			names := make([]string, nodes)
			for i := range names {
				names[i] = fmt.Sprintf("bn%02d", i)
				tr.Observe(names[i], Observation{PayloadTimestamp: slotTS(0)})
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				s := i / (2 * nodes)
				if i%(2*nodes) == 0 {
					clk.Set(slotStart(s))
				}
				o := Observation{PayloadTimestamp: slotTS(s)}
				if i%2 == 1 {
					o = Observation{HeadTimestamp: slotTS(s), HeadKnown: true}
				}
				tr.Observe(names[(i/2)%nodes], o)
				i++
			}
		})
	}
}

func BenchmarkObserveParallel(b *testing.B) {
	clk := clock.Real{}
	tr, err := NewTracker(DefaultConfig(), clk, nil)
	if err != nil {
		b.Fatal(err)
	}
	head := uint64(time.Now().Unix())
	for i := range 16 {
		tr.Observe(fmt.Sprintf("bn%02d", i), Observation{HeadTimestamp: head, HeadKnown: true})
	}
	b.ReportAllocs()
	var next sync.Mutex
	id := 0
	b.RunParallel(func(pb *testing.PB) {
		next.Lock()
		name := fmt.Sprintf("bn%02d", id%16)
		id++
		next.Unlock()
		for pb.Next() {
			tr.Observe(name, Observation{HeadTimestamp: head, HeadKnown: true})
		}
	})
}

// TestExternalHeadSlot: with the genesis time known, the beacon API's head slot counts as
// the node's head when it is ahead of the Engine API head and the API was reached.
func TestExternalHeadSlot(t *testing.T) {
	withGenesis := testConfig()
	withGenesis.Genesis = uint64(genesis.Unix())
	tests := []struct {
		name       string
		cfg        Config
		ext        External // b's report; a and b both showed slot 10 over the Engine API
		wantWriter string
		wantHead   uint64 // b's head timestamp
		fromAPI    bool
	}{
		{"ahead by two slots takes the role", withGenesis, External{Known: true, HeadSlot: 12}, "b", slotTS(12), true},
		{"ahead by one slot does not", withGenesis, External{Known: true, HeadSlot: 11}, "a", slotTS(11), true},
		{"behind the Engine API head is ignored", withGenesis, External{Known: true, HeadSlot: 3}, "a", slotTS(10), false},
		{"without the genesis time it is only shown", testConfig(), External{Known: true, HeadSlot: 12}, "a", slotTS(10), false},
		{"an unreachable API does not count", withGenesis, External{Known: true, Offline: true, HeadSlot: 12}, "a", slotTS(10), false},
		{"an unknown report does not count", withGenesis, External{HeadSlot: 12}, "a", slotTS(10), false},
		{"a nonsense slot is clamped", withGenesis, External{Known: true, HeadSlot: 1 << 62}, "b", maxTimestamp, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			h.at(slotStart(10).Add(time.Second))
			h.tr.SetExternal("b", tt.ext)
			h.wantWriter("a") // a may still be importing the block b announced
			h.at(slotStart(10).Add(time.Second + slot/2 + 1))
			h.wantWriter(tt.wantWriter)
			b := h.bn("b")
			if b.HeadTimestamp != tt.wantHead || b.HeadFromBeaconAPI != tt.fromAPI {
				t.Fatalf("b = %+v; want head %d from the beacon API %v", b, tt.wantHead, tt.fromAPI)
			}
		})
	}
	t.Run("a head slot is progress for a node whose heads are unresolved", func(t *testing.T) {
		h := newHarness(t, withGenesis)
		h.at(slotStart(10))
		h.tr.Observe("a", Observation{HeadKnown: true}) // an unresolved head: no head yet
		if a := h.bn("a"); a.Healthy || a.Unhealthy != ReasonNoHead {
			t.Fatalf("a = %+v; want no head", a)
		}
		h.tr.SetExternal("a", External{Known: true, HeadSlot: 10})
		if a := h.bn("a"); !a.Healthy || a.HeadTimestamp != slotTS(10) || a.HeadSlot != 10 {
			t.Fatalf("a = %+v; want healthy at slot 10", a)
		}
		// Ten slots later the API still says slot 10: behind the wall clock.
		h.at(slotStart(20))
		h.tr.Observe("a", Observation{HeadKnown: true})
		if a := h.bn("a"); a.Unhealthy != ReasonWallLag || a.LagSlots != 10 {
			t.Fatalf("a = %+v; want behind wall clock by 10 slots", a)
		}
		// The API goes down: its head no longer counts.
		h.tr.SetExternal("a", External{Known: true, Offline: true, HeadSlot: 20})
		if a := h.bn("a"); a.HeadTimestamp != 0 || a.Unhealthy != ReasonExternal {
			t.Fatalf("a = %+v; want no head, unhealthy per beacon api", a)
		}
	})
}

func TestSlotMath(t *testing.T) {
	c := Config{SlotDuration: 12 * time.Second, Genesis: 1606824023}
	tests := []struct {
		name   string
		cfg    Config
		slot   uint64
		ts     uint64
		tsOK   bool
		slotOK bool
	}{
		{"mainnet Cancun", c, 8626176, 1710338135, true, true},
		{"genesis", c, 0, 1606824023, true, true},
		{"no genesis", Config{SlotDuration: 12 * time.Second}, 1, 0, false, false},
		{"sub-second slots", Config{SlotDuration: 500 * time.Millisecond, Genesis: 100}, 4, 102, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ts, ok := tt.cfg.SlotTime(tt.slot); ts != tt.ts || ok != tt.tsOK {
				t.Errorf("SlotTime(%d) = %d, %v; want %d, %v", tt.slot, ts, ok, tt.ts, tt.tsOK)
			}
			if s, ok := tt.cfg.SlotAt(tt.ts); ok != tt.slotOK || (ok && s != tt.slot) {
				t.Errorf("SlotAt(%d) = %d, %v; want %d, %v", tt.ts, s, ok, tt.slot, tt.slotOK)
			}
		})
	}
	if s, ok := c.SlotAt(c.Genesis - 1); ok {
		t.Errorf("SlotAt(before genesis) = %d, true", s)
	}
	if ts, _ := c.SlotTime(1 << 63); ts != maxTimestamp {
		t.Errorf("SlotTime(2^63) = %d, want clamped to %d", ts, uint64(maxTimestamp))
	}
}
