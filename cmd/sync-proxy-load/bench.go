package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/loadgen"
)

// benchLimit bounds a whole bench run.
const benchLimit = 15 * time.Minute

// plan is one row of load: a shape sent at a rate (or closed loop) for a while.
type plan struct {
	name     string // row label
	shape    string
	rate     float64 // 0: closed loop
	conc     int
	dur      time.Duration // 0: requests alone bounds the plan
	requests int           // recorded requests (0: dur alone bounds the plan)
	warmup   int           // unrecorded requests first (they also open the connections)
}

// defaultPlans is the load of every scenario: each newPayload size and both
// forkchoiceUpdated forms paced at a fixed rate (far above a beacon node's one block per
// slot, yet low enough that 17 ELs' worth of copies fit in two cores), then two closed loops
// for throughput, CPU per request under load, and connection reuse.
func defaultPlans(quick bool) []plan {
	ps := []plan{
		{name: "np-1.4KB", shape: "np-1.4KB", rate: 100, conc: 4, dur: 3 * time.Second, warmup: 20},
		{name: "np-300KB", shape: "np-300KB", rate: 25, conc: 4, dur: 3 * time.Second, warmup: 5},
		{name: "np-2MB", shape: "np-2MB", rate: 4, conc: 4, dur: 5 * time.Second, warmup: 2},
		{name: "np-12MB", shape: "np-12MB", rate: 1, conc: 2, dur: 8 * time.Second, warmup: 1},
		{name: "fcu", shape: "fcu", rate: 100, conc: 4, dur: 2 * time.Second, warmup: 20},
		{name: "fcu-attrs", shape: "fcu-attrs", rate: 100, conc: 4, dur: 2 * time.Second, warmup: 20},
		{name: "np-300KB closed loop", shape: "np-300KB", conc: 1, dur: 3 * time.Second, warmup: 5},
		{name: "fcu ×8 closed loop", shape: "fcu", conc: 8, dur: 2 * time.Second, warmup: 20},
	}
	if quick {
		for i := range ps {
			ps[i].dur /= 2
		}
	}
	return ps
}

// hop is what sits between the load and the fake ELs.
type hop uint8

const (
	hopNone  hop = iota // the floor: straight to the EL
	hopNginx            // nginx proxy_pass
	hopProxy            // sync-proxy
)

// scenario is one column of the comparison.
type scenario struct {
	name      string
	what      string
	hop       hop
	mirror    bool
	followers int  // ELs besides the first
	hung      int  // of which never answer (the last ones)
	burst     bool // runs the burst plan instead of the standard ones
}

func scenarios() []scenario {
	return []scenario{
		{name: "floor", what: "direct to one fake EL", hop: hopNone},
		{name: "nginx", what: "nginx proxy_pass, upstream keep-alive, unbuffered", hop: hopNginx},
		{name: "mirror", what: "sync-proxy mirror mode, 1 EL", hop: hopProxy, mirror: true},
		{name: "direct-1", what: "sync-proxy direct, primary + 1 follower", hop: hopProxy, followers: 1},
		{name: "direct-16", what: "sync-proxy direct, primary + 16 followers", hop: hopProxy, followers: 16},
		{name: "direct-hung", what: "sync-proxy direct, primary + 1 follower that never answers", hop: hopProxy, followers: 1, hung: 1},
		{name: "burst-hung", what: "sync-proxy direct, primary + 1 follower that never answers, blocks of 300 KB back to back (a range-syncing beacon node)", hop: hopProxy, followers: 1, hung: 1, burst: true},
	}
}

// cell is one plan measured in one scenario.
type cell struct {
	plan    plan
	res     loadgen.Result
	issued  int           // recorded + warmup
	cpu     time.Duration // of the hop's processes; -1 when there is none
	peakRSS int64         // of the hop's processes; -1 when there is none
	faults  int64         // minor page faults of the hop's processes
	conns   int64         // connections the ELs accepted during the cell
	drained bool          // every answering EL got every request before the CPU was read
	elBad   int64         // requests the ELs refused
	bodyLen int
}

// benchOpts are the bench subcommand's flags.
type benchOpts struct {
	proxyBin, nginxBin string
	out, profile       string
	quick              bool
	only               []string
	seed               uint64
	burstBlocks        int   // blocks the burst scenario sends
	backlogBytes       int64 // the proxy's --backlog-bytes in the burst scenario
	recentBytes        int64 // and its --replay-bytes
}

