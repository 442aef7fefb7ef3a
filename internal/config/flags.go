package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// EnvPrefix starts every environment variable sync-proxy reads.
const EnvPrefix = "SYNC_PROXY_"

// Parse reads args (without the program name) and the environment (lookup is os.LookupEnv
// in production) over the defaults. It returns every problem it found, joined; it does not
// call Validate. usage receives the help text for -h.
func Parse(args []string, lookup func(string) (string, bool), usage io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("sync-proxy", flag.ContinueOnError)
	fs.SetOutput(usage)
	var errs []error

	var els, proxies, bns, builders listValue
	var trusted, readTimeouts listValue
	maxBody := sizeValue{&c.MaxBodyBytes}
	replayBytes := sizeValue{&c.ReplayBytes}
	backlogBytes := sizeValue{&c.BacklogBytes}

	str := func(p *string, name, help string) { fs.StringVar(p, name, *p, help+envHelp(name)) }
	dur := func(p *time.Duration, name, help string) { fs.Var(durValue{p}, name, help+envHelp(name)) }

	// Listeners.
	str(&c.Listen, "listen", "Engine API listener for beacon nodes, host:port")
	str(&c.OpsListen, "ops-listen", "operations listener (/metrics, /status, /, /healthz, /readyz), host:port; empty disables")
	// Execution clients.
	fs.Var(&els, "el", "execution client, repeatable: name=N,url=URL,jwt-secret=FILE,role=primary|follower|sync-only"+envHelp("el"))
	str(&c.ELJWTSecret, "el-jwt-secret", "secret file for execution clients that name none")
	str(&c.Mode, "mode", "auto (direct when an EL is primary, else mirror), direct or mirror")
	dur(&c.DialTimeout, "dial-timeout", "time to connect to an EL")
	dur(&c.FailoverAfter, "failover-after", "direct mode: wait this long for the primary before a follower's answer is used")
	fs.Var(backlogBytes, "backlog-bytes", "what the ELs' queues may hold together, a body counted once however many ELs wait for it (e.g. 512MiB); past it an EL already behind, else the one with the most queued, sheds its newest blocks and heals from the recent blocks once drained"+envHelp("backlog-bytes"))
	fs.Func("queue-size", "removed: the backlog is bounded in bytes by --backlog-bytes", func(string) error {
		return errors.New("--queue-size was replaced by --backlog-bytes: one budget in bytes that all ELs share (default 512MiB); remove --queue-size (or SYNC_PROXY_QUEUE_SIZE)")
	})
	fs.Var(maxBody, "max-body", "largest request body accepted (e.g. 32MiB)"+envHelp("max-body"))
	dur(&c.HeadAllowance, "head-allowance", "how much older than an EL's head a new writer's first heads may be after a failover (0: none; the writer the ELs follow is never refused)")
	fs.Var(replayBytes, "replay-bytes", "the recent newPayloads kept to catch up an EL that comes back or lacks a parent and to heal one that fell behind (e.g. 256MiB); 0 disables both"+envHelp("replay-bytes"))
	fs.Func("replay-blocks", "removed: the recent blocks are bounded in bytes by --replay-bytes", func(string) error {
		return errors.New("--replay-blocks was replaced by --replay-bytes: the recent blocks are bounded in bytes (default 256MiB, several hundred blocks; 0 disables catch-up); remove --replay-blocks (or SYNC_PROXY_REPLAY_BLOCKS)")
	})
	fs.Var(&readTimeouts, "read-timeout", "how long an EL may take to answer a read, repeatable or comma-separated: method=duration (eth_getLogs=60s); only reads (engine_getBlobs*, engine_getPayloadBodies*, the engine port's eth_*), at most "+engine.MaxReadBudget.String()+"; the defaults are in the README"+envHelp("read-timeout"))
	fs.Var(&proxies, "proxies", "other sync-proxies to relay to, repeatable or comma-separated URLs (each may be url=URL,jwt-secret=FILE)"+envHelp("proxies"))
	// Beacon nodes.
	fs.Var(&bns, "bn", "beacon node, repeatable: name=N,jwt-secret=FILE[,id=JWT_ID][,beacon-api=URL]"+envHelp("bn"))
	str(&c.JWTSecret, "jwt-secret", "shared secret file any beacon node may sign with (identity then comes from the path, address or id claim)")
	dur(&c.JWTMaxDrift, "jwt-max-drift", "largest accepted difference between a token's iat and the clock")
	fs.BoolVar(&c.AllowUnauthenticated, "allow-unauthenticated", false, "allow a non-loopback --listen without inbound jwt verification"+envHelp("allow-unauthenticated"))
	fs.Var(&trusted, "trusted-proxies", "addresses or CIDRs (e.g. nginx) whose X-Forwarded-For and relay headers are believed, comma-separated"+envHelp("trusted-proxies"))
	// Election.
	dur(&c.SlotDuration, "slot-duration", "slot length of the network")
	span := func(p *Span, name, help string) {
		fs.Var(spanValue{p}, name, help+"; a duration (18s) or slots of --slot-duration (1.5slots)"+envHelp(name))
	}
	span(&c.SilenceTimeout, "silence-timeout", "the writer beacon node loses the role after this long without a request, or without a forkchoiceUpdated while another beacon node sends them")
	span(&c.MaxWallLag, "max-wall-lag", "a beacon node whose head is older than this behind the wall clock is unhealthy (0 disables)")
	span(&c.WriterMargin, "writer-margin", "a healthy beacon node ahead of the writer by more than this, for more than half a slot, takes over")
	str(&c.Network, "network", "named network ("+networkNames+"): sets the genesis time; lag is reported in slots and beacon API head slots count in the election")
	fs.Uint64Var(&c.GenesisTime, "genesis-time", c.GenesisTime, "genesis time in Unix seconds, for a network --network does not name (default: from --network)"+envHelp("genesis-time"))
	dur(&c.CapabilitiesRefresh, "capabilities-refresh", "direct mode: how old an EL's cached engine_exchangeCapabilities list may be before a beacon node's call fetches it again")
	// Process.
	str(&c.InstanceID, "instance-id", "this proxy's name in chained requests' Via header (default: random)")
	str(&c.LogLevel, "log-level", "debug, info, warn or error")
	str(&c.LogFormat, "log-format", "text or json")
	dur(&c.ShutdownMax, "shutdown-timeout", "how long shutdown may spend delivering what is queued")
	fs.BoolVar(&c.PProf, "pprof", false, "serve Go profiles at /debug/pprof/ on the operations listener (off by default)"+envHelp("pprof"))
	fs.BoolVar(&c.Version, "version", false, "print the version and exit")

	// Flashbots sync-proxy aliases.
	fs.StringVar(&c.Listen, "addr", c.Listen, "alias of --listen (Flashbots sync-proxy)")
	fs.Var(&builders, "builders", "alias: comma-separated EL URLs (Flashbots sync-proxy); the first is primary")
	fs.Var(msDurValue{&c.DialTimeout}, "request-timeout", "alias of --dial-timeout; a bare number is milliseconds (Flashbots sync-proxy)")
	fs.Var(msDurValue{&c.DialTimeout}, "proxy-request-timeout", "alias of --dial-timeout for relays (Flashbots sync-proxy)")
	fs.StringVar(&c.LogLevel, "loglevel", c.LogLevel, "alias of --log-level (Flashbots sync-proxy)")
	jsonLog := fs.Bool("json", false, "alias of --log-format json (Flashbots sync-proxy)")

	// Environment first, so the command line wins.
	fs.VisitAll(func(f *flag.Flag) {
		name := EnvPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		if lv, isList := f.Value.(*listValue); isList {
			lv.setEnv(strings.FieldsFunc(v, func(r rune) bool { return r == ';' || r == '\n' }))
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
		}
	})
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %q", fs.Args()))
	}
	if *jsonLog {
		c.LogFormat = "json"
	}
	// --el and --builders fill one list: either on the command line replaces both variables.
	if els.cli || builders.cli {
		els.dropEnv()
		builders.dropEnv()
	}
	for i, s := range els.items {
		e, err := ParseEL(s, "el"+strconv.Itoa(i+1))
		if err != nil {
			errs = append(errs, fmt.Errorf("--el %w", err))
			continue
		}
		c.ELs = append(c.ELs, e)
	}
	for _, list := range builders.items {
		for _, u := range strings.Split(list, ",") {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			e, err := ParseEL(u, "el"+strconv.Itoa(len(c.ELs)+1))
			if err != nil {
				errs = append(errs, fmt.Errorf("-builders %w", err))
				continue
			}
			if !hasPrimary(c.ELs) {
				e.Role = "primary" // Flashbots answers with the first builder's response
			}
			c.ELs = append(c.ELs, e)
		}
	}
	for _, list := range proxies.items {
		items := []string{list}
		if !strings.Contains(list, "=") {
			items = strings.Split(list, ",")
		}
		for _, u := range items {
			if u = strings.TrimSpace(u); u == "" {
				continue
			}
			e, err := ParseEL(u, "proxy"+strconv.Itoa(len(c.Proxies)+1))
			if err != nil {
				errs = append(errs, fmt.Errorf("--proxies %w", err))
				continue
			}
			e.Role = "relay"
			c.Proxies = append(c.Proxies, e)
		}
	}
	for _, s := range bns.items {
		b, err := ParseBN(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--bn %w", err))
			continue
		}
		c.BNs = append(c.BNs, b)
	}
	over := map[string]time.Duration{}
	for _, list := range readTimeouts.items {
		for _, item := range strings.Split(list, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			m, d, err := engine.ParseBudget(item)
			if err != nil {
				errs = append(errs, fmt.Errorf("--read-timeout %w", err))
				continue
			}
			over[m] = d
		}
	}
	if b, err := engine.NewBudgets(over); err != nil {
		errs = append(errs, fmt.Errorf("--read-timeout: %w", err))
	} else {
		c.Budgets = b
	}
	for _, list := range trusted.items {
		for _, t := range strings.Split(list, ",") {
			if t = strings.TrimSpace(t); t == "" {
				continue
			}
			p, err := parsePrefix(t)
			if err != nil {
				errs = append(errs, fmt.Errorf("--trusted-proxies: %w", err))
				continue
			}
			c.TrustedProxies = append(c.TrustedProxies, p)
		}
	}
	return c, errors.Join(errs...)
}

