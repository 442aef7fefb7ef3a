package beacon

import (
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
)

func TestSlotConfig(t *testing.T) {
	tests := []struct {
		slot                     time.Duration
		silence, wallLag, margin time.Duration
	}{
		{12 * time.Second, 18 * time.Second, 36 * time.Second, 12 * time.Second},
		{6 * time.Second, 9 * time.Second, 18 * time.Second, 6 * time.Second},
		{2 * time.Second, 3 * time.Second, 6 * time.Second, 2 * time.Second},
		{250 * time.Millisecond, 375 * time.Millisecond, 750 * time.Millisecond, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		c := SlotConfig(tt.slot)
		want := Config{SlotDuration: tt.slot, SilenceTimeout: tt.silence, MaxWallLag: tt.wallLag, PeerMargin: tt.margin}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("SlotConfig(%s) = %+v, want %+v", tt.slot, c, want)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("SlotConfig(%s) invalid: %v", tt.slot, err)
		}
	}
	if !reflect.DeepEqual(DefaultConfig(), SlotConfig(12*time.Second)) {
		t.Errorf("DefaultConfig() = %+v, want SlotConfig(12s)", DefaultConfig())
	}
}

// arrival is one request of a slot-by-slot scenario.
type arrival struct {
	at   time.Duration // after the slot start
	bn   string
	fcu  bool // forkchoiceUpdated naming the slot's block; else newPayload of it
	ping bool // a request that shows no head (exchangeCapabilities, getBlobs …)
	back int  // for fcu: the head is this many slots before the slot's block
}

