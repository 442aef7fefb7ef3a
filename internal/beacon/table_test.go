package beacon

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// tableConfig is testConfig (3 s silence) with room for two others and a 30 s expiry.
func tableConfig(configured ...string) Config {
	c := testConfig()
	c.Configured, c.MaxOthers, c.IdleExpiry = configured, 2, 30*time.Second
	return c
}

func (h *harness) names() string {
	var out []string
	for _, b := range h.tr.Snapshot() {
		out = append(out, b.Name)
	}
	return strings.Join(out, ",")
}

func (h *harness) wantTable(names string, refused, expired, evicted uint64) {
	h.t.Helper()
	if got := h.names(); got != names {
		h.t.Fatalf("at %s: table = %q, want %q", h.clk.Now().Sub(genesis), got, names)
	}
	tb := h.tr.Table()
	if tb.Refused != refused || tb.Expired != expired || tb.Evicted != evicted {
		h.t.Fatalf("at %s: refused, expired, evicted = %d, %d, %d; want %d, %d, %d",
			h.clk.Now().Sub(genesis), tb.Refused, tb.Expired, tb.Evicted, refused, expired, evicted)
	}
	if tb.Nodes != tb.Configured+tb.Others || tb.Others > tb.MaxOthers {
		h.t.Fatalf("table %+v: nodes are not configured + others, or others over the cap", tb)
	}
}

func TestTableBounds(t *testing.T) {
	tests := []struct {
		name string
		run  func(h *harness)
	}{
		{"a configured node is never forgotten", func(h *harness) {
			h.at(slotStart(10)).block("x", 10)
			h.block("cfg", 10)
			h.at(slotStart(10).Add(time.Hour))
			h.wantWriter("x")
			h.wantTable("cfg,x", 0, 0, 0) // x is the writer: kept
			h.block("y", 1810)            // y takes the role; x is forgotten at the next sweep
			h.wantWriter("y")
			h.at(slotStart(10).Add(time.Hour + 4*time.Second))
			h.wantTable("cfg,y", 0, 1, 0)
			if !h.bn("cfg").Configured || h.bn("y").Configured {
				h.t.Fatal("Configured flags wrong")
			}
		}},
		{"an other expires after the idle time, not before", func(h *harness) {
			h.at(slotStart(10)).block("w", 10)
			h.payload("x", 10)
			h.at(slotStart(10).Add(30*time.Second)).block("w", 25)
			h.wantTable("w,x", 0, 0, 0) // exactly the expiry: kept
			h.at(slotStart(10).Add(30*time.Second+30*time.Second/8+time.Millisecond)).block("w", 26)
			h.wantTable("w", 0, 1, 0)
		}},
		{"the writer is not forgotten while every node is silent", func(h *harness) {
			h.at(slotStart(10)).block("w", 10)
			h.at(slotStart(10).Add(time.Hour))
			h.wantWriter("w")
			h.wantTable("w", 0, 0, 0)
		}},
		{"a full table refuses a new node while every other talks", func(h *harness) {
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			h.block("c", 12) // c is ahead but refused (both its requests): never elected
			h.at(slotStart(11)).block("a", 11)
			h.block("b", 11)
			h.block("c", 12)
			h.at(slotStart(11).Add(time.Second)).wantWriter("a")
			h.wantTable("a,b", 4, 0, 0)
			h.block("cfg", 13) // a configured node always has its place
			h.wantTable("a,b,cfg", 4, 0, 0)
			h.at(slotStart(11).Add(2500 * time.Millisecond)).wantWriter("cfg")
		}},
		{"a full table gives a silent other's place to a new node", func(h *harness) {
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			h.at(slotStart(10).Add(2*time.Second)).block("a", 11)
			h.at(slotStart(10).Add(3*time.Second+time.Millisecond)).block("c", 11) // b silent: evicted
			h.wantTable("a,c", 0, 0, 1)
			h.block("d", 11) // a and c talk: both of d's requests refused
			h.wantTable("a,c", 2, 0, 1)
		}},
		{"the writer keeps its place even when silent and oldest", func(h *harness) {
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			h.at(slotStart(10).Add(4*time.Second)).block("c", 12) // a (writer) and b silent: b goes
			h.wantTable("a,c", 0, 0, 1)
			h.wantWriter("c")
		}},
		{"SetExternal is held to the same cap", func(h *harness) {
			h.at(slotStart(10)).block("a", 10)
			h.block("b", 10)
			h.tr.SetExternal("c", External{Known: true, HeadSlot: 10})
			h.wantTable("a,b", 1, 0, 0)
			h.tr.SetExternal("cfg", External{Known: true, HeadSlot: 10})
			h.wantTable("a,b,cfg", 1, 0, 0)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(newHarness(t, tableConfig("cfg")))
		})
	}
}