func hasPrimary(els []EL) bool {
	for _, e := range els {
		if e.Role == "primary" {
			return true
		}
	}
	return false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func envHelp(name string) string {
	return " (env " + EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + ")"
}

// listValue collects every use of a repeatable flag. Items from the environment come first;
// the flag's first use on the command line replaces them, so the command line wins for lists
// as it does for single values.
type listValue struct {
	items []string
	env   bool // items came from the environment
	cli   bool // the flag was used on the command line
}

func (l *listValue) String() string { return strings.Join(l.items, " ") }

// Set adds a command-line use.
func (l *listValue) Set(s string) error {
	l.dropEnv()
	l.cli = true
	l.items = append(l.items, s)
	return nil
}

func (l *listValue) setEnv(items []string) {
	l.items, l.env = items, true
}

func (l *listValue) dropEnv() {
	if l.env {
		l.items, l.env = nil, false
	}
}

// durValue is a time.Duration flag ("12s", "1m30s").
type durValue struct{ p *time.Duration }

func (d durValue) String() string {
	if d.p == nil {
		return ""
	}
	return d.p.String()
}
func (d durValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (e.g. 12s, 500ms)", s)
	}
	*d.p = v
	return nil
}

// msDurValue is a duration flag where a bare integer means milliseconds, as in Flashbots'
// sync-proxy.
type msDurValue struct{ p *time.Duration }

func (d msDurValue) String() string { return durValue(d).String() }
func (d msDurValue) Set(s string) error {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*d.p = time.Duration(n) * time.Millisecond
		return nil
	}
	return durValue(d).Set(s)
}

// sizeValue is a byte-count flag.
type sizeValue struct{ p *int64 }

func (s sizeValue) String() string {
	if s.p == nil {
		return ""
	}
	return strconv.FormatInt(*s.p, 10)
}
func (s sizeValue) Set(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s.p = n
	return nil
}