// runBench is the bench subcommand.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o benchOpts
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.proxyBin, "proxy-bin", "bin/sync-proxy", "the sync-proxy binary to measure")
	fs.StringVar(&o.nginxBin, "nginx", "/usr/sbin/nginx", "the nginx binary (empty skips the nginx scenario)")
	fs.StringVar(&o.out, "out", "", "also write the markdown report to this file")
	fs.StringVar(&o.profile, "profile", "", "write a CPU profile of sync-proxy (direct-1 scenario) to this file")
	fs.BoolVar(&o.quick, "quick", false, "half-length cells")
	only := fs.String("scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(namesOf(scenarios()), ",")+")")
	fs.Uint64Var(&o.seed, "seed", 1, "seed for transactions and block hashes")
	fs.IntVar(&o.burstBlocks, "burst-blocks", 0, fmt.Sprintf("blocks the burst scenario sends (default %d, %d with -quick)", burstBlocks, burstQuickBlocks))
	fs.Int64Var(&o.backlogBytes, "burst-backlog-bytes", 0, "the proxy's --backlog-bytes in the burst scenario (default the proxy's default)")
	fs.Int64Var(&o.recentBytes, "burst-replay-bytes", 0, "the proxy's --replay-bytes in the burst scenario (default the proxy's default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.burstBlocks < 0 || o.backlogBytes < 0 || o.recentBytes < 0 {
		return usageErr("-burst-blocks, -burst-backlog-bytes and -burst-replay-bytes must not be negative")
	}
	if o.burstBlocks == 0 {
		o.burstBlocks = burstBlocks
		if o.quick {
			o.burstBlocks = burstQuickBlocks
		}
	}
	defaultBurstOpts(&o)
	if fs.NArg() > 0 {
		return usageErr("no arguments expected")
	}
	if *only != "" {
		o.only = strings.Split(*only, ",")
	}
	ctx, cancel := context.WithTimeout(ctx, benchLimit)
	defer cancel()
	b, err := newBench(o, stderr)
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.dir)
	results, err := b.run(ctx)
	if err != nil {
		return err
	}
	report := b.report(results)
	fmt.Fprint(stdout, report)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.err != nil {
			return fmt.Errorf("scenario %s did not complete: %w", r.sc.name, r.err)
		}
	}
	return nil
}

// bench holds what every scenario shares.
type bench struct {
	o       benchOpts
	log     io.Writer
	dir     string
	elJWT   string // secret files
	bnJWT   string
	elKey   *jwtauth.Secret
	bnKey   *jwtauth.Secret
	plans   []plan
	tpls    map[string]*loadgen.Template
	seq     uint64 // next request number: no two requests of the run share a block
	started time.Time
}

func newBench(o benchOpts, log io.Writer) (*bench, error) {
	if o.nginxBin == "" {
		if len(o.only) == 0 {
			o.only = namesOf(scenarios())
		}
		o.only = slices.DeleteFunc(o.only, func(s string) bool { return s == "nginx" })
	}
	if fi, err := os.Stat(o.proxyBin); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("sync-proxy binary %s is not an executable file (run make build)", o.proxyBin)
	}
	dir, err := os.MkdirTemp("", "sync-proxy-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, log: log, dir: dir, plans: defaultPlans(o.quick), tpls: map[string]*loadgen.Template{}, started: time.Now()}
	if b.elJWT, b.elKey, err = writeSecret(dir, "el.hex"); err == nil {
		b.bnJWT, b.bnKey, err = writeSecret(dir, "bn.hex")
	}
	if err == nil {
		err = b.renderTemplates()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return b, nil
}

func namesOf(ss []scenario) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.name)
	}
	return out
}

// writeSecret writes a fresh random JWT secret file.
func writeSecret(dir, name string) (string, *jwtauth.Secret, error) {
	var s jwtauth.Secret
	if _, err := rand.Read(s[:]); err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(hex.EncodeToString(s[:])), 0o600); err != nil {
		return "", nil, err
	}
	return path, &s, nil
}

