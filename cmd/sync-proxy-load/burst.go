package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
	"github.com/sync-proxy/sync-proxy/internal/status"
)

// The burst scenario is a beacon node range-syncing: blocks of a typical size sent back to
// back, each as soon as the primary has answered the last, while a follower never answers.
// The follower's lane fills the backlog budget, sheds and falls behind; the proxy's memory
// must stay within what its flags promise.
const (
	burstBlocks      = 10_000
	burstShape       = "np-300KB"
	burstRSSMargin   = 100 << 20 // allowed over the backlog budget plus the recent blocks
	burstQuickBlocks = 2_000
	// burstBacklogSlack is how far the backlog may pass its budget (README: one request
	// arriving and one in flight per EL; two ELs, each 300 KB body in a buffer under 1 MiB).
	burstBacklogSlack = 4 << 20
)

// burstPlan is the one plan of a burst scenario.
func burstPlan(blocks int) plan {
	return plan{name: fmt.Sprintf("burst %s ×%d", burstShape, blocks), shape: burstShape, conc: 1, requests: blocks}
}

// burstArgs are the proxy's memory flags in a burst scenario, set explicitly so the report
// states what the peak is compared with.
func burstArgs(o benchOpts) []string {
	return []string{
		"--backlog-bytes", strconv.FormatInt(o.backlogBytes, 10),
		"--replay-bytes", strconv.FormatInt(o.recentBytes, 10),
	}
}

// burstLimit is the largest peak RSS the proxy may reach in a burst scenario.
func burstLimit(o benchOpts) int64 { return o.backlogBytes + o.recentBytes + burstRSSMargin }

// burstState is what the proxy reported at the end of a burst: the shared backlog and the
// hung follower's lane.
type burstState struct {
	backlog status.Backlog
	hung    status.EL
	primary status.EL
}

// readBurstState reads /status from the proxy's operations listener.
func readBurstState(ctx context.Context, opsURL string) (burstState, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, opsURL+"/status", nil)
	if err != nil {
		return burstState{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return burstState{}, fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return burstState{}, fmt.Errorf("status: HTTP %d", resp.StatusCode)
	}
	var snap status.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		return burstState{}, fmt.Errorf("status: %w", err)
	}
	if len(snap.ELs) != 2 {
		return burstState{}, fmt.Errorf("status: %d ELs, want the primary and the hung follower", len(snap.ELs))
	}
	return burstState{backlog: snap.Backlog, primary: snap.ELs[0], hung: snap.ELs[1]}, nil
}

// burstMisses checks one burst scenario's outcome: every block answered, the proxy's peak
// RSS within its memory flags plus the margin, the hung follower behind with its shed
// blocks counted, and the backlog never past its budget by more than one block.
func burstMisses(r scenarioResult, o benchOpts) []string {
	if r.burst == nil || len(r.cells) != 1 {
		return []string{r.sc.name + " did not complete"}
	}
	c, st := r.cells[0], r.burst
	var miss []string
	if c.res.OK != c.plan.requests {
		miss = append(miss, fmt.Sprintf("%d of %d blocks answered", c.res.OK, c.plan.requests))
	}
	if c.peakRSS > burstLimit(o) {
		miss = append(miss, fmt.Sprintf("peak RSS %s MiB > %s MiB", rss(c.peakRSS), rss(burstLimit(o))))
	}
	if !st.hung.Behind || st.hung.ShedBlocks == 0 {
		miss = append(miss, fmt.Sprintf("the hung follower is not shown behind (behind=%v, shed %d blocks)", st.hung.Behind, st.hung.ShedBlocks))
	}
	if st.backlog.PeakBytes > st.backlog.BudgetBytes+burstBacklogSlack {
		miss = append(miss, fmt.Sprintf("backlog peak %s MiB over its budget %s MiB", rss(st.backlog.PeakBytes), rss(st.backlog.BudgetBytes)))
	}
	return miss
}

// burstSection reports every burst scenario: what was sent, what the proxy held and shed,
// and its peak memory against the limit.
func (b *bench) burstSection(w *strings.Builder, rs []scenarioResult) {
	var rows []scenarioResult
	for _, r := range rs {
		if r.sc.burst {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "### Burst with a hung follower\n\n")
	fmt.Fprintf(w, "A beacon node range-syncing: newPayloads sent back to back (the next as soon as the primary answered), a follower that reads and never answers. Memory flags: `--backlog-bytes %d --replay-bytes %d`; the limit is their sum + %d MiB. Peak RSS is the proxy's VmHWM over the burst; the backlog and the follower's lane are read from `/status` at the end.\n\n",
		b.o.backlogBytes, b.o.recentBytes, burstRSSMargin>>20)
	fmt.Fprintf(w, "| scenario | blocks | body | blocks/s | p50 ms | p99 ms | backlog peak MiB / budget | follower behind | shed blocks | shed MB | peak RSS MiB | limit MiB |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		if r.burst == nil || len(r.cells) != 1 {
			fmt.Fprintf(w, "| %s | did not complete | | | | | | | | | | |\n", r.sc.name)
			continue
		}
		c, st := r.cells[0], r.burst
		fmt.Fprintf(w, "| %s | %d | %s | %.0f | %s | %s | %s / %s | %v | %d | %.0f | %s | %s |\n",
			r.sc.name, c.res.OK, size(c.bodyLen), c.res.Throughput(), ms(c.res.Quantile(0.5)), ms(c.res.Quantile(0.99)),
			rss(st.backlog.PeakBytes), rss(st.backlog.BudgetBytes), st.hung.Behind, st.hung.ShedBlocks, float64(st.hung.ShedBytes)/1e6,
			rss(c.peakRSS), rss(burstLimit(b.o)))
	}
	fmt.Fprintln(w)
}

// defaultBurstOpts are the memory flags a burst runs with unless told: the proxy's defaults.
func defaultBurstOpts(o *benchOpts) {
	if o.backlogBytes == 0 {
		o.backlogBytes = backlog.DefaultBytes
	}
	if o.recentBytes == 0 {
		o.recentBytes = backlog.DefaultRecentBytes
	}
}
