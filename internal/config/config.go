// Package config turns flags and environment variables into one validated Config.
//
// Every flag has an environment variable: SYNC_PROXY_ followed by the flag name in upper case
// with '-' as '_' (--ops-listen → SYNC_PROXY_OPS_LISTEN). A flag given on the command line
// wins over its variable. Repeatable flags (--el, --bn, --proxies) take several values from
// the variable separated by ';' or newlines. Flashbots sync-proxy's flags (-addr, -builders,
// -proxies, -request-timeout, -proxy-request-timeout, -loglevel, -json) are accepted as aliases,
// so an existing deployment switches by replacing the binary.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/backlog"
	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// Config is everything sync-proxy is told at start-up.
type Config struct {
	Listen    string // Engine API listener for beacon nodes
	OpsListen string // metrics, status, health; "" disables it

	ELs     []EL // execution clients, in order
	Proxies []EL // chained sync-proxies (role relay)
	BNs     []BN // known beacon nodes

	ELJWTSecret          string // secret file for ELs that name none
	JWTSecret            string // shared inbound secret file: any holder may send
	JWTMaxDrift          time.Duration
	AllowUnauthenticated bool // listen on a non-loopback address without inbound verification
	TrustedProxies       []netip.Prefix

	Mode          string // auto, direct or mirror
	DialTimeout   time.Duration
	FailoverAfter time.Duration
	BacklogBytes  int64 // what the lanes hold together; a shared body counts once
	MaxBodyBytes  int64
	HeadAllowance time.Duration
	ReplayBytes   int64 // recent newPayloads kept to catch up and heal ELs; 0 disables both

	SlotDuration   time.Duration
	SilenceTimeout Span   // default 1.5 slots
	MaxWallLag     Span   // default 3 slots; 0 disables
	WriterMargin   Span   // default 1 slot
	Network        string // mainnet, sepolia, hoodi or "" (see network.go)
	GenesisTime    uint64 // Unix seconds; 0: from Network, or unknown

	CapabilitiesRefresh time.Duration // max age of an EL's cached exchangeCapabilities list
	// Budgets is how long an EL may take to answer each method: the defaults with
	// --read-timeout's overrides (built and checked by Parse).
	Budgets engine.Budgets

	InstanceID  string
	LogLevel    string
	LogFormat   string
	ShutdownMax time.Duration
	Version     bool // print the version and exit
	PProf       bool // serve Go profiles at /debug/pprof/ on the operations listener
}

// EL is one execution client (or chained proxy) as configured.
type EL struct {
	Name      string
	URL       string
	JWTSecret string // file; "" means ELJWTSecret
	Role      string // primary, follower, sync-only (relay for Proxies)
}

// BN is one beacon node as configured.
type BN struct {
	Name      string
	JWTSecret string // file; its tokens identify this BN
	ID        string // the JWT id claim that selects this BN's secret; "" = Name
	BeaconAPI string // optional beacon REST API base URL
}

// Default returns the defaults. Durations are in the units the flags document; the election
// thresholds are in slots.
func Default() Config {
	return Config{
		Listen:         "127.0.0.1:25590",
		OpsListen:      "127.0.0.1:9551",
		JWTMaxDrift:    60 * time.Second,
		Mode:           "auto",
		DialTimeout:    2 * time.Second,
		FailoverAfter:  time.Second,
		BacklogBytes:   backlog.DefaultBytes,
		MaxBodyBytes:   32 << 20,
		ReplayBytes:    backlog.DefaultRecentBytes,
		SlotDuration:   12 * time.Second,
		SilenceTimeout: InSlots(beacon.DefaultSilenceSlots),
		MaxWallLag:     InSlots(beacon.DefaultMaxWallLagSlots),
		WriterMargin:   InSlots(beacon.DefaultPeerMarginSlots),
		LogLevel:       "info",
		LogFormat:      "text",
		ShutdownMax:    10 * time.Second,

		CapabilitiesRefresh: 5 * time.Minute,
	}
}

