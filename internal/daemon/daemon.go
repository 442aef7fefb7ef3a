// Package daemon builds sync-proxy's components from a validated Config and runs them: the
// Engine API listener, the operations listener and the EL lanes, with a graceful shutdown
// that stops accepting, delivers what is queued for a bounded time, then stops.
package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/beaconapi"
	"github.com/sync-proxy/sync-proxy/internal/clock"
	"github.com/sync-proxy/sync-proxy/internal/config"
	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
	"github.com/sync-proxy/sync-proxy/internal/metrics"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// sharedKey names the --jwt-secret key in the verifier: it authorises but identifies no one.
const sharedKey = "*shared"

// Daemon is a configured sync-proxy, ready to Run.
type Daemon struct {
	cfg     config.Config
	log     *slog.Logger
	version string
	proxy   *proxy.Proxy
	poller  *beaconapi.Poller // beacon nodes' REST APIs
	ops     http.Handler

	mu      sync.Mutex
	engineL net.Listener
	opsL    net.Listener
	ready   chan struct{}
}

// Build identifies the binary: its version and the commit it was built from.
type Build struct {
	Version string
	Commit  string
}

// New loads every secret, builds every component and reports every problem at once.
func New(cfg config.Config, build Build, log *slog.Logger) (*Daemon, error) {
	version := build.Version
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clk := clock.Real{}
	var errs []error
	if cfg.InstanceID == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.InstanceID = "sp-" + hex.EncodeToString(b[:])
	}

	secrets := map[string]jwtauth.Secret{}
	load := func(path string) (jwtauth.Secret, bool) {
		if s, ok := secrets[path]; ok {
			return s, true
		}
		s, err := jwtauth.LoadSecret(path)
		if err != nil {
			errs = append(errs, err)
			return s, false
		}
		secrets[path] = s
		return s, true
	}

	var keys []jwtauth.Key
	if cfg.JWTSecret != "" {
		if s, ok := load(cfg.JWTSecret); ok {
			keys = append(keys, jwtauth.Key{Name: sharedKey, ID: sharedKey, Secret: s})
		}
	}
	for _, b := range cfg.BNs {
		if b.JWTSecret == "" {
			continue
		}
		if s, ok := load(b.JWTSecret); ok {
			keys = append(keys, jwtauth.Key{Name: b.Name, ID: b.ID, Secret: s})
		}
	}
	var verifier *jwtauth.Verifier
	if len(keys) > 0 {
		v, err := jwtauth.NewVerifier(keys, cfg.JWTMaxDrift, clk)
		if err != nil {
			errs = append(errs, fmt.Errorf("inbound jwt: %w", err))
		}
		verifier = v
	}

	ua := "sync-proxy/" + version
	var els []upstream.Config
	for _, e := range append(append([]config.EL(nil), cfg.ELs...), cfg.Proxies...) {
		role, err := upstream.ParseRole(e.Role)
		if err != nil {
			errs = append(errs, fmt.Errorf("el %s: %w", e.Name, err))
			continue
		}
		if cfg.Mode == "mirror" && role == upstream.RolePrimary {
			role = upstream.RoleFollower
		}
		uc := upstream.Config{
			Name: e.Name, URL: e.URL, Role: role,
			DialTimeout: cfg.DialTimeout, HeadAllowance: cfg.HeadAllowance, UserAgent: ua,
		}
		path := e.JWTSecret
		if path == "" && role != upstream.RoleRelay {
			path = cfg.ELJWTSecret
		}
		if path != "" {
			if s, ok := load(path); ok {
				uc.Signer = jwtauth.NewSigner(s, clk, jwtauth.SignerOptions{ID: cfg.InstanceID, CLV: ua})
			}
		}
		els = append(els, uc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	d := &Daemon{cfg: cfg, log: log, version: version, ready: make(chan struct{})}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: version, Commit: build.Commit, SlotDuration: cfg.SlotDuration, Runtime: true})
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(proxy.Config{
		ELs: els,
		Election: beacon.Config{
			SlotDuration: cfg.SlotDuration, SilenceTimeout: cfg.SilenceTimeout.Of(cfg.SlotDuration),
			MaxWallLag: cfg.MaxWallLag.Of(cfg.SlotDuration), PeerMargin: cfg.WriterMargin.Of(cfg.SlotDuration), Genesis: cfg.Genesis(),
			Configured: bnNames(cfg.BNs),
		},
		Verifier:       verifier,
		SharedKeyName:  sharedKey,
		TrustedProxies: cfg.TrustedProxies,
		MaxBodyBytes:   cfg.MaxBodyBytes,
		FailoverAfter:  cfg.FailoverAfter,
		Instance:       cfg.InstanceID,
		BacklogBytes:   cfg.BacklogBytes,
		ReplayBytes:    replayBytes(cfg.ReplayBytes),
		Hooks:          m.ProxyHooks(),

		CapabilitiesRefresh: cfg.CapabilitiesRefresh,
		Budgets:             cfg.Budgets,
	}, clk, log)
	if err != nil {
		return nil, err
	}
	d.proxy = p
	if d.poller, err = newPoller(cfg, p.Tracker(), clk, ua, log); err != nil {
		return nil, err
	}
	so := status.Options{Version: version, Commit: build.Commit, SlotDuration: cfg.SlotDuration, Clock: clk}
	if err := m.Watch(p, so); err != nil {
		return nil, err
	}
	st, err := status.NewServer(p, so)
	if err != nil {
		return nil, err
	}
	d.ops = d.opsHandler(reg, st)
	return d, nil
}