func (b *bench) renderTemplates() error {
	for _, p := range append(slices.Clone(b.plans), burstPlan(b.o.burstBlocks)) {
		if _, ok := b.tpls[p.shape]; ok {
			continue
		}
		s, err := loadgen.ShapeByName(p.shape)
		if err != nil {
			return err
		}
		t, err := loadgen.NewTemplate(s, b.o.seed)
		if err != nil {
			return err
		}
		b.tpls[p.shape] = t
	}
	return nil
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.log, "[%5.1fs] "+format+"\n", append([]any{time.Since(b.started).Seconds()}, a...)...)
}

// scenarioResult is one scenario's cells.
type scenarioResult struct {
	sc    scenario
	cells []cell
	conns int64 // connections accepted by the ELs over the whole scenario
	nEL   int
	burst *burstState // a burst scenario's end state
	err   error
}

// run measures every selected scenario in turn.
func (b *bench) run(ctx context.Context) ([]scenarioResult, error) {
	var out []scenarioResult
	for _, sc := range scenarios() {
		if len(b.o.only) > 0 && !slices.Contains(b.o.only, sc.name) {
			continue
		}
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		b.logf("scenario %s: %s", sc.name, sc.what)
		r := b.scenario(ctx, sc)
		if r.err != nil {
			b.logf("scenario %s failed: %v", sc.name, r.err)
		}
		out = append(out, r)
	}
	return out, nil
}

// scenario starts the fake ELs and the hop, runs every plan, and stops what it started.
func (b *bench) scenario(ctx context.Context, sc scenario) scenarioResult {
	r := scenarioResult{sc: sc}
	els, err := b.startELs(sc)
	defer func() {
		for _, el := range els {
			_ = el.Close()
		}
	}()
	if err != nil {
		r.err = err
		return r
	}
	r.nEL = len(els)
	url, key, hopProc, opsURL, err := b.startHop(sc, els)
	if err != nil {
		r.err = err
		return r
	}
	if hopProc != nil {
		defer hopProc.stop(syscall.SIGTERM, 5*time.Second)
	}
	var prof chan error
	if b.o.profile != "" && sc.name == "direct-1" {
		prof = b.startProfile(opsURL)
	}
	plans := b.plans
	if sc.burst {
		plans = []plan{burstPlan(b.o.burstBlocks)}
	}
	for _, p := range plans {
		if ctx.Err() != nil {
			break
		}
		c, err := b.cell(ctx, sc, p, url, key, hopProc, els)
		if err != nil {
			r.err = err
			break
		}
		r.cells = append(r.cells, c)
	}
	if sc.burst && r.err == nil {
		st, err := readBurstState(ctx, opsURL)
		if err != nil {
			r.err = err
		} else {
			r.burst = &st
		}
	}
	for i, el := range els {
		if i < len(els)-sc.hung {
			r.conns += el.Stats().Accepted
		}
	}
	if prof != nil {
		if err := <-prof; err != nil {
			b.logf("profile: %v", err)
		}
	}
	return r
}

// startELs starts the first EL, the answering followers and the hung ones.
func (b *bench) startELs(sc scenario) ([]*loadgen.FakeEL, error) {
	var els []*loadgen.FakeEL
	for i := range 1 + sc.followers {
		cfg := loadgen.FakeELConfig{Secret: b.elKey, Hang: i > sc.followers-sc.hung}
		el, err := loadgen.StartFakeEL("127.0.0.1:0", cfg)
		if err != nil {
			return els, err
		}
		els = append(els, el)
	}
	return els, nil
}

// startHop starts the scenario's hop and returns where the load goes and with which secret.
func (b *bench) startHop(sc scenario, els []*loadgen.FakeEL) (url string, key *jwtauth.Secret, c *child, opsURL string, err error) {
	switch sc.hop {
	case hopNginx:
		c, url, err = startNginx(b.o.nginxBin, b.dir, els[0].Addr())
		return url, b.elKey, c, "", err
	case hopProxy:
		s := proxySetup{
			bin: b.o.proxyBin, dir: b.dir, mirror: sc.mirror, els: els,
			elJWT: b.elJWT, bnJWT: b.bnJWT, profile: b.o.profile != "" && sc.name == "direct-1",
		}
		if sc.burst {
			s.extra = burstArgs(b.o)
		}
		c, url, opsURL, err = startProxy(s)
		return url, b.bnKey, c, opsURL, err
	}
	return els[0].URL(), b.elKey, nil, "", nil
}