// Direct reports whether beacon nodes get the primary EL's answers.
func (c Config) Direct() bool {
	switch c.Mode {
	case "direct":
		return true
	case "mirror":
		return false
	}
	for _, e := range c.ELs {
		if e.Role == "primary" {
			return true
		}
	}
	return false
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("--listen %q: want host:port", c.Listen)
	}
	if c.OpsListen != "" {
		if _, _, err := net.SplitHostPort(c.OpsListen); err != nil {
			add("--ops-listen %q: want host:port", c.OpsListen)
		}
	}
	if len(c.ELs) == 0 {
		add("no execution client: give at least one --el (or -builders)")
	}
	names := map[string]string{}
	primaries := 0
	for i, e := range append(append([]EL(nil), c.ELs...), c.Proxies...) {
		flag := "--el"
		if i >= len(c.ELs) {
			flag = "--proxies"
		}
		if e.Name == "" {
			add("%s %q: name is empty", flag, e.URL)
		} else if prev, dup := names[e.Name]; dup {
			add("%s %q: the name %q is also used by %s", flag, e.URL, e.Name, prev)
		} else {
			names[e.Name] = e.URL
		}
		if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("%s %s: url %q is not an http(s) URL", flag, e.Name, e.URL)
		}
		switch e.Role {
		case "primary":
			primaries++
		case "follower", "sync-only", "relay":
		default:
			add("%s %s: role %q is not primary, follower or sync-only", flag, e.Name, e.Role)
		}
		if e.JWTSecret == "" && c.ELJWTSecret == "" && e.Role != "relay" {
			add("%s %s: no jwt secret: give jwt-secret=FILE or --el-jwt-secret", flag, e.Name)
		}
	}
	if primaries > 1 {
		add("%d execution clients have role=primary: at most one may", primaries)
	}
	switch c.Mode {
	case "auto", "mirror":
	case "direct":
		if primaries == 0 {
			add("--mode direct needs one --el with role=primary")
		}
	default:
		add("--mode %q: want auto, direct or mirror", c.Mode)
	}
	bnNames, ids := map[string]bool{}, map[string]bool{}
	for _, b := range c.BNs {
		if b.Name == "" {
			add("--bn: name is empty")
		} else if bnNames[b.Name] {
			add("--bn %s: configured twice", b.Name)
		}
		bnNames[b.Name] = true
		id := b.ID
		if id == "" {
			id = b.Name
		}
		if ids[id] {
			add("--bn %s: jwt id %q is used by another beacon node", b.Name, id)
		}
		ids[id] = true
		if b.JWTSecret == "" && b.BeaconAPI == "" {
			add("--bn %s: give jwt-secret=FILE (and/or beacon-api=URL)", b.Name)
		}
		if b.BeaconAPI != "" {
			if u, err := url.Parse(b.BeaconAPI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add("--bn %s: beacon-api %q is not an http(s) URL", b.Name, b.BeaconAPI)
			}
		}
	}
	if !c.authenticates() && !c.AllowUnauthenticated && !loopbackListen(c.Listen) {
		add("--listen %s is not a loopback address and no beacon node secret is configured: give --jwt-secret or --bn jwt-secret=FILE, or accept unauthenticated requests with --allow-unauthenticated", c.Listen)
	}
	positive := []struct {
		name string
		d    time.Duration
	}{
		{"--jwt-max-drift", c.JWTMaxDrift}, {"--dial-timeout", c.DialTimeout}, {"--failover-after", c.FailoverAfter},
		{"--slot-duration", c.SlotDuration}, {"--silence-timeout", c.SilenceTimeout.Of(c.SlotDuration)}, {"--shutdown-timeout", c.ShutdownMax},
		{"--capabilities-refresh", c.CapabilitiesRefresh},
	}
	for _, p := range positive {
		if p.d <= 0 {
			add("%s %v: must be positive", p.name, p.d)
		}
	}
	if c.MaxWallLag.Of(c.SlotDuration) < 0 || c.WriterMargin.Of(c.SlotDuration) < 0 || c.HeadAllowance < 0 {
		add("--max-wall-lag, --writer-margin and --head-allowance must not be negative")
	}
	if c.ReplayBytes < 0 {
		add("--replay-bytes must not be negative")
	}
	errs = append(errs, c.validateNetwork()...)
	if c.BacklogBytes < c.MaxBodyBytes {
		add("--backlog-bytes %d: must be at least --max-body (%d): one block must fit", c.BacklogBytes, c.MaxBodyBytes)
	}
	if c.MaxBodyBytes < 1<<20 {
		add("--max-body %d: must be at least 1 MiB (a newPayload runs to 16 MB)", c.MaxBodyBytes)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		add("--log-format %q: want text or json", c.LogFormat)
	}
	return errors.Join(errs...)
}

