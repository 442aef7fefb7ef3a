package proxy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// paddedPayloadBody is block n's newPayload grown to about size bytes by one large
// transaction, as a block full of transactions is.
func paddedPayloadBody(id string, n uint64, size int) []byte {
	body := newPayloadBody(id, n)
	pad := size - len(body)
	if pad <= 0 {
		return body
	}
	tx := `"transactions":["0x02`
	i := bytes.Index(body, []byte(tx))
	var b bytes.Buffer
	b.Grow(size)
	b.Write(body[:i+len(tx)])
	b.WriteString(strings.Repeat("ab", pad/2))
	b.Write(body[i+len(tx):])
	return b.Bytes()
}

// burstRig is a proxy in front of chainELs, on a manual clock set to each block's slot.
type burstRig struct {
	*rig
	chain []*chainEL
}

func newBurstRig(t *testing.T, roles []upstream.Role, opts ...rigOption) *burstRig {
	t.Helper()
	r := &rig{t: t, clk: clock.NewManual(time.Unix(int64(blockTS(1)), 0)), roles: roles, done: make(chan struct{})}
	cfg := Config{Instance: "burst-proxy", Election: testElection()}
	c := &burstRig{rig: r}
	for i, role := range roles {
		el := newChainEL(t)
		el.record = true
		c.chain = append(c.chain, el)
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: fmt.Sprintf("el%d", i+1), URL: el.srv.URL, Role: role})
	}
	for _, o := range opts {
		o(&cfg)
	}
	r.start(cfg)
	return c
}

// checkDelivered asserts that el got blocks 1..n in parent order, each VALID the first time
// (a block sent again, as a catch-up may, is allowed), and no head update before the block
// it names.
func checkDelivered(t *testing.T, name string, el *chainEL, n uint64) {
	t.Helper()
	var next uint64 = 1
	have := map[engine.Hash]bool{blockHash(0): true}
	for i, a := range el.recorded() {
		switch a.class {
		case engine.ClassNewPayload:
			if have[a.hash] {
				continue
			}
			if a.number != next || a.status != "VALID" {
				t.Fatalf("%s: arrival %d is block %d (%s), want block %d", name, i, a.number, a.status, next)
			}
			have[a.hash] = true
			next++
		case engine.ClassForkchoice:
			if !have[a.hash] {
				t.Fatalf("%s: arrival %d is a head update (attributes %v) to a block it never got, after block %d", name, i, a.attrs, next-1)
			}
		}
	}
	if next != n+1 {
		t.Fatalf("%s got blocks 1..%d, want 1..%d", name, next-1, n)
	}
}

// A follower 20 ms slower than the others, direct mode: the beacon node sends 200 blocks of
// 150 KB, each head update once the block's answer is back, every second one with payload
// attributes (a builder's beacon node; builds are never coalesced). The slow follower must
// still get every block, in parent order, and no head update before its block.
func TestSlowFollowerGetsEveryBlock(t *testing.T) {
	const blocks, size = 300, 150 << 10
	r := newBurstRig(t, []upstream.Role{upstream.RolePrimary, upstream.RoleFollower, upstream.RoleFollower})
	r.chain[2].setDelay(20 * time.Millisecond)
	start := time.Now()
	peak := 0
	for n := uint64(1); n <= blocks; n++ {
		r.clk.Set(time.Unix(int64(blockTS(n)), 0))
		id := fmt.Sprintf(`"np%d"`, n)
		if _, ans := r.post("bn1", paddedPayloadBody(id, n, size)); !strings.Contains(string(ans), "VALID") {
			t.Fatalf("block %d: %s", n, ans)
		}
		_, ans := r.post("bn1", forkchoiceBody(fmt.Sprintf(`"fcu%d"`, n), n, n%2 == 0))
		if st, pid := payloadStatus(t, ans); st != "VALID" || (n%2 == 0) != (pid != nil) {
			t.Fatalf("head update %d: %s", n, ans)
		}
		peak = max(peak, r.p.Lanes()[2].Stats().QueueDepth)
	}
	t.Logf("beacon node sent %d blocks in %v; the slow follower's queue peaked at %d requests", blocks, time.Since(start), peak)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.p.Drain(ctx); err != nil {
		t.Fatalf("lanes did not drain: %v", err)
	}
	for i, el := range r.chain {
		checkDelivered(t, fmt.Sprintf("el%d", i+1), el, blocks)
		if h := el.headNumber(); h != blocks {
			t.Fatalf("el%d head %d, want %d", i+1, h, blocks)
		}
	}
	st := r.p.Lanes()[2].Stats()
	t.Logf("slow follower: delivered %d, drops %v", st.Delivered, st.Drops)
}
