package config

import (
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c Config)
	}{
		{
			name: "els and bns",
			args: []string{"--el", "name=geth1,url=http://127.0.0.1:8551,jwt-secret=/s/g1,role=primary",
				"--el", "127.0.0.1:8552", "--bn", "name=lh,jwt-secret=/s/lh,id=lh-1", "--slot-duration", "2s"},
			check: func(t *testing.T, c Config) {
				if len(c.ELs) != 2 || c.ELs[0] != (EL{Name: "geth1", URL: "http://127.0.0.1:8551", JWTSecret: "/s/g1", Role: "primary"}) ||
					c.ELs[1] != (EL{Name: "el2", URL: "http://127.0.0.1:8552", Role: "follower"}) {
					t.Fatalf("els %+v", c.ELs)
				}
				if len(c.BNs) != 1 || c.BNs[0] != (BN{Name: "lh", JWTSecret: "/s/lh", ID: "lh-1"}) || c.SlotDuration != 2*time.Second {
					t.Fatalf("bns %+v slot %v", c.BNs, c.SlotDuration)
				}
				if !c.Direct() {
					t.Fatal("a primary EL means direct mode")
				}
			},
		},
		{
			name: "flashbots aliases",
			args: []string{"-addr", "0.0.0.0:25590", "-builders", "localhost:8551,http://10.0.0.2:8551", "-proxies", "http://p1:25590,p2:25590",
				"-request-timeout", "2000", "-loglevel", "debug", "-json"},
			check: func(t *testing.T, c Config) {
				if c.Listen != "0.0.0.0:25590" || c.DialTimeout != 2*time.Second || c.LogLevel != "debug" || c.LogFormat != "json" {
					t.Fatalf("%+v", c)
				}
				if len(c.ELs) != 2 || c.ELs[0].Role != "primary" || c.ELs[1].Role != "follower" || c.ELs[0].URL != "http://localhost:8551" {
					t.Fatalf("builders %+v", c.ELs)
				}
				if len(c.Proxies) != 2 || c.Proxies[1].URL != "http://p2:25590" || c.Proxies[0].Role != "relay" {
					t.Fatalf("proxies %+v", c.Proxies)
				}
			},
		},
		{
			name: "environment, command line wins",
			args: []string{"--log-level", "warn"},
			env: map[string]string{"SYNC_PROXY_LOG_LEVEL": "debug", "SYNC_PROXY_EL": "name=a,url=http://127.0.0.1:1;name=b,url=http://127.0.0.1:2",
				"SYNC_PROXY_MAX_BODY": "64MiB", "SYNC_PROXY_TRUSTED_PROXIES": "10.0.0.1,fd00::/8", "SYNC_PROXY_SILENCE_TIMEOUT": "30s"},
			check: func(t *testing.T, c Config) {
				if c.LogLevel != "warn" || len(c.ELs) != 2 || c.MaxBodyBytes != 64<<20 || c.SilenceTimeout != (Span{D: 30 * time.Second}) {
					t.Fatalf("%+v", c)
				}
				want := []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("fd00::/8")}
				if len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] {
					t.Fatalf("trusted %v", c.TrustedProxies)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseErrors(t *testing.T) {
	_, err := Parse([]string{"--el", "name=a,colour=red", "--bn", "lh", "--trusted-proxies", "nope"},
		env(map[string]string{"SYNC_PROXY_SLOT_DURATION": "12"}), io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`unknown key "colour"`, `"lh" has no key`, `"nope" is not an address`, "SYNC_PROXY_SLOT_DURATION"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestCountFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--queue-size", "256"}, nil, "--backlog-bytes"},
		{nil, map[string]string{"SYNC_PROXY_QUEUE_SIZE": "256"}, "--backlog-bytes"},
		{[]string{"--replay-blocks", "64"}, nil, "--replay-bytes"},
		{nil, map[string]string{"SYNC_PROXY_REPLAY_BLOCKS": "64"}, "--replay-bytes"},
	} {
		_, err := Parse(c.args, env(c.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: error %v, want one naming %s", c.args, c.env, err, c.want)
		}
	}
	if Default().ReplayBytes != 256<<20 {
		t.Fatalf("default recent blocks %d, want 256 MiB", Default().ReplayBytes)
	}
	cfg, err := Parse([]string{"--backlog-bytes", "64MiB"}, env(nil), io.Discard)
	if err != nil || cfg.BacklogBytes != 64<<20 {
		t.Fatalf("--backlog-bytes 64MiB: %d, %v", cfg.BacklogBytes, err)
	}
	if Default().BacklogBytes != 512<<20 {
		t.Fatalf("default backlog %d, want 512 MiB", Default().BacklogBytes)
	}
	cfg.MaxBodyBytes = 128 << 20
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--backlog-bytes") {
		t.Errorf("a budget below --max-body: %v", err)
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := Default()
	c.Listen = "0.0.0.0:25590"
	c.ELs = []EL{
		{Name: "a", URL: "http://127.0.0.1:1", Role: "primary"},
		{Name: "a", URL: "ftp://x", Role: "boss"},
		{Name: "c", URL: "http://127.0.0.1:3", Role: "primary", JWTSecret: "/s"},
	}
	c.BNs = []BN{{Name: "lh"}, {Name: "lh", BeaconAPI: "localhost"}}
	c.SlotDuration = 0
	c.LogLevel = "loud"
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`the name "a" is also used`, `not an http(s) URL`, `role "boss"`, `no jwt secret`, `have role=primary`,
		`--bn lh: configured twice`, `--bn lh: give jwt-secret`, `beacon-api "localhost"`, `--slot-duration 0s`, `--log-level "loud"`,
		`is not a loopback address and no beacon node secret is configured`, `--allow-unauthenticated`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidateListenSafety(t *testing.T) {
	base := Default()
	base.ELs = []EL{{Name: "a", URL: "http://127.0.0.1:1", Role: "follower", JWTSecret: "/s"}}
	for _, tc := range []struct {
		listen string
		allow  bool
		secret string
		ok     bool
	}{
		{"127.0.0.1:25590", false, "", true},
		{"[::1]:25590", false, "", true},
		{"localhost:25590", false, "", true},
		{"0.0.0.0:25590", false, "", false},
		{":25590", false, "", false},
		{"0.0.0.0:25590", true, "", true},
		{"0.0.0.0:25590", false, "/s/bn", true},
	} {
		c := base
		c.Listen, c.AllowUnauthenticated, c.JWTSecret = tc.listen, tc.allow, tc.secret
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("listen %s allow=%v secret=%q: err %v, want ok=%v", tc.listen, tc.allow, tc.secret, err, tc.ok)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"33554432": 32 << 20, "32MiB": 32 << 20, "1GiB": 1 << 30, "512 KiB": 512 << 10, "2MB": 2e6} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "99999999999GiB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func FuzzParseEL(f *testing.F) {
	for _, s := range []string{"name=a,url=http://x:1,jwt-secret=/s,role=primary", "127.0.0.1:8551", "a=b=c", ",,", "url=1,url=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEL(s, "d")
		if err == nil && (e.Name == "" || e.Role == "") {
			t.Fatalf("ParseEL(%q) = %+v without name or role", s, e)
		}
		_, _ = ParseBN(s)
		_, _ = ParseSize(s)
	})
}

// TestCommandLineReplacesEnvironmentLists: a repeatable flag given on the command line replaces
// what its environment variable holds; it does not add to it. --el and its alias --builders are
// one list: either on the command line replaces both variables.
func TestCommandLineReplacesEnvironmentLists(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		check func(c Config) bool
	}{
		{"el", []string{"--el", "name=b,url=http://127.0.0.1:2"},
			map[string]string{"SYNC_PROXY_EL": "name=a,url=http://127.0.0.1:1"},
			func(c Config) bool { return len(c.ELs) == 1 && c.ELs[0].Name == "b" }},
		{"el, twice on the command line", []string{"--el", "name=b,url=http://127.0.0.1:2", "--el", "name=c,url=http://127.0.0.1:3"},
			map[string]string{"SYNC_PROXY_EL": "name=a,url=http://127.0.0.1:1;name=d,url=http://127.0.0.1:4"},
			func(c Config) bool { return len(c.ELs) == 2 && c.ELs[0].Name == "b" && c.ELs[1].Name == "c" }},
		{"builders replaces the el variable", []string{"-builders", "127.0.0.1:2"},
			map[string]string{"SYNC_PROXY_EL": "name=a,url=http://127.0.0.1:1"},
			func(c Config) bool {
				return len(c.ELs) == 1 && c.ELs[0].URL == "http://127.0.0.1:2" && c.ELs[0].Role == "primary"
			}},
		{"el replaces the builders variable", []string{"--el", "name=b,url=http://127.0.0.1:2"},
			map[string]string{"SYNC_PROXY_BUILDERS": "127.0.0.1:1"},
			func(c Config) bool { return len(c.ELs) == 1 && c.ELs[0].Name == "b" }},
		{"el from the environment alone", nil,
			map[string]string{"SYNC_PROXY_EL": "name=a,url=http://127.0.0.1:1;name=b,url=http://127.0.0.1:2"},
			func(c Config) bool { return len(c.ELs) == 2 }},
		{"bn", []string{"--bn", "name=y,jwt-secret=/s/y"},
			map[string]string{"SYNC_PROXY_BN": "name=x,jwt-secret=/s/x"},
			func(c Config) bool { return len(c.BNs) == 1 && c.BNs[0].Name == "y" }},
		{"proxies", []string{"--proxies", "http://127.0.0.1:2"},
			map[string]string{"SYNC_PROXY_PROXIES": "http://127.0.0.1:1"},
			func(c Config) bool { return len(c.Proxies) == 1 && c.Proxies[0].URL == "http://127.0.0.1:2" }},
		{"trusted proxies", []string{"--trusted-proxies", "10.0.0.2"},
			map[string]string{"SYNC_PROXY_TRUSTED_PROXIES": "10.0.0.1"},
			func(c Config) bool {
				return len(c.TrustedProxies) == 1 && c.TrustedProxies[0] == netip.MustParsePrefix("10.0.0.2/32")
			}},
		{"read timeouts", []string{"--read-timeout", "eth_call=10s,eth_getLogs=1m", "--read-timeout", "engine_getBlobsV2=2s"},
			map[string]string{"SYNC_PROXY_READ_TIMEOUT": "eth_chainId=3s"},
			func(c Config) bool {
				b := c.Budgets
				return b.For("eth_call") == 10*time.Second && b.For("eth_getLogs") == time.Minute &&
					b.For("engine_getBlobsV2") == 2*time.Second && b.For("eth_chainId") == time.Second // the variable's, replaced
			}},
		{"read timeouts from the environment alone", nil,
			map[string]string{"SYNC_PROXY_READ_TIMEOUT": "eth_chainId=3s;eth_call=7s"},
			func(c Config) bool {
				return c.Budgets.For("eth_chainId") == 3*time.Second && c.Budgets.For("eth_call") == 7*time.Second
			}},
		{"a list given only in the environment stays", []string{"--bn", "name=y,jwt-secret=/s/y"},
			map[string]string{"SYNC_PROXY_EL": "name=a,url=http://127.0.0.1:1", "SYNC_PROXY_BN": "name=x,jwt-secret=/s/x"},
			func(c Config) bool {
				return len(c.ELs) == 1 && c.ELs[0].Name == "a" && len(c.BNs) == 1 && c.BNs[0].Name == "y"
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.args, env(tc.env), io.Discard)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tc.check(c) {
				t.Fatalf("args %q env %v: ELs %+v BNs %+v proxies %+v trusted %v read timeouts %v", tc.args, tc.env, c.ELs, c.BNs, c.Proxies, c.TrustedProxies, c.Budgets)
			}
		})
	}
}

// TestReadTimeoutRefused: a read timeout for a method that is not a read, unknown, or out of
// range is refused at start-up with the method named.
func TestReadTimeoutRefused(t *testing.T) {
	for _, tc := range []struct{ arg, want string }{
		{"engine_newPayloadV4=20s", "engine_newPayloadV4: not a read"},
		{"engine_forkchoiceUpdatedV3=20s", "engine_forkchoiceUpdatedV3: not a read"},
		{"eth_getBalance=2s", "eth_getBalance: not a method sync-proxy forwards"},
		{"eth_call=0s", "eth_call=0s: want more than 0"},
		{"eth_getLogs=1h", "at most 2m0s"},
		{"eth_call", "want method=duration"},
		{"eth_call=10", "missing unit"},
	} {
		_, err := Parse([]string{"--read-timeout", tc.arg}, env(nil), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--read-timeout") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--read-timeout %s: error %v, want one containing %q", tc.arg, err, tc.want)
		}
	}
}