// authenticates reports whether inbound tokens are verified.
func (c Config) authenticates() bool {
	if c.JWTSecret != "" {
		return true
	}
	for _, b := range c.BNs {
		if b.JWTSecret != "" {
			return true
		}
	}
	return false
}

// Authenticates reports whether inbound tokens are verified.
func (c Config) Authenticates() bool { return c.authenticates() }

func loopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// parseKV parses "k=v,k=v" into a map; a value without '=' is returned as bare.
func parseKV(s string) (map[string]string, string, error) {
	kv := map[string]string{}
	bare := ""
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			if bare != "" {
				return nil, "", fmt.Errorf("%q: more than one value without a key", s)
			}
			bare = part
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := kv[k]; dup {
			return nil, "", fmt.Errorf("%q: key %q given twice", s, k)
		}
		kv[k] = strings.TrimSpace(v)
	}
	return kv, bare, nil
}

// ParseEL parses an --el value: "name=N,url=U,jwt-secret=F,role=R", or a bare URL.
func ParseEL(s string, defaultName string) (EL, error) {
	kv, bare, err := parseKV(s)
	if err != nil {
		return EL{}, err
	}
	e := EL{Name: kv["name"], URL: kv["url"], JWTSecret: kv["jwt-secret"], Role: kv["role"]}
	if bare != "" {
		if e.URL != "" {
			return EL{}, fmt.Errorf("%q: url given twice", s)
		}
		e.URL = bare
	}
	if e.URL != "" && !strings.Contains(e.URL, "://") {
		e.URL = "http://" + e.URL // as Flashbots' -builders: scheme optional
	}
	for k := range kv {
		switch k {
		case "name", "url", "jwt-secret", "role":
		default:
			return EL{}, fmt.Errorf("%q: unknown key %q (want name, url, jwt-secret, role)", s, k)
		}
	}
	if e.Name == "" {
		e.Name = defaultName
	}
	if e.Role == "" {
		e.Role = "follower"
	}
	return e, nil
}

// ParseBN parses a --bn value: "name=N,jwt-secret=F,id=I,beacon-api=U".
func ParseBN(s string) (BN, error) {
	kv, bare, err := parseKV(s)
	if err != nil {
		return BN{}, err
	}
	if bare != "" {
		return BN{}, fmt.Errorf("%q: %q has no key (want name=, jwt-secret=, id=, beacon-api=)", s, bare)
	}
	for k := range kv {
		switch k {
		case "name", "jwt-secret", "id", "beacon-api":
		default:
			return BN{}, fmt.Errorf("%q: unknown key %q (want name, jwt-secret, id, beacon-api)", s, k)
		}
	}
	return BN{Name: kv["name"], JWTSecret: kv["jwt-secret"], ID: kv["id"], BeaconAPI: kv["beacon-api"]}, nil
}

// ParseSize parses a byte count: "33554432", "32MiB", "32MB", "512KiB".
func ParseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a byte count (e.g. 32MiB)", s)
	}
	return n * mult, nil
}
