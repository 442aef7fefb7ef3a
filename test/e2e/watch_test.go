package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

// headWatch samples every node's head over its own JSON-RPC until the test ends and records
// every time a head went backwards (a lower number, or the same number with another hash).
type headWatch struct {
	nodes []*gethNode

	mu        sync.Mutex
	last      map[string]cldriver.Head
	history   map[string][]headSample // every change of head, per node
	backwards []string
	samples   int
	stop      chan struct{}
	done      chan struct{}
}

// watchHeads starts sampling nodes every interval; it stops in t.Cleanup or with Stop.
func watchHeads(t *testing.T, interval time.Duration, nodes ...*gethNode) *headWatch {
	w := &headWatch{nodes: nodes, last: map[string]cldriver.Head{}, history: map[string][]headSample{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run(interval)
	t.Cleanup(w.Stop)
	return w
}

func (w *headWatch) run(interval time.Duration) {
	defer close(w.done)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		for _, n := range w.nodes {
			h, err := headOf(n)
			if err != nil {
				continue // down or restarting
			}
			w.mu.Lock()
			prev, seen := w.last[n.name]
			if seen && (h.Number < prev.Number || (h.Number == prev.Number && h.Hash != prev.Hash)) {
				w.backwards = append(w.backwards, fmt.Sprintf("%s %s: head %s → %s", time.Now().Format("15:04:05.000"), n.name, prev, h))
			}
			if !seen || h != prev {
				w.history[n.name] = append(w.history[n.name], headSample{at: time.Now(), head: h})
			}
			w.last[n.name] = h
			w.samples++
			w.mu.Unlock()
		}
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
	}
}

// headSample is a head first seen at a time.
type headSample struct {
	at   time.Time
	head cldriver.Head
}

// History returns the node's head changes, oldest first.
func (w *headWatch) History(n *gethNode) []headSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]headSample(nil), w.history[n.name]...)
}

// longestStall is the longest time between two head changes of n (or since the last one,
// up to now) within [from, to].
func (w *headWatch) longestStall(n *gethNode, from, to time.Time) time.Duration {
	var longest time.Duration
	prev := from
	for _, s := range w.History(n) {
		if s.at.Before(from) {
			continue
		}
		if s.at.After(to) {
			break
		}
		longest = max(longest, s.at.Sub(prev))
		prev = s.at
	}
	return max(longest, to.Sub(prev))
}

// longestLag is how long, at worst, follower took to reach (at least) a height leader had
// reached within [from, to]: for every head change of leader in the window, the time until
// follower's head number was as high. A height never reached counts up to to.
func (w *headWatch) longestLag(follower, leader *gethNode, from, to time.Time) (time.Duration, uint64) {
	fh := w.History(follower)
	var worst time.Duration
	var at uint64
	for _, l := range w.History(leader) {
		if l.at.Before(from) || l.at.After(to) {
			continue
		}
		reached := to
		for _, f := range fh {
			if f.head.Number >= l.head.Number {
				reached = f.at
				break
			}
		}
		if lag := reached.Sub(l.at); lag > worst {
			worst, at = lag, l.head.Number
		}
	}
	return worst, at
}

// Forget drops what is known about a node (a geth that was killed may legitimately come
// back lower).
func (w *headWatch) Forget(n *gethNode) {
	w.mu.Lock()
	delete(w.last, n.name)
	w.mu.Unlock()
}

// Stop ends the sampling (idempotent).
func (w *headWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Backwards returns every head regression seen and the number of samples taken.
func (w *headWatch) Backwards() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.backwards...), w.samples
}

var (
	headUpdatedRE = regexp.MustCompile(`Chain head was updated\s+number=([0-9,]+)`)
	// Lines geth writes when a head update moves its chain back or a stale update reaches it.
	headBackRE = regexp.MustCompile(`Shorten chain|Chain reorg detected|Rewinding|Skipping beacon update to finalized ancestor|Ignoring beacon update to old head`)
	ansiRE     = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
)

// gethLogRegressions scans a geth log for its head going backwards: a "Chain head was
// updated" line with a lower number than the one before, or a line saying geth shortened,
// reorganised or rewound its chain, or was sent a head older than its own.
func gethLogRegressions(path string) ([]string, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	var out []string
	updates := 0
	last := int64(-1)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := headUpdatedRE.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseInt(strings.ReplaceAll(m[1], ",", ""), 10, 64)
			updates++
			if n < last {
				out = append(out, fmt.Sprintf("head %d after %d: %s", n, last, line))
			}
			last = n
			continue
		}
		if headBackRE.MatchString(line) {
			out = append(out, line)
		}
	}
	return out, updates, sc.Err()
}