// slotScenario runs slots 0..slots-1 at the given slot length with the default thresholds
// in slots, and returns the changes after the first as "from>to:reason@slot".
func slotScenario(t *testing.T, slotLen time.Duration, slots int, plan func(s int) []arrival) (changes []string, tr *Tracker) {
	t.Helper()
	g := time.Unix(1_700_000_000, 0).UTC()
	clk := clock.NewManual(g)
	tr, err := NewTracker(SlotConfig(slotLen), clk, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	cur := 0
	tr.OnChange(func(c Change) {
		if c.Reason != ReasonFirst {
			changes = append(changes, fmt.Sprintf("%s>%s:%s@%d", c.From, c.To, c.Reason, cur))
		}
	})
	for s := range slots {
		cur = s
		arr := plan(s)
		slices.SortStableFunc(arr, func(x, y arrival) int { return int(x.at - y.at) })
		// Payload timestamps sit on slot starts; whole seconds for the slot lengths used.
		for _, a := range arr {
			ts := uint64(g.Add(time.Duration(s-a.back) * slotLen).Unix())
			clk.Set(g.Add(time.Duration(s)*slotLen + a.at))
			switch {
			case a.ping:
				tr.Observe(a.bn, Observation{})
			case a.fcu:
				tr.Observe(a.bn, Observation{HeadTimestamp: ts, HeadKnown: true})
			default:
				tr.Observe(a.bn, Observation{PayloadTimestamp: ts})
			}
		}
	}
	return changes, tr
}

// both is one slot of a and b each sending newPayload then forkchoiceUpdated, a first.
func both(slotLen time.Duration) []arrival {
	at := func(f float64) time.Duration { return time.Duration(f * float64(slotLen)) }
	return []arrival{np(at(0.10), "a"), np(at(0.11), "b"), fcu(at(0.12), "a"), fcu(at(0.13), "b")}
}

func np(at time.Duration, bn string) arrival  { return arrival{at: at, bn: bn} }
func fcu(at time.Duration, bn string) arrival { return arrival{at: at, bn: bn, fcu: true} }
func ping(at time.Duration, bn string) arrival {
	return arrival{at: at, bn: bn, ping: true}
}

// drop keeps the arrivals keep accepts.
func drop(arr []arrival, keep func(arrival) bool) []arrival {
	return slices.DeleteFunc(arr, func(a arrival) bool { return !keep(a) })
}

// Election thresholds follow the slot length: at 12 s and at 2 s slots, a writer whose
// stream is cut, or whose forkchoiceUpdated stream alone is cut while b keeps sending them,
// is replaced within two slots of its last request, and never on quiet slots.
func TestThresholdsInSlots(t *testing.T) {
	noFcuFromA := func(a arrival) bool { return a.bn != "a" || !a.fcu }
	tests := []struct {
		name        string
		plan        func(slotLen time.Duration, s int) []arrival
		want        []string
		wantUnheal  map[string]Reason // at the end
		wantHealthy []string
	}{
		{
			name: "steady",
			plan: func(l time.Duration, _ int) []arrival { return both(l) },
			want: nil, wantHealthy: []string{"a", "b"},
		},
		{
			name: "writer silent from slot 1",
			plan: func(l time.Duration, s int) []arrival {
				if s == 0 {
					return both(l)
				}
				return drop(both(l), func(a arrival) bool { return a.bn == "b" })
			},
			// a's last request is at 0.12 slots; b's request at 2.11 slots is the first past 1.5.
			want:       []string{"a>b:silent@2"},
			wantUnheal: map[string]Reason{"a": ReasonSilent},
		},
		{
			name: "writer's forkchoiceUpdated stream lost from slot 1",
			plan: func(l time.Duration, s int) []arrival {
				if s == 0 {
					return both(l)
				}
				return drop(both(l), noFcuFromA)
			},
			// a's last fcU at 0.12; b's fcUs at 1.13 and 2.13: at 2.13 a is replaced.
			want:       []string{"a>b:no forkchoiceUpdated@2"},
			wantUnheal: map[string]Reason{"a": ReasonNoForkchoice},
		},
		{
			name: "writer never sends forkchoiceUpdated",
			plan: func(l time.Duration, _ int) []arrival { return drop(both(l), noFcuFromA) },
			// Before b's first fcU the writer was a, elected on its newPayloads.
			want:       []string{"a>b:no forkchoiceUpdated@2"},
			wantUnheal: map[string]Reason{"a": ReasonNoForkchoice},
		},
		{
			name: "peer's forkchoiceUpdated stream lost: the writer keeps the role",
			plan: func(l time.Duration, s int) []arrival {
				return drop(both(l), func(a arrival) bool { return s == 0 || a.bn != "b" || !a.fcu })
			},
			want:       nil,
			wantUnheal: map[string]Reason{"b": ReasonNoForkchoice},
		},
		{
			// Its head is frozen at slot 0, but forkchoiceUpdated silence needs another BN.
			name: "single BN without forkchoiceUpdated: behind wall clock, still the writer",
			plan: func(l time.Duration, s int) []arrival {
				return drop(both(l), func(a arrival) bool { return a.bn == "a" && (s == 0 || !a.fcu) })
			},
			want: nil, wantUnheal: map[string]Reason{"a": ReasonWallLag},
		},
		{
			// A missed slot: b's fcU at 3.1 slots comes 2 slots after a's last one, but b's
			// previous one was in the same round as a's.
			name: "missed slot, then b announces first",
			plan: func(l time.Duration, s int) []arrival {
				switch {
				case s < 2:
					return both(l)
				case s == 2: // both still talk
					return []arrival{ping(l/3, "a"), ping(l/3, "b")}
				}
				// b is 10 ms ahead of a, and sends an fcU with attributes and then the head.
				ms := time.Millisecond
				return []arrival{np(l/10, "b"), fcu(l/10+5*ms, "b"), fcu(l/10+8*ms, "b"), np(l/10+10*ms, "a"), fcu(l/10+15*ms, "a")}
			},
			want: nil, wantHealthy: []string{"a", "b"},
		},
		{
			// A proposer's re-org: a's BN builds on the parent of the late block 2, which moves
			// its head one slot back; b announces a's block 3 first. a keeps the role.
			name: "proposer re-org build, then b announces the next block first",
			plan: func(l time.Duration, s int) []arrival {
				switch s {
				case 2:
					return append(both(l), arrival{at: l / 2, bn: "a", fcu: true, back: 1})
				case 3:
					ms := time.Millisecond
					return []arrival{np(l/10, "b"), fcu(l/10+5*ms, "b"), np(l/10+100*ms, "a"), fcu(l/10+105*ms, "a")}
				}
				return both(l)
			},
			want: nil, wantHealthy: []string{"a", "b"},
		},
		{
			name: "the writer's stream comes back: b keeps the role, a is healthy",
			plan: func(l time.Duration, s int) []arrival {
				if s > 0 && s < 4 {
					return drop(both(l), noFcuFromA)
				}
				return both(l)
			},
			want: []string{"a>b:no forkchoiceUpdated@2"}, wantHealthy: []string{"a", "b"},
		},
	}
	for _, slotLen := range []time.Duration{12 * time.Second, 2 * time.Second} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s", slotLen, tt.name), func(t *testing.T) {
				got, tr := slotScenario(t, slotLen, 8, func(s int) []arrival { return tt.plan(slotLen, s) })
				if !slices.Equal(got, tt.want) {
					t.Fatalf("changes = %q, want %q", got, tt.want)
				}
				for _, b := range tr.Snapshot() {
					if r, ok := tt.wantUnheal[b.Name]; ok && b.Unhealthy != r {
						t.Errorf("%s unhealthy = %q, want %q", b.Name, b.Unhealthy, r)
					}
					if slices.Contains(tt.wantHealthy, b.Name) && !b.Healthy {
						t.Errorf("%s unhealthy (%s), want healthy", b.Name, b.Unhealthy)
					}
				}
			})
		}
	}
}
