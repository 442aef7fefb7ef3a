package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/loadgen"
	"github.com/sync-proxy/sync-proxy/internal/status"
)

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	missing := filepath.Join(t.TempDir(), "sync-proxy")
	for args, want := range map[string]int{"": 2, "nope": 2, "help": 0, "run": 2, "el --listen 0.0.0.0:1": 2, "bench --proxy-bin " + missing: 1} {
		out.Reset()
		errOut.Reset()
		if got := run(context.Background(), strings.Fields(args), &out, &errOut); got != want {
			t.Errorf("%q: exit %d, want %d (%s)", args, got, want, errOut.String())
		}
	}
}

func TestLoopbackAddr(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "[::1]:2": true, "0.0.0.0:1": false, "10.0.0.1:1": false, "localhost:1": false, "x": false} {
		if err := loopbackAddr(addr); (err == nil) != ok {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

// TestRunSubcommand sends a few requests through the run subcommand to an el started in
// process, with a token.
func TestRunSubcommand(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "jwt.hex")
	if err := os.WriteFile(secret, []byte(strings.Repeat("ab", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	el, err := loadgen.StartFakeEL("127.0.0.1:0", loadgen.FakeELConfig{Secret: s})
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close()
	var out, errOut bytes.Buffer
	args := []string{"run", "--url", el.URL(), "--jwt-secret", secret, "--shape", "np-1.4KB,fcu-attrs", "--requests", "5", "--warmup", "1", "--expect", "VALID"}
	if code := run(context.Background(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if got := strings.Count(out.String(), "5 ok, 0 failed"); got != 2 {
		t.Errorf("output:\n%s", out.String())
	}
	if st := el.Stats(); st.Requests != 12 || st.Rejected != 0 {
		t.Errorf("el saw %+v", st)
	}
}

func TestExpectFor(t *testing.T) {
	mirror := scenario{hop: hopProxy, mirror: true}
	direct := scenario{hop: hopProxy}
	floor := scenario{hop: hopNone}
	cases := []struct {
		sc   scenario
		kind loadgen.Kind
		want string
	}{
		{mirror, loadgen.KindNewPayload, "SYNCING"},
		{direct, loadgen.KindNewPayload, "VALID"},
		{direct, loadgen.KindForkchoice, "VALID,SYNCING"},
		{floor, loadgen.KindForkchoice, "VALID"},
	}
	for _, c := range cases {
		if got := strings.Join(expectFor(c.sc, c.kind).Statuses, ","); got != c.want {
			t.Errorf("%+v %v: %s, want %s", c.sc, c.kind, got, c.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	if got := ms(1500 * time.Microsecond); got != "1.500" {
		t.Errorf("ms = %s", got)
	}
	if got := ms(25 * time.Millisecond); got != "25.0" {
		t.Errorf("ms = %s", got)
	}
	if got := signedMS(-time.Millisecond); got != "-1.000" {
		t.Errorf("signedMS = %s", got)
	}
	if got := size(12_000_000); got != "12.0 MB" {
		t.Errorf("size = %s", got)
	}
	if got := budget(2_000_000); got != 2.2 {
		t.Errorf("budget = %v", got)
	}
}

func TestNginxConfIsLoopbackOnly(t *testing.T) {
	if strings.Contains(nginxConf, "0.0.0.0") || !strings.Contains(nginxConf, "daemon off;") {
		t.Error("nginx must run in the foreground and on the given loopback address only")
	}
}

func TestBurstMisses(t *testing.T) {
	o := benchOpts{backlogBytes: 64 << 20, recentBytes: 32 << 20}
	good := func() scenarioResult {
		c := cell{plan: burstPlan(100), peakRSS: 150 << 20, bodyLen: 300_000}
		c.res.OK = 100
		return scenarioResult{sc: scenario{name: "burst-hung", burst: true}, cells: []cell{c}, burst: &burstState{
			backlog: status.Backlog{BudgetBytes: 64 << 20, PeakBytes: 64 << 20},
			hung:    status.EL{Behind: true, ShedBlocks: 40},
		}}
	}
	cases := []struct {
		name  string
		edit  func(*scenarioResult)
		wants string // "" when nothing is missed
	}{
		{"all met", func(*scenarioResult) {}, ""},
		{"incomplete", func(r *scenarioResult) { r.burst = nil }, "did not complete"},
		{"a block unanswered", func(r *scenarioResult) { r.cells[0].res.OK = 99 }, "99 of 100 blocks"},
		{"over the memory limit", func(r *scenarioResult) { r.cells[0].peakRSS = 197 << 20 }, "peak RSS 197 MiB > 196 MiB"},
		{"at the memory limit", func(r *scenarioResult) { r.cells[0].peakRSS = 196 << 20 }, ""},
		{"follower not behind", func(r *scenarioResult) { r.burst.hung.Behind = false }, "not shown behind"},
		{"nothing shed", func(r *scenarioResult) { r.burst.hung.ShedBlocks = 0 }, "not shown behind"},
		{"backlog over budget", func(r *scenarioResult) { r.burst.backlog.PeakBytes = 69 << 20 }, "backlog peak 69 MiB"},
		{"backlog within slack", func(r *scenarioResult) { r.burst.backlog.PeakBytes = 68 << 20 }, ""},
	}
	for _, c := range cases {
		r := good()
		c.edit(&r)
		got := strings.Join(burstMisses(r, o), "; ")
		if (c.wants == "") != (got == "") || !strings.Contains(got, c.wants) {
			t.Errorf("%s: misses %q, want %q", c.name, got, c.wants)
		}
	}
}