// requireNoHeadRegression fails if any node's log shows its head going back.
func requireNoHeadRegression(t *testing.T, nodes ...*gethNode) {
	t.Helper()
	for _, n := range nodes {
		bad, updates, err := gethLogRegressions(n.LogPath)
		if err != nil {
			t.Fatalf("%s: read log: %v", n.name, err)
		}
		if len(bad) > 0 {
			t.Fatalf("%s: head went backwards (log %s):\n%s", n.name, n.LogPath, strings.Join(bad, "\n"))
		}
		t.Logf("%s: %d head updates in its log, none backwards", n.name, updates)
	}
}

// waitForSlot sleeps until slot n of a wall-clock chain starts (genesis + n·slot). It is
// pacing, not a readiness wait: blocks must not be produced faster than the chain's slots.
func waitForSlot(t *testing.T, genesis uint64, slot time.Duration, n uint64) {
	t.Helper()
	at := time.Unix(int64(genesis), 0).Add(time.Duration(n) * slot)
	d := time.Until(at)
	if d > 2*time.Minute {
		t.Fatalf("slot %d starts in %v: the clock is off", n, d)
	}
	if d > 0 {
		time.Sleep(d)
	}
}

// proxyStatus is the part of sync-proxy's GET /status JSON the tests read.
type proxyStatus struct {
	Mode   string `json:"mode"`
	Writer string `json:"writer"`
	Ready  bool   `json:"ready"`
	BNs    []struct {
		Name      string `json:"name"`
		Writer    bool   `json:"writer"`
		Healthy   bool   `json:"healthy"`
		Unhealthy string `json:"unhealthy"`
		Requests  uint64 `json:"requests"`
	} `json:"bns"`
	ELs []struct {
		Name       string            `json:"name"`
		Role       string            `json:"role"`
		State      string            `json:"state"`
		LastStatus string            `json:"last_status"`
		Sync       string            `json:"sync"`
		QueueDepth int               `json:"queue_depth"`
		Delivered  uint64            `json:"delivered"`
		Failed     uint64            `json:"failed"`
		Drops      map[string]uint64 `json:"drops"`
		LastError  string            `json:"last_error"`
		Behind     bool              `json:"behind"`
		ShedBlocks uint64            `json:"shed_blocks"`
		ShedBytes  uint64            `json:"shed_bytes"`
		Heals      uint64            `json:"heals"`
		Head       *struct {
			Number uint64 `json:"number"`
		} `json:"head"`
	} `json:"els"`
}

// status reads GET /status on the operations listener.
func (p *syncProxy) status() (proxyStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.ops+"/status", nil)
	if err != nil {
		return proxyStatus{}, err
	}
	resp, err := testHTTPClient.Do(req)
	if err != nil {
		return proxyStatus{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return proxyStatus{}, fmt.Errorf("GET /status: %s", resp.Status)
	}
	var st proxyStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return proxyStatus{}, fmt.Errorf("GET /status: %w", err)
	}
	return st, nil
}

// requireStatus reads /status or fails.
func (p *syncProxy) mustStatus(t *testing.T) proxyStatus {
	t.Helper()
	st, err := p.status()
	if err != nil {
		t.Fatalf("sync-proxy status: %v", err)
	}
	return st
}

// String summarises a status for logs.
func (st proxyStatus) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mode=%s writer=%q", st.Mode, st.Writer)
	for _, bn := range st.BNs {
		fmt.Fprintf(&b, " | bn %s writer=%v healthy=%v %s requests=%d", bn.Name, bn.Writer, bn.Healthy, bn.Unhealthy, bn.Requests)
	}
	for _, el := range st.ELs {
		head := uint64(0)
		if el.Head != nil {
			head = el.Head.Number
		}
		fmt.Fprintf(&b, " | el %s %s state=%s last=%s head=%d delivered=%d failed=%d drops=%v", el.Name, el.Role, el.State, el.LastStatus, head, el.Delivered, el.Failed, el.Drops)
	}
	return b.String()
}

// durations summarises latencies: median, max and count.
type durations []time.Duration

func (d durations) sorted() durations {
	s := append(durations(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s
}

func (d durations) median() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d.sorted()[len(d)/2]
}

func (d durations) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d.sorted()[len(d)-1]
}

func (d durations) String() string {
	return fmt.Sprintf("median %v max %v (n=%d)", d.median().Round(time.Millisecond), d.max().Round(time.Millisecond), len(d))
}

// stripANSI removes terminal colour codes (Lodestar colours its logs).
func stripANSI(s string) string { return ansiRE.ReplaceAllString(s, "") }
