package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/loadgen"
)

// report renders the results as markdown: latency added over the floor, ratios, the cost
// of each cell, and the targets of issue #8 checked against the numbers.
func (b *bench) report(rs []scenarioResult) string {
	var w strings.Builder
	t := table{rs: rs}
	fmt.Fprintf(&w, "## Results\n\n%s\n\n", b.machine())
	b.latencyTable(&w, t)
	b.ratioTable(&w, t)
	b.costTable(&w, rs)
	b.burstSection(&w, rs)
	b.targets(&w, t)
	for _, r := range rs {
		if r.err != nil {
			fmt.Fprintf(&w, "\n**%s did not complete:** %v\n", r.sc.name, r.err)
		}
	}
	return w.String()
}

// table finds cells by scenario and plan.
type table struct{ rs []scenarioResult }

func (t table) cell(scenario, plan string) (cell, bool) {
	for _, r := range t.rs {
		if r.sc.name != scenario {
			continue
		}
		for _, c := range r.cells {
			if c.plan.name == plan {
				return c, c.res.OK > 0
			}
		}
	}
	return cell{}, false
}

// machine describes where the numbers come from.
func (b *bench) machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	nginx := "not run"
	if out, err := exec.Command(b.o.nginxBin, "-v").CombinedOutput(); err == nil {
		nginx = strings.TrimSpace(strings.TrimPrefix(string(out), "nginx version: "))
	}
	load := "?"
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	return fmt.Sprintf("Measured %s on %d cores (%s), %s, nginx %s; load average at the end %s (the machine is shared). The load generator, the fake ELs and the hop share these cores.",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), model, runtime.Version(), nginx, load)
}

func (b *bench) hops(t table) []string {
	var out []string
	for _, r := range t.rs {
		if r.sc.hop != hopNone && !r.sc.burst {
			out = append(out, r.sc.name)
		}
	}
	return out
}