// startProfile fetches a CPU profile of the proxy covering most of the scenario (the
// operations listener's write timeout is 30 s).
func (b *bench) startProfile(opsURL string) chan error {
	var total time.Duration
	for _, p := range b.plans {
		total += p.dur
	}
	secs := min(25, int(total.Seconds())+1)
	done := make(chan error, 1)
	go func() {
		client := &http.Client{Timeout: time.Duration(secs+15) * time.Second}
		resp, err := client.Get(opsURL + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, data)
		}
		if err == nil {
			err = os.WriteFile(b.o.profile, data, 0o644)
			b.logf("CPU profile (%ds) written to %s", secs, b.o.profile)
		}
		done <- err
	}()
	return done
}

// cell runs one plan and measures the hop around it.
func (b *bench) cell(ctx context.Context, sc scenario, p plan, url string, key *jwtauth.Secret, hopProc *child, els []*loadgen.FakeEL) (cell, error) {
	tpl := b.tpls[p.shape]
	c := cell{plan: p, cpu: -1, peakRSS: -1, bodyLen: tpl.Len()}
	answering := els[:len(els)-sc.hung]
	before := statsOf(els)
	var s0 loadgen.ProcSample
	if hopProc != nil {
		for _, pid := range hopProc.measured() {
			_ = loadgen.ResetPeak(pid)
		}
		var err error
		if s0, err = loadgen.ReadProcs(hopProc.measured()); err != nil {
			return c, err
		}
	}
	res, err := loadgen.Run(ctx, loadgen.RunConfig{
		URL: url, Template: tpl, Secret: key, Concurrency: p.conc, Rate: p.rate, Duration: p.dur, Requests: p.requests,
		Warmup: p.warmup, StartSeq: b.seq, Timeout: 15 * time.Second, Expect: expectFor(sc, tpl.Shape.Kind),
	})
	if err != nil {
		return c, err
	}
	b.seq = res.NextSeq
	c.res, c.issued = res, res.Sent+p.warmup
	c.drained = waitDrained(answering, before, int64(c.issued))
	after := statsOf(els)
	for i := range els {
		c.conns += after[i].Accepted - before[i].Accepted
		c.elBad += after[i].Rejected - before[i].Rejected
	}
	if hopProc != nil {
		s, err := loadgen.ReadProcs(hopProc.measured())
		if err != nil {
			return c, err
		}
		c.cpu, c.peakRSS, c.faults = s.CPU-s0.CPU, s.PeakRSS, s.MinFlt-s0.MinFlt
	}
	b.logf("  %-9s %-20s %s", sc.name, p.name, res)
	if res.FirstErr != "" {
		b.logf("    first error: %s", res.FirstErr)
	}
	runtime.GC() // the next cell should not pay for this one's garbage
	return c, nil
}

// expectFor is what a correct answer carries: SYNCING from a proxy in mirror mode; VALID
// from an EL; and from sync-proxy in direct mode VALID, or SYNCING for a forkchoiceUpdated
// that a newer one superseded in a lane's queue before it was sent.
func expectFor(sc scenario, k loadgen.Kind) loadgen.Expect {
	switch {
	case sc.mirror:
		return loadgen.Expect{Statuses: []string{loadgen.StatusSyncing}}
	case sc.hop == hopProxy && k != loadgen.KindNewPayload:
		return loadgen.Expect{Statuses: []string{loadgen.StatusValid, loadgen.StatusSyncing}}
	}
	return loadgen.Expect{Statuses: []string{loadgen.StatusValid}}
}

func statsOf(els []*loadgen.FakeEL) []loadgen.FakeELStats {
	out := make([]loadgen.FakeELStats, len(els))
	for i, el := range els {
		out[i] = el.Stats()
	}
	return out
}

// waitDrained waits until every answering EL has seen n more requests than before (the
// proxy delivers to followers after it has answered), or until nothing has moved for a
// second (a lane dropped or coalesced some), at most 30 s. It reports whether all arrived.
func waitDrained(els []*loadgen.FakeEL, before []loadgen.FakeELStats, n int64) bool {
	deadline := time.Now().Add(30 * time.Second)
	last, lastMove := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		total, done := int64(0), true
		for i, el := range els {
			got := el.Stats().Requests - before[i].Requests
			total += got
			done = done && got >= n
		}
		if done {
			return true
		}
		if total != last {
			last, lastMove = total, time.Now()
		} else if time.Since(lastMove) > time.Second {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}
