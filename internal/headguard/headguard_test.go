package headguard

import (
	"fmt"
	"testing"
	"time"
)

// step is one call on the guard: an update (with the verdict expected), or the EL
// reporting its head (observe > 0).
type step struct {
	term    uint64
	ts      uint64 // 0: head unknown
	observe uint64
	want    Verdict
}

func up(term, ts uint64, want Verdict) step { return step{term: term, ts: ts, want: want} }
func el(ts uint64) step                     { return step{observe: ts} }

func TestGuard(t *testing.T) {
	const (
		B1 = 1_700_000_012 // slot 1
		B2 = B1 + 12       // slot 2
		B3 = B2 + 12       // slot 3
		B4 = B3 + 12
	)
	cases := []struct {
		name      string
		allowance time.Duration
		steps     []step
		owner     uint64
		head      uint64
	}{
		{name: "the first update passes", steps: []step{up(1, B2, Forward)}, owner: 1, head: B2},
		{name: "the writer re-orgs to an ancestor: forwarded, and the head follows it back",
			steps: []step{up(1, B3, Forward), up(1, B1, Forward)}, owner: 1, head: B1},
		{name: "the writer switches between two siblings and back",
			steps: []step{up(1, B2, Forward), up(1, B2, Forward), up(1, B2, Forward)}, owner: 1, head: B2},
		{name: "proposer re-org build: head B2, then a build on B1",
			steps: []step{up(1, B1, Forward), up(1, B2, Forward), up(1, B1, Forward)}, owner: 1, head: B1},
		{name: "the same head again (a repeated build) is never refused",
			steps: []step{up(1, B2, Forward), up(1, B2, Forward), up(1, B2, Forward)}, owner: 1, head: B2},
		{name: "a new writer behind the EL is refused until it reaches the EL's head",
			steps: []step{up(1, B3, Forward), up(2, B2, Stale), up(2, B3, Forward), up(2, B1, Forward)}, owner: 2, head: B1},
		{name: "a new writer ahead of the EL takes over at once",
			steps: []step{up(1, B2, Forward), up(2, B3, Forward)}, owner: 2, head: B3},
		{name: "a new writer on a sibling of the EL's head (same slot) takes over",
			steps: []step{up(1, B2, Forward), up(2, B2, Forward), up(2, B1, Forward)}, owner: 2, head: B1},
		{name: "the head allowance lets a new writer one slot behind through",
			allowance: 12 * time.Second,
			steps:     []step{up(1, B3, Forward), up(2, B2, Forward)}, owner: 2, head: B2},
		{name: "the head allowance is not a licence two slots behind",
			allowance: 12 * time.Second,
			steps:     []step{up(1, B3, Forward), up(2, B1, Stale)}, owner: 1, head: B3},
		{name: "the old writer back (a new term) is checked like any new writer",
			steps: []step{up(1, B2, Forward), up(2, B4, Forward), up(3, B3, Stale)}, owner: 2, head: B4},
		{name: "after a restart the EL's own head bounds the first writer",
			steps: []step{el(B3), up(1, B2, Stale), up(1, B4, Forward), up(1, B2, Forward)}, owner: 1, head: B2},
		{name: "the EL's report does not stop the writer that owns it",
			steps: []step{up(1, B2, Forward), el(B4), up(1, B3, Forward)}, owner: 1, head: B3},
		{name: "the EL's report of an older head changes nothing",
			steps: []step{up(1, B3, Forward), el(B1), up(2, B2, Stale)}, owner: 1, head: B3},
		{name: "an unknown head from a new writer is forwarded (the EL decides) and takes over",
			steps: []step{up(1, B3, Forward), up(2, 0, Forward), up(2, B1, Forward)}, owner: 2, head: B1},
		{name: "a build by a beacon node that is not the writer passes on the EL's head",
			steps: []step{up(1, B2, Forward), up(0, B2, Forward), up(0, B3, Forward)}, owner: 1, head: B3},
		{name: "a beacon node that is not the writer never moves the EL back",
			steps: []step{up(1, B3, Forward), up(0, B2, Stale)}, owner: 1, head: B3},
		{name: "a beacon node that is not the writer does not take over",
			steps: []step{up(1, B2, Forward), up(0, B3, Forward), up(2, B2, Stale)}, owner: 1, head: B3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.allowance)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				if s.observe > 0 {
					g.Observe(s.observe)
					continue
				}
				u := Update{Term: s.term, Known: s.ts != 0, Timestamp: s.ts}
				if got := g.Check(u); got != s.want {
					t.Fatalf("step %d %+v: Check = %v, want %v", i, u, got, s.want)
				}
				if got := g.Admit(u); got != s.want {
					t.Fatalf("step %d %+v: Admit = %v, want %v", i, u, got, s.want)
				}
			}
			if g.Owner() != tc.owner || g.Head() != tc.head {
				t.Fatalf("owner %d head %d, want owner %d head %d", g.Owner(), g.Head(), tc.owner, tc.head)
			}
		})
	}
}

func TestGuardRefusedUpdateRecordsNothing(t *testing.T) {
	g, _ := New(0)
	g.Admit(Update{Term: 1, Known: true, Timestamp: 100})
	before := *g
	if v := g.Admit(Update{Term: 2, Known: true, Timestamp: 50}); v != Stale {
		t.Fatalf("verdict %v, want stale", v)
	}
	if *g != before {
		t.Fatalf("a refused update changed the guard: %+v → %+v", before, *g)
	}
}

func TestNewRefusesNegativeAllowance(t *testing.T) {
	if _, err := New(-time.Second); err == nil {
		t.Fatal("a negative allowance was accepted")
	}
}

func TestVerdictString(t *testing.T) {
	if got := fmt.Sprint(Forward, Stale); got != "forward stale" {
		t.Fatalf("got %q", got)
	}
}
