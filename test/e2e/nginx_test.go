package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

// nginxTemplate is the test's nginx.conf, kept beside the operator example.
const nginxTemplate = "deploy/nginx/e2e-mirror.conf.tmpl"

// nginxServer is one BN's server block: nginx listens on Listen, proxies to the BN's own EL
// and mirrors to sync-proxy's /bn/Name.
type nginxServer struct {
	Name   string
	Listen string // 127.0.0.1:port
	EL     string // the BN's own geth, 127.0.0.1:port
}

// nginxProc is one nginx in the foreground with its prefix, config and logs in a temp dir.
type nginxProc struct {
	t         *testing.T
	dir       string
	accessLog string
	errorLog  string
	proc      *gethproc.Process
}

// nginxBinary finds nginx: $NGINX_BINARY, PATH, then /usr/sbin/nginx. Missing nginx is a
// failure (CI installs it with apt-get install nginx-light or nginx).
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NGINX_BINARY"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("NGINX_BINARY=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Fatalf("nginx not found (NGINX_BINARY unset, not on PATH, not at /usr/sbin/nginx); install it, e.g. apt-get install nginx")
	return ""
}

// startNginx renders the template for servers, checks it with nginx -t, starts nginx and
// waits until every server accepts connections. It is stopped by PID in t.Cleanup.
func startNginx(t *testing.T, syncProxy string, servers []nginxServer) *nginxProc {
	t.Helper()
	bin := nginxBinary(t)
	tmpl, err := template.ParseFiles(filepath.Join(repoRoot(t), nginxTemplate))
	if err != nil {
		t.Fatalf("nginx template: %v", err)
	}
	n := &nginxProc{t: t, dir: t.TempDir()}
	n.accessLog = filepath.Join(n.dir, "access.log")
	n.errorLog = filepath.Join(n.dir, "error.log")
	conf := filepath.Join(n.dir, "nginx.conf")
	f, err := os.Create(conf)
	if err != nil {
		t.Fatal(err)
	}
	err = tmpl.Execute(f, map[string]any{"Dir": n.dir, "SyncProxy": syncProxy, "Servers": servers})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("render nginx.conf: %v", err)
	}
	args := []string{"-p", n.dir, "-c", conf, "-e", n.errorLog}
	if out, err := exec.Command(bin, append([]string{"-t"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	n.proc, err = gethproc.Command{Bin: bin, Args: args, LogPath: filepath.Join(n.dir, "stderr.log")}.Start()
	if err != nil {
		t.Fatalf("nginx: %v", err)
	}
	t.Cleanup(n.cleanup)
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range servers {
		for {
			c, err := net.DialTimeout("tcp", s.Listen, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if n.proc.ExitedNow() {
				t.Fatalf("nginx exited during start-up (%v)\n%s", n.proc.ExitErr(), fileTail(n.errorLog, logTailLines))
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx not listening on %s: %v\n%s", s.Listen, err, fileTail(n.errorLog, logTailLines))
			}
			time.Sleep(pollInterval)
		}
	}
	return n
}

func (n *nginxProc) cleanup() {
	if err := n.proc.Stop(stopTimeout); err != nil {
		n.t.Errorf("nginx: stop: %v", err)
	}
	if n.t.Failed() {
		n.t.Logf("---- nginx error log tail (%s) ----\n%s", n.errorLog, fileTail(n.errorLog, logTailLines))
	}
	keepLog(n.t, "nginx-error", n.errorLog)
	keepLog(n.t, "nginx-access", n.accessLog)
}

// accessEntry is one line of the e2e access log.
type accessEntry struct {
	port, uri, status, upstreamStatus string
}

// accessEntries reads the access log.
func (n *nginxProc) accessEntries() []accessEntry {
	n.t.Helper()
	f, err := os.Open(n.accessLog)
	if err != nil {
		n.t.Fatalf("nginx access log: %v", err)
	}
	defer f.Close()
	var out []accessEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		out = append(out, accessEntry{port: fields[0], uri: fields[2], status: fields[3],
			upstreamStatus: strings.TrimPrefix(fields[5], "upstream_status=")})
	}
	return out
}

// mirrorCounts counts main requests and mirror subrequests (by status) per server port.
func (n *nginxProc) mirrorCounts() (main map[string]int, mirror map[string]map[string]int) {
	main, mirror = map[string]int{}, map[string]map[string]int{}
	for _, e := range n.accessEntries() {
		if e.uri == "/_sync_proxy" {
			if mirror[e.port] == nil {
				mirror[e.port] = map[string]int{}
			}
			mirror[e.port][e.status]++
			continue
		}
		main[e.port]++
	}
	return main, mirror
}

// TestProxyMirrorNginx is scenario (b), the Flashbots topology: each of two BNs talks to its
// own nginx server, which proxies to the BN's own geth (the BN gets that geth's answers) and
// mirrors every request to sync-proxy's /bn/<name>. sync-proxy runs in mirror mode and drives
// two more gethes, each with its own JWT secret: the mirrored requests carry the BN's own
// token (its EL's secret), which sync-proxy verifies with that BN's --bn secret and replaces
// with a token for each EL. Every geth must reach every block's head.
//
// Then sync-proxy hangs (SIGSTOP) for two blocks: the BNs still get their own ELs' answers,
// slowed by at most the mirror's 100 ms timeouts; once it resumes, every geth follows again.
func TestProxyMirrorNginx(t *testing.T) {
	const (
		blocks = 16
		hung   = 2
		after  = 3
	)
	syncProxyBinary(t)
	nginxBinary(t)
	total := blocks + hung + after
	chain := newTestChain(t, cldriver.Osaka, uint64(time.Now().Unix())-uint64(total+1)*slotSeconds)
	nodes := startGeths(t, chain, "builder", "el-bn1", "el-bn2", "follower1", "follower2")
	builder, own, followers := nodes[0], nodes[1:3], nodes[3:]
	// A BN and its own EL share a secret; sync-proxy is told the BN's.
	bns := []*beaconNode{
		{name: "bn1", secret: own[0].secret, secretPath: own[0].secretPath},
		{name: "bn2", secret: own[1].secret, secretPath: own[1].secretPath},
	}
	proxy := startSyncProxy(t, proxyConfig{
		els:  []proxyEL{{node: followers[0], role: roleFollower}, {node: followers[1], role: roleFollower}},
		bns:  bns,
		slot: slotSeconds * time.Second,
	})
	ports := freePorts(t, 2)
	servers := []nginxServer{
		{Name: "bn1", Listen: fmt.Sprintf("127.0.0.1:%d", ports[0]), EL: own[0].EngineAddr()},
		{Name: "bn2", Listen: fmt.Sprintf("127.0.0.1:%d", ports[1]), EL: own[1].EngineAddr()},
	}
	ngx := startNginx(t, proxy.listen, servers)
	requireLoopbackOnly(t, "nginx", ngx.proc.PID())
	driver := newDriver(t, chain, builder)
	// What a real BN does: its own secret, no id claim.
	eps := make([]*cldriver.Endpoint, len(bns))
	for i, bn := range bns {
		s := bn.secret
		eps[i] = &cldriver.Endpoint{URL: "http://" + servers[i].Listen, Secret: &s, HTTP: testHTTPClient}
	}
	start := time.Now()

	var normal, stalled durations
	sendAll := func(b *cldriver.Block, lat *durations) {
		for _, kind := range []string{"newPayload", "forkchoiceUpdated"} {
			for i, ep := range eps {
				npID, fcuID := blockIDs(b.Number, i)
				t0 := time.Now()
				var st cldriver.PayloadStatus
				if kind == "newPayload" {
					st = sendNewPayload(t, ep, b, npID)
				} else {
					st = sendForkchoice(t, ep, b, fcuID)
				}
				*lat = append(*lat, time.Since(t0))
				// sync-proxy in mirror mode would say SYNCING: VALID is the BN's own geth.
				requireStatus(t, fmt.Sprintf("block %d %s from %s through nginx", b.Number, kind, bns[i].name), st, cldriver.StatusValid)
			}
		}
	}

	for range blocks {
		b := buildBlock(t, driver)
		sendAll(b, &normal)
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	requireNonce(t, chain, driver.Sent(), nodes...)
	st := proxy.mustStatus(t)
	t.Logf("status: %s", st)
	if st.Mode != "mirror" {
		t.Errorf("sync-proxy mode %q, want mirror", st.Mode)
	}
	names := map[string]uint64{}
	for _, bn := range st.BNs {
		names[bn.Name] = bn.Requests
	}
	for _, bn := range bns {
		if names[bn.name] != 2*blocks {
			t.Errorf("sync-proxy counted %d requests from %s, want %d (BNs seen: %v)", names[bn.name], bn.name, 2*blocks, names)
		}
	}
	if st.Writer != "bn1" && st.Writer != "bn2" {
		t.Errorf("writer %q, want bn1 or bn2", st.Writer)
	}
	for _, el := range st.ELs {
		if el.State != "up" || el.Failed != 0 {
			t.Errorf("el %s: state %s, %d failed (last error %q)", el.Name, el.State, el.Failed, el.LastError)
		}
	}
	// Every request was mirrored and accepted (sync-proxy counted each one above). A 504 is
	// nginx giving up after 100 ms on a loaded machine while sync-proxy still took the
	// request; anything else (401, 502, ...) is a failure.
	main, mirror := ngx.mirrorCounts()
	for _, s := range servers {
		_, port, _ := net.SplitHostPort(s.Listen)
		if main[port] != 2*blocks || mirror[port]["200"]+mirror[port]["504"] != 2*blocks {
			t.Fatalf("nginx %s (%s): %d requests, mirror statuses %v; want %d requests, each mirrored with 200 (or 504 after 100 ms)", s.Name, port, main[port], mirror[port], 2*blocks)
		}
	}
	t.Logf("through nginx: %d requests, mirror statuses per port %v; BN latency %s", 4*blocks, mirror, normal)

	// sync-proxy hangs: the BNs must not wait for it longer than the mirror timeouts.
	if err := proxy.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for range hung {
		b := buildBlock(t, driver)
		sendAll(b, &stalled)
		waitHeadsEqual(t, b.Head(), builder, own[0], own[1])
	}
	if err := proxy.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	t.Logf("BN latency while sync-proxy was stopped: %s (before: %s)", stalled, normal)
	// nginx holds a request until its mirror answers or times out (100 ms here).
	if limit := normal.median() + 100*time.Millisecond + 300*time.Millisecond; stalled.max() > limit {
		t.Errorf("a BN waited %v for its own EL's answer while sync-proxy hung (limit %v: usual latency, the 100 ms mirror timeout, margin)", stalled.max(), limit)
	}
	for range after {
		b := buildBlock(t, driver)
		sendAll(b, &normal)
		waitHeadsEqual(t, b.Head(), nodes...)
	}
	requireNonce(t, chain, driver.Sent(), nodes...)
	_, mirror = ngx.mirrorCounts()
	t.Logf("mirror statuses per nginx port: %v", mirror)
	t.Logf("scenario (b): %d blocks in %v", driver.Head().Number, time.Since(start).Round(time.Second))
}