// Proxy returns the Engine API handler.
func (d *Daemon) Proxy() *proxy.Proxy { return d.proxy }

// Ready is closed once both listeners are bound.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// EngineAddr returns the bound Engine API address (after Ready).
func (d *Daemon) EngineAddr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.engineL == nil {
		return nil
	}
	return d.engineL.Addr()
}

// OpsAddr returns the bound operations address (after Ready), or nil when disabled.
func (d *Daemon) OpsAddr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.opsL == nil {
		return nil
	}
	return d.opsL.Addr()
}

// Run serves until ctx is done, then shuts down gracefully. It returns nil after a clean
// shutdown.
func (d *Daemon) Run(ctx context.Context) error {
	engineL, err := net.Listen("tcp", d.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", d.cfg.Listen, err)
	}
	var opsL net.Listener
	if d.cfg.OpsListen != "" {
		opsL, err = net.Listen("tcp", d.cfg.OpsListen)
		if err != nil {
			engineL.Close()
			return fmt.Errorf("listen %s: %w", d.cfg.OpsListen, err)
		}
	}
	d.mu.Lock()
	d.engineL, d.opsL = engineL, opsL
	d.mu.Unlock()
	close(d.ready)

	engineSrv := &http.Server{
		Handler:           d.proxy,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second, // a 32 MiB body at ~1 MB/s still fits
		// The longest answer to a beacon node: a read's two ELs' budgets, and a margin.
		WriteTimeout:   max(30*time.Second, 2*d.cfg.Budgets.Longest()+5*time.Second),
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
	}
	var opsSrv *http.Server
	if opsL != nil {
		opsSrv = &http.Server{
			Handler: d.ops, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
			ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelDebug),
		}
	}

	laneCtx, stopLanes := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLanes()
	var wg sync.WaitGroup
	wg.Go(func() { d.proxy.Run(laneCtx) })
	wg.Go(func() { d.poller.Run(laneCtx) })

	serveErr := make(chan error, 2)
	go func() { serveErr <- serve(engineSrv, engineL) }()
	if opsSrv != nil {
		go func() { serveErr <- serve(opsSrv, opsL) }()
	}
	mode := "mirror"
	if d.proxy.Direct() {
		mode = "direct"
	}
	d.log.Info("sync-proxy started", "version", d.version, "listen", engineL.Addr().String(),
		"ops", addrString(opsL), "mode", mode, "els", len(d.proxy.Lanes()), "instance", d.cfg.InstanceID,
		"inbound_auth", d.cfg.Authenticates(), "slot", d.cfg.SlotDuration,
		"silence_timeout", d.cfg.SilenceTimeout.Of(d.cfg.SlotDuration),
		"max_wall_lag", d.cfg.MaxWallLag.Of(d.cfg.SlotDuration),
		"writer_margin", d.cfg.WriterMargin.Of(d.cfg.SlotDuration))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-serveErr:
	}
	d.log.Info("shutting down", "max", d.cfg.ShutdownMax)
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.cfg.ShutdownMax)
	defer cancel()
	if err := engineSrv.Shutdown(shutCtx); err != nil {
		engineSrv.Close()
	}
	if err := d.proxy.Drain(shutCtx); err != nil {
		d.log.Warn("shutdown left requests undelivered", "error", err)
	}
	stopLanes()
	wg.Wait()
	d.proxy.Close() // every pooled body back: nothing is served or delivered any more
	if opsSrv != nil {
		if err := opsSrv.Shutdown(shutCtx); err != nil {
			opsSrv.Close()
		}
	}
	d.log.Info("stopped")
	return runErr
}

func serve(s *http.Server, l net.Listener) error {
	if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
}

func addrString(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}

// replayBytes maps the flag (0 disables catch-up) to proxy.Config (0 means the default,
// negative disables).
func replayBytes(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// bnNames are the names of the configured beacon nodes: they keep their place in the
// tracker's table.
func bnNames(bns []config.BN) []string {
	names := make([]string, 0, len(bns))
	for _, b := range bns {
		names = append(names, b.Name)
	}
	return names
}