func TestTableRefusalsWarnOncePerMinute(t *testing.T) {
	h := newHarness(t, tableConfig())
	h.at(slotStart(10)).block("a", 10)
	h.block("b", 10)
	for i := range 10 {
		h.at(slotStart(10).Add(time.Duration(i)*time.Second/4)).block("a", 10)
		h.block("b", 10)
		h.payload(fmt.Sprint("new", i), 10)
	}
	h.at(slotStart(10).Add(time.Minute)).block("a", 40)
	h.block("b", 40)
	h.payload("late", 40)
	logs := h.logs.String()
	if n := strings.Count(logs, "beacon node table full"); n != 2 {
		t.Fatalf("%d warnings for 11 refusals over a minute, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs, "bn=new0") || !strings.Contains(logs, "refused_total=11") || !strings.Contains(logs, "level=WARN") {
		t.Fatalf("warnings do not name the first refused node and the total:\n%s", logs)
	}
}

// TestTableHundredThousandNames sends 100,000 distinct names, first all at once (each
// refused), then one every 50 ms (each evicting one that fell silent), and checks the
// table's size and the heap.
func TestTableHundredThousandNames(t *testing.T) {
	const names = 100_000
	cfg := testConfig()
	cfg.Configured = []string{"cfg"}
	h := newHarness(t, cfg)
	tr, err := NewTracker(cfg, h.clk, nil) // the harness keeps every log line in memory
	if err != nil {
		t.Fatal(err)
	}
	h.tr = tr
	h.at(slotStart(10)).block("cfg", 10)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := range names {
		if i == names/2 {
			h.wantTable(h.names(), names/2-DefaultMaxOthers, 0, 0)
		}
		if i >= names/2 {
			h.clk.Advance(50 * time.Millisecond)
		}
		bn := fmt.Sprintf("bn-%06d", i)
		if i%2 == 0 {
			h.tr.Observe(bn, Observation{PayloadTimestamp: slotTS(10)})
		} else {
			h.tr.Observe(bn, Observation{HeadTimestamp: slotTS(10), HeadKnown: true})
		}
		if i%20 == 0 { // the configured writer keeps talking, once a second in the second half
			h.tr.Observe("cfg", Observation{HeadTimestamp: slotTS(10), HeadKnown: true})
		}
	}
	took := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)

	tb := h.tr.Table()
	if tb.Nodes != 1+DefaultMaxOthers || tb.Others != DefaultMaxOthers || tb.Configured != 1 {
		t.Fatalf("table %+v, want the configured node and %d others", tb, DefaultMaxOthers)
	}
	if tb.Refused+tb.Evicted+uint64(tb.Others) != names || tb.Evicted == 0 {
		t.Fatalf("table %+v: refused + evicted + others != %d names", tb, names)
	}
	h.wantWriter("cfg")
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	const budget = 256 << 10 // 65 nodes of a few hundred bytes, and slack for the runtime
	if grew > budget {
		t.Fatalf("heap grew by %d bytes over 100,000 names, budget %d", grew, budget)
	}
	t.Logf("100,000 names in %s; heap %+d bytes; %+v", took, grew, tb)
}