// latencyTable: the floor's p50/p99 and each hop's added p50/p99, in ms.
func (b *bench) latencyTable(w *strings.Builder, t table) {
	hops := b.hops(t)
	if len(hops) == 0 {
		return
	}
	fmt.Fprintf(w, "### Latency the beacon node sees, ms: floor, then added by each hop (p50 / p99)\n\n")
	fmt.Fprintf(w, "| request | floor | %s |\n|---|---|%s\n", strings.Join(hops, " | "), strings.Repeat("---|", len(hops)))
	for _, p := range b.plans {
		f, ok := t.cell("floor", p.name)
		if !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %s / %s |", p.name, ms(f.res.Quantile(0.5)), ms(f.res.Quantile(0.99)))
		for _, h := range hops {
			c, ok := t.cell(h, p.name)
			if !ok {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %s / %s |", signedMS(c.res.Quantile(0.5)-f.res.Quantile(0.5)), signedMS(c.res.Quantile(0.99)-f.res.Quantile(0.99)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// ratioTable: each hop's p50 as a multiple of the floor's, and sync-proxy's added p50 as a
// multiple of nginx's.
func (b *bench) ratioTable(w *strings.Builder, t table) {
	hops := b.hops(t)
	if len(hops) == 0 {
		return
	}
	fmt.Fprintf(w, "### p50 as a multiple of the floor (and sync-proxy's added p50 ÷ nginx's)\n\n")
	fmt.Fprintf(w, "| request | %s |\n|---|%s\n", strings.Join(hops, " | "), strings.Repeat("---|", len(hops)))
	for _, p := range b.plans {
		f, ok := t.cell("floor", p.name)
		if !ok {
			continue
		}
		n, haveNginx := t.cell("nginx", p.name)
		fmt.Fprintf(w, "| %s |", p.name)
		for _, h := range hops {
			c, ok := t.cell(h, p.name)
			if !ok {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " ×%.2f", ratio(c.res.Quantile(0.5), f.res.Quantile(0.5)))
			if haveNginx && h != "nginx" {
				fmt.Fprintf(w, " (%s)", addedRatio(c, n, f))
			}
			fmt.Fprint(w, " |")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// costTable: every cell's numbers.
func (b *bench) costTable(w *strings.Builder, rs []scenarioResult) {
	fmt.Fprintf(w, "### Every cell\n\n")
	fmt.Fprintf(w, "CPU and peak RSS are the hop's process(es) (sync-proxy; nginx master + workers), CPU and minor page faults read from /proc before the cell and after every answering EL got every request (* when some never did: superseded or dropped), per request including the warm-up; CPU has 10 ms ticks. Connections are those the fake ELs accepted during the cell, per request. Statuses other than VALID are listed (SYNCING in direct mode: a forkchoiceUpdated superseded in a lane's queue).\n\n")
	fmt.Fprintf(w, "| scenario | request | body | n | p50 ms | p99 ms | max ms | req/s | CPU ms/req | budget ms | faults/req | peak RSS MB | EL conns/req | failed | statuses |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		for _, c := range r.cells {
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %.0f | %s | %.2f | %s | %s | %.3f | %s | %s |\n",
				r.sc.name, c.plan.name, size(c.bodyLen), c.res.Sent, ms(c.res.Quantile(0.5)), ms(c.res.Quantile(0.99)), ms(c.res.Max()),
				c.res.Throughput(), cpuPerReq(c), budget(c.bodyLen), faultsPerReq(c), rss(c.peakRSS),
				float64(c.conns)/float64(max(c.issued, 1)), failed(c), statuses(c))
		}
	}
	fmt.Fprintln(w)
}

// targets checks the targets of issue #8 that the bench can measure.
func (b *bench) targets(w *strings.Builder, t table) {
	fmt.Fprintf(w, "### Targets\n\n")
	proxies := []string{"mirror", "direct-1", "direct-16", "direct-hung"}
	var nginxMiss, floorMiss, cpuMiss, hangMiss []string
	for _, p := range b.plans {
		f, okF := t.cell("floor", p.name)
		n, okN := t.cell("nginx", p.name)
		for _, h := range proxies {
			c, ok := t.cell(h, p.name)
			if !ok {
				continue
			}
			if okF && okN && p.rate > 0 && added(c, f) > added(n, f) {
				nginxMiss = append(nginxMiss, fmt.Sprintf("%s %s (%s vs nginx %s ms)", h, p.name, signedMS(added(c, f)), signedMS(added(n, f))))
			}
			if okF && c.bodyLen >= 2_000_000 && float64(added(c, f)) > 1.5*float64(f.res.Quantile(0.5)) {
				floorMiss = append(floorMiss, fmt.Sprintf("%s %s (added %s ms = ×%.2f of the floor's %s)", h, p.name, ms(added(c, f)), ratio(added(c, f), f.res.Quantile(0.5)), ms(f.res.Quantile(0.5))))
			}
			if c.cpu >= 0 && c.issued > 0 && c.cpu/time.Duration(c.issued) > budgetDur(c.bodyLen) {
				cpuMiss = append(cpuMiss, fmt.Sprintf("%s %s (%s > %.2f ms)", h, p.name, cpuPerReq(c), budget(c.bodyLen)))
			}
		}
		if hc, ok := t.cell("direct-hung", p.name); ok {
			if dc, ok := t.cell("direct-1", p.name); ok && p.rate > 0 && ratio(hc.res.Quantile(0.99), dc.res.Quantile(0.99)) > 1.10 {
				hangMiss = append(hangMiss, fmt.Sprintf("%s (p99 %s vs %s ms, ×%.2f)", p.name, ms(hc.res.Quantile(0.99)), ms(dc.res.Quantile(0.99)), ratio(hc.res.Quantile(0.99), dc.res.Quantile(0.99))))
			}
		}
	}
	verdict(w, "added p50 no worse than nginx's (every paced row)", nginxMiss)
	verdict(w, "added p50 ≤ 1.5× the floor's p50 at 2 MB and above", floorMiss)
	verdict(w, "CPU per request ≤ 0.2 ms + 1 ms/MB of body", cpuMiss)
	verdict(w, "a follower that never answers moves the p99 by < 10% (direct-hung vs direct-1)", hangMiss)
	if c, ok := t.cell("mirror", "np-300KB"); ok {
		verdict(w, "mirror-mode p99 < 1 ms at 300 KB", condMiss(c.res.Quantile(0.99) >= time.Millisecond, "p99 "+ms(c.res.Quantile(0.99))+" ms"))
	}
	var connMiss []string
	for _, r := range t.rs {
		if r.sc.hop != hopProxy {
			continue
		}
		limit := int64(r.nEL-r.sc.hung) * int64(maxConc(b.plans))
		if r.conns > limit {
			connMiss = append(connMiss, fmt.Sprintf("%s (%d connections for %d answering ELs × %d senders)", r.sc.name, r.conns, r.nEL-r.sc.hung, maxConc(b.plans)))
		}
	}
	verdict(w, "new upstream connections ≤ one per EL per concurrent sender (whole scenario)", connMiss)
	for _, r := range t.rs {
		if r.sc.burst {
			verdict(w, fmt.Sprintf("%s: every block answered, the follower shown behind, the backlog within its budget, peak RSS ≤ --backlog-bytes + --replay-bytes + %d MiB", r.sc.name, burstRSSMargin>>20), burstMisses(r, b.o))
		}
	}
	fmt.Fprintf(w, "- allocations per request do not grow with the number of ELs: see `go test -bench . -benchmem ./internal/proxy/`\n")
}

func verdict(w *strings.Builder, target string, misses []string) {
	if len(misses) == 0 {
		fmt.Fprintf(w, "- **met**: %s\n", target)
		return
	}
	fmt.Fprintf(w, "- **missed**: %s — %s\n", target, strings.Join(misses, "; "))
}

func condMiss(missed bool, what string) []string {
	if missed {
		return []string{what}
	}
	return nil
}

func maxConc(ps []plan) int {
	m := 1
	for _, p := range ps {
		m = max(m, p.conc)
	}
	return m
}

// added is a cell's p50 over the floor's.
func added(c, floor cell) time.Duration { return c.res.Quantile(0.5) - floor.res.Quantile(0.5) }

// addedRatio is sync-proxy's added p50 as a multiple of nginx's.
func addedRatio(c, nginx, floor cell) string {
	a, n := added(c, floor), added(nginx, floor)
	if n <= 0 {
		return "nginx added " + signedMS(n)
	}
	return fmt.Sprintf("%.2f× nginx's added", float64(a)/float64(n))
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	if v >= 10 || v <= -10 {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func signedMS(d time.Duration) string {
	if d >= 0 {
		return "+" + ms(d)
	}
	return ms(d)
}

func size(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.0f KB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f KB", float64(n)/1e3)
}

// budget is the CPU target for a body of n bytes, in ms: 0.2 ms + 1 ms per MB.
func budget(n int) float64 { return 0.2 + float64(n)/1e6 }

func budgetDur(n int) time.Duration { return time.Duration(budget(n) * float64(time.Millisecond)) }

func cpuPerReq(c cell) string {
	if c.cpu < 0 {
		return "–"
	}
	s := fmt.Sprintf("%.3f", float64(c.cpu)/float64(time.Millisecond)/float64(max(c.issued, 1)))
	if !c.drained {
		s += "*"
	}
	return s
}

func faultsPerReq(c cell) string {
	if c.cpu < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(c.faults)/float64(max(c.issued, 1)))
}

// statuses lists the answers' statuses when any is not VALID.
func statuses(c cell) string {
	if len(c.res.Statuses) == 1 && c.res.Statuses["VALID"] > 0 {
		return ""
	}
	var parts []string
	for _, k := range loadgen.SortedKeys(c.res.Statuses) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c.res.Statuses[k]))
	}
	return strings.Join(parts, ", ")
}

func rss(n int64) string {
	if n < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(n)/(1<<20))
}

func failed(c cell) string {
	s := fmt.Sprint(c.res.Failed())
	if c.elBad > 0 {
		s += fmt.Sprintf(" (EL refused %d)", c.elBad)
	}
	return s
}
