package backlog

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
)

func h(n byte) engine.Hash { return engine.Hash{n} }

// np is block n whose parent is n-1.
func np(n byte) Item { return Item{Kind: KindNewPayload, Hash: h(n), Parent: h(n - 1)} }

func fcu(head byte) Item { return Item{Kind: KindForkchoice, Head: h(head)} }

func build(head byte, ts uint64) Item {
	return Item{Kind: KindForkchoice, Head: h(head), Build: true, BuildTime: ts}
}

func TestPolicyNext(t *testing.T) {
	const t0 = 1_700_000_000
	now := time.Unix(t0, 0)
	p, err := NewPolicy(12 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	other := Item{Kind: KindOther}
	fork := Item{Kind: KindNewPayload, Hash: h(30), Parent: h(1)} // a sibling branch off block 1
	cases := []struct {
		name  string
		queue []Item
		want  [][]int // successive steps, each applied before the next
	}{
		{"empty", nil, nil},
		{"only reads", []Item{other, other}, nil},
		{"an update followed by a block is not superseded: the block goes with it",
			[]Item{np(1), fcu(1), np(2), fcu(2), np(3), fcu(3)},
			[][]int{{4, 5}, {2, 3}, {0, 1}}},
		{"superseded updates first, oldest first",
			[]Item{np(1), fcu(1), fcu(1), np(2), fcu(2), fcu(2), fcu(2)},
			[][]int{{1}, {3}, {3}, {2, 3}, {0, 1}}},
		{"past build before any block, current build kept until its block goes",
			[]Item{np(1), build(1, t0-24), np(2), build(2, t0-12), np(3), build(3, t0-11)},
			[][]int{{1}, {2}, {2, 3}, {1}, {0}}},
		{"newest block first, and the heads that name it",
			[]Item{np(1), np(2), np(3), fcu(3)},
			[][]int{{2, 3}, {1}, {0}}},
		{"a parent is never shed while its child stays queued",
			// Block 2 (from one beacon node) was queued before its parent (from another).
			[]Item{np(2), np(1)},
			[][]int{{0}, {0}}},
		{"a sibling branch goes before the block its fork point leads to",
			[]Item{np(1), np(2), fork, np(3)},
			[][]int{{3}, {2}, {1}, {0}}},
		{"a sibling queued between two blocks",
			[]Item{np(1), fork, np(2)},
			[][]int{{2}, {1}, {0}}},
		{"reads stay while blocks go",
			[]Item{other, np(1), other},
			[][]int{{1}}},
		{"a block goes with the update that names it",
			[]Item{np(1), fcu(1)},
			[][]int{{0, 1}}},
		{"an update for a block not queued is never superseded by nothing",
			[]Item{fcu(9)},
			nil},
		{"consecutive updates: all but the last go, oldest first",
			[]Item{np(1), fcu(1), fcu(1), fcu(2)},
			[][]int{{1}, {1}, {0}}},
		{"a current build supersedes the update before it and is never superseded",
			[]Item{fcu(1), build(1, t0), fcu(1)},
			[][]int{{0}}},
		{"a block between keeps the update",
			[]Item{fcu(1), np(2), fcu(2)},
			[][]int{{1, 2}}},
		{"a past build after a superseded update: the older goes first",
			[]Item{np(1), fcu(1), build(1, t0-24)},
			[][]int{{1}, {1}, {0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := Items(slices.Clone(c.queue))
			var got [][]int
			for step := 0; step <= len(c.queue); step++ {
				shed := p.Next(q, now)
				if shed == nil {
					break
				}
				if !slices.IsSorted(shed) {
					t.Fatalf("step %d: positions %v not ascending", step, shed)
				}
				got = append(got, shed)
				for i := len(shed) - 1; i >= 0; i-- {
					q = slices.Delete(q, shed[i], shed[i]+1)
				}
			}
			if !slices.EqualFunc(got, c.want, slices.Equal) {
				t.Fatalf("shed %v, want %v", got, c.want)
			}
		})
	}
}

func TestPolicyPastSlot(t *testing.T) {
	p := Policy{Slot: 12 * time.Second}
	start := time.Unix(1000, 0)
	cases := []struct {
		now  time.Time
		past bool
	}{
		{start.Add(-time.Second), false},
		{start, false},
		{start.Add(11999 * time.Millisecond), false},
		{start.Add(12 * time.Second), true},
		{start.Add(time.Hour), true},
	}
	for _, c := range cases {
		if got := p.past(1000, c.now); got != c.past {
			t.Errorf("past at %v = %v, want %v", c.now.Sub(start), got, c.past)
		}
	}
	if p.past(^uint64(0), start) {
		t.Error("a timestamp beyond int64 counts as past")
	}
	if _, err := NewPolicy(0); err == nil {
		t.Error("NewPolicy(0) accepted")
	}
}

func TestBudgetCountsSharedBodiesOnce(t *testing.T) {
	b, err := New(100, 3)
	if err != nil {
		t.Fatal(err)
	}
	var x, y Charge
	b.Hold(0, &x, 40)
	b.Hold(1, &x, 40)
	b.Hold(2, &x, 40)
	b.Hold(0, &y, 30)
	u := b.Usage()
	if u.Total != 70 || !slices.Equal(u.Held, []int64{70, 40, 40}) {
		t.Fatalf("usage %+v, want total 70 and held [70 40 40]", u)
	}
	b.Let(1, &x, 40, false)
	b.Let(2, &x, 40, false)
	if u := b.Usage(); u.Total != 70 {
		t.Fatalf("total %d after two of three holders let go, want 70", u.Total)
	}
	b.Let(0, &x, 40, false)
	b.Let(0, &y, 30, false)
	if u := b.Usage(); u.Total != 0 || u.Peak != 70 || !slices.Equal(u.Held, []int64{0, 0, 0}) {
		t.Fatalf("usage %+v after all let go, want 0 held, peak 70", u)
	}
	if _, err := New(0, 1); err == nil {
		t.Error("New(0, 1) accepted")
	}
	if _, err := New(1, 0); err == nil {
		t.Error("New(1, 0) accepted")
	}
}

// lane is a queue in a simulated set of lanes.
type lane struct {
	queue   []Item
	charges []*Charge
	shed    []engine.Hash // newPayloads shed, in order
}

// sim enqueues arrivals onto every lane not listed as stalled, removes what healthy lanes
// deliver at once, and sheds as the budget and the policy say. It is the lanes' loop without
// sockets.
type sim struct {
	b     *Budget
	p     Policy
	lanes []*lane
	size  int64 // every body's size
}

// newSim is n lanes sharing a budget of items bodies of 100 bytes.
func newSim(items, n int) *sim {
	b, _ := New(int64(items)*100, n)
	s := &sim{b: b, p: Policy{Slot: 12 * time.Second}, size: 100}
	for range n {
		s.lanes = append(s.lanes, &lane{})
	}
	return s
}

func (s *sim) arrive(it Item, healthy ...int) {
	c := new(Charge)
	for i, l := range s.lanes {
		l.queue = append(l.queue, it)
		l.charges = append(l.charges, c)
		s.b.Hold(i, c, s.size)
	}
	for i, l := range s.lanes {
		for steps := 0; s.b.MustShed(i) && steps < 100; steps++ {
			shed := s.p.Next(Items(l.queue), time.Unix(0, 0))
			if shed == nil {
				break
			}
			for j := len(shed) - 1; j >= 0; j-- {
				k := shed[j]
				if l.queue[k].Kind == KindNewPayload {
					l.shed = append(l.shed, l.queue[k].Hash)
				}
				s.b.Let(i, l.charges[k], s.size, false)
				l.queue = slices.Delete(l.queue, k, k+1)
				l.charges = slices.Delete(l.charges, k, k+1)
			}
		}
	}
	for _, i := range healthy { // a healthy EL takes everything at once
		l := s.lanes[i]
		for k := range l.queue {
			s.b.Let(i, l.charges[k], s.size, false)
		}
		l.queue, l.charges = nil, nil
	}
}

func TestOnlyTheLaneThatHoldsMostSheds(t *testing.T) {
	s := newSim(10, 3)
	// Lane 2 is hung; 0 and 1 deliver everything at once. 30 blocks with a head update each.
	for n := byte(1); n <= 30; n++ {
		s.arrive(np(n), 0, 1)
		s.arrive(fcu(n), 0, 1)
	}
	if len(s.lanes[0].shed)+len(s.lanes[1].shed) != 0 {
		t.Fatalf("healthy lanes shed %d and %d blocks", len(s.lanes[0].shed), len(s.lanes[1].shed))
	}
	hung := s.lanes[2]
	// The hung lane keeps the oldest blocks it can hold (1..9 and the update naming 9, or 1..10)
	// and sheds every newer block as it comes, newest first.
	if len(hung.queue) > 10 {
		t.Fatalf("hung lane holds %d items over a 10-item budget", len(hung.queue))
	}
	var kept []byte
	for _, it := range hung.queue {
		if it.Kind == KindNewPayload {
			kept = append(kept, it.Hash[0])
		}
	}
	for i, n := range kept {
		if n != byte(i+1) {
			t.Fatalf("hung lane kept blocks %v: not the chain from block 1", kept)
		}
	}
	if got := len(kept) + len(hung.shed); got != 30 {
		t.Fatalf("hung lane kept %d and shed %d blocks, want 30 in all", len(kept), len(hung.shed))
	}
	if u := s.b.Usage(); u.Total > u.Limit {
		t.Fatalf("total %d over the limit %d after shedding", u.Total, u.Limit)
	}
}

func TestEveryLaneSlowShedsEvenly(t *testing.T) {
	s := newSim(12, 3)
	for n := byte(1); n <= 20; n++ {
		s.arrive(np(n)) // nobody delivers: a burst faster than every EL
	}
	u := s.b.Usage()
	if u.Total > u.Limit {
		t.Fatalf("total %d over the limit %d", u.Total, u.Limit)
	}
	for i, l := range s.lanes {
		if len(l.queue) != 12 || l.queue[11].Hash != h(12) {
			t.Fatalf("lane %d holds %d items, want blocks 1..12", i, len(l.queue))
		}
	}
}

// referenceNext is the policy written plainly, one pass per rule: Next must agree with it.
func referenceNext(p Policy, q []Item, now time.Time) []int {
	for i, it := range q {
		if it.Kind != KindForkchoice {
			continue
		}
		superseded := false
		if !it.Build {
		scan:
			for _, later := range q[i+1:] {
				switch later.Kind {
				case KindNewPayload:
					break scan
				case KindForkchoice:
					superseded = true
					break scan
				}
			}
		}
		if superseded || (it.Build && p.past(it.BuildTime, now)) {
			return []int{i}
		}
	}
	for i := len(q) - 1; i >= 0; i-- {
		if q[i].Kind != KindNewPayload || Items(q).HasChild(q[i].Hash) {
			continue
		}
		shed := []int{i}
		for j := i + 1; j < len(q); j++ {
			if q[j].Kind == KindForkchoice && q[j].Head == q[i].Hash {
				shed = append(shed, j)
			}
		}
		return shed
	}
	return nil
}

func TestPolicyNextAgreesWithReference(t *testing.T) {
	const t0 = 1_700_000_000
	now := time.Unix(t0, 0)
	p := Policy{Slot: 12 * time.Second}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 2000 {
		q := make([]Item, rng.IntN(12))
		for i := range q {
			n := byte(1 + rng.IntN(6)) // few hashes: children, forks and repeats
			switch rng.IntN(5) {
			case 0:
				q[i] = Item{Kind: KindOther}
			case 1, 2:
				q[i] = Item{Kind: KindNewPayload, Hash: h(n), Parent: h(byte(rng.IntN(int(n))))}
			case 3:
				q[i] = fcu(n)
			default:
				q[i] = build(n, uint64(t0-24+rng.IntN(36)))
			}
		}
		for step := 0; step <= len(q); step++ {
			got, want := p.Next(Items(q), now), referenceNext(p, q, now)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, step %d, queue %+v: Next %v, reference %v", round, step, q, got, want)
			}
			if got == nil {
				break
			}
			for i := len(got) - 1; i >= 0; i-- {
				q = slices.Delete(q, got[i], got[i]+1)
			}
		}
	}
}

func TestMustShed(t *testing.T) {
	// Three holders, a limit of 100. Each case holds per holder (queued + sending) and marks
	// who is behind; want lists who must shed.
	type holder struct {
		queued, sending int64
		behind, stuck   bool
	}
	cases := []struct {
		name string
		h    []holder
		want []bool
	}{
		{"within the limit nobody sheds", []holder{{50, 0, false, false}, {40, 0, false, false}, {10, 0, true, false}}, []bool{false, false, false}},
		{"the one holding the most", []holder{{60, 0, false, false}, {30, 0, false, false}, {20, 0, false, false}}, []bool{true, false, false}},
		{"a tie: both", []holder{{50, 0, false, false}, {50, 0, false, false}, {10, 0, false, false}}, []bool{true, true, false}},
		{"what is being sent cannot be shed, so it does not count",
			[]holder{{20, 50, false, false}, {40, 0, false, false}, {0, 0, false, false}}, []bool{false, true, false}},
		{"a holder that only sends never sheds", []holder{{0, 120, false, false}, {0, 0, false, false}, {0, 0, false, false}}, []bool{false, false, false}},
		{"behind goes first, even holding less", []holder{{60, 0, false, false}, {55, 0, false, false}, {10, 0, true, false}}, []bool{false, false, true}},
		{"behind with nothing queued: the rest as usual",
			[]holder{{60, 0, false, false}, {55, 0, false, false}, {0, 300, true, false}}, []bool{true, false, false}},
		{"two behind: the one with the most", []holder{{90, 0, false, false}, {20, 0, true, false}, {30, 0, true, false}}, []bool{false, false, true}},
		{"behind but stuck (nothing it may shed): the rest as usual, it may try again",
			[]holder{{60, 0, false, false}, {55, 0, false, false}, {10, 0, true, true}}, []bool{true, false, true}},
		{"stuck holding the most: the next in line", []holder{{80, 0, false, true}, {40, 0, false, false}, {30, 0, false, false}}, []bool{true, true, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := New(100, len(c.h))
			if err != nil {
				t.Fatal(err)
			}
			for i, h := range c.h {
				if h.queued > 0 {
					b.Hold(i, new(Charge), h.queued)
				}
				if h.sending > 0 {
					b.Hold(i, new(Charge), h.sending)
					b.Send(i, h.sending)
				}
				b.SetBehind(i, h.behind)
				if h.stuck {
					b.Stuck(i)
				}
			}
			for i, want := range c.want {
				if got := b.MustShed(i); got != want {
					t.Errorf("holder %d: MustShed %v, want %v", i, got, want)
				}
			}
		})
	}
}

func TestSendAndLet(t *testing.T) {
	b, err := New(100, 1)
	if err != nil {
		t.Fatal(err)
	}
	var x Charge
	b.Hold(0, &x, 150)
	b.Send(0, 150)
	if b.MustShed(0) {
		t.Fatal("an item being sent counts as something to shed")
	}
	b.Let(0, &x, 150, true)
	b.Hold(0, new(Charge), 120)
	if !b.MustShed(0) {
		t.Fatal("after the sent item was let go, the queued one does not count")
	}
}

func TestStuckEndsWithANewItem(t *testing.T) {
	b, err := New(100, 2)
	if err != nil {
		t.Fatal(err)
	}
	b.Hold(0, new(Charge), 80)
	b.Hold(1, new(Charge), 40)
	b.Stuck(0)
	if !b.MustShed(1) {
		t.Fatal("holder 1 waits for a stuck holder")
	}
	b.Hold(0, new(Charge), 1)
	if b.MustShed(1) {
		t.Fatal("holder 0 queued something new and holds the most, yet holder 1 sheds")
	}
}

// TestBudgetLeftover: a budget holds nothing once every holder let go of every charge.
func TestBudgetLeftover(t *testing.T) {
	b, err := New(1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Leftover(); err != nil {
		t.Fatalf("new budget: %v", err)
	}
	var x, y Charge
	b.Hold(0, &x, 100)
	b.Hold(1, &x, 100)
	b.Hold(1, &y, 50)
	b.Send(1, 50)
	steps := []struct {
		let  func()
		want string // "" when nothing is left
	}{
		{func() {}, "holder 1 still holds 150 bytes (50 being sent)"},
		{func() { b.Let(0, &x, 100, false) }, "backlog: 150 bytes still counted"},
		{func() { b.Let(1, &y, 50, true) }, "holder 1 still holds 100 bytes (0 being sent)"},
		{func() { b.Let(1, &x, 100, false) }, ""},
	}
	for i, s := range steps {
		s.let()
		err := b.Leftover()
		switch {
		case s.want == "" && err != nil:
			t.Errorf("step %d: %v", i, err)
		case s.want != "" && (err == nil || !strings.Contains(err.Error(), s.want)):
			t.Errorf("step %d: %v, want %q", i, err, s.want)
		}
	}
}
