// Package metrics exposes sync-proxy's Prometheus metrics.
//
// A [Metrics] is built on a prometheus.Registerer passed in by the caller (never the default
// registry), so each test gets a fresh one. It has two halves:
//
//   - event counters and histograms, fed by the proxy's and the lanes' hooks
//     ([Metrics.ProxyHooks]): requests by beacon node, class and outcome; writer changes;
//     EL latencies, errors, verdicts and state changes; divergences;
//   - gauges and lane counters read at scrape time from the same read-only snapshot the
//     status page shows (package status), registered by [Metrics.Watch] once the proxy exists.
//
// Every name starts with syncproxy_; durations end in _seconds and counters in _total. Label
// values are bounded: el by configuration, class, outcome, reason, kind and status by enums,
// and bn by the beacon nodes' identities, capped at [Options.MaxBNs] distinct values (later
// ones are counted as "other" and left out of the per-node gauges).
package metrics

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/divergence"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
	"github.com/sync-proxy/sync-proxy/internal/status"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// Namespace prefixes every metric name.
const Namespace = "syncproxy"

// Label values used when the real value would be unbounded or absent.
const (
	OtherBN   = "other"   // a beacon node past the MaxBNs cap
	UnknownBN = "unknown" // a request refused before its sender was identified
)

// KindJSONRPCError is the error kind of an EL answer that is a JSON-RPC error object. The
// other kinds are upstream.ErrorKind values.
const KindJSONRPCError = "jsonrpc_error"

// DefaultMaxBNs caps the distinct bn label values.
const DefaultMaxBNs = 64

// Options configures a Metrics. Zero fields take defaults.
type Options struct {
	// Version and Commit label syncproxy_build_info.
	Version string
	Commit  string
	// SlotDuration converts timestamps to slots for lag. Default 12s.
	SlotDuration time.Duration
	// MaxBNs caps the distinct bn label values. Default 64.
	MaxBNs int
	// Runtime also registers the Go runtime and process collectors (go_*, process_*).
	Runtime bool
}

// Metrics holds sync-proxy's collectors. Its hook methods are safe for concurrent use and
// never block.
type Metrics struct {
	reg  prometheus.Registerer
	opts Options

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	writerChanges   *prometheus.CounterVec
	elDuration      *prometheus.HistogramVec
	elErrors        *prometheus.CounterVec
	elVerdicts      *prometheus.CounterVec
	elStateChanges  *prometheus.CounterVec
	elDropped       *prometheus.CounterVec
	divergences     *prometheus.CounterVec
	payloadCopies   prometheus.Counter

	bnMu sync.Mutex
	bns  map[string]bool // admitted bn label values
}

// Classes and reasons that label series created up front, so they read 0 rather than being
// absent before the first event.
var (
	laneClasses   = []engine.Class{engine.ClassNewPayload, engine.ClassForkchoice}
	dropReasons   = []upstream.DropReason{upstream.DropSuperseded, upstream.DropExpired, upstream.DropShed, upstream.DropBehind, upstream.DropStaleHead, upstream.DropShutdown}
	errorKinds    = []string{string(upstream.KindConnect), string(upstream.KindTimeout), string(upstream.KindHTTPStatus), string(upstream.KindBadResponse), string(upstream.KindTransport), KindJSONRPCError}
	laneStates    = []upstream.State{upstream.StateUnknown, upstream.StateUp, upstream.StateDown, upstream.StateUnauthorized}
	verdicts      = []engine.Status{engine.StatusValid, engine.StatusInvalid, engine.StatusInvalidBlockHash, engine.StatusSyncing, engine.StatusAccepted}
	writerReasons = []beacon.Reason{beacon.ReasonFirst, beacon.ReasonSilent, beacon.ReasonExternal, beacon.ReasonNoForkchoice, beacon.ReasonNoHead, beacon.ReasonWallLag, beacon.ReasonPeerAhead, beacon.ReasonRemoved}
)

// New builds the collectors and registers them on reg.
func New(reg prometheus.Registerer, o Options) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: no registerer")
	}
	if o.SlotDuration <= 0 {
		o.SlotDuration = 12 * time.Second
	}
	if o.MaxBNs <= 0 {
		o.MaxBNs = DefaultMaxBNs
	}
	m := &Metrics{reg: reg, opts: o, bns: make(map[string]bool)}
	latency := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 4, 8}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "requests_total",
		Help: "Engine API requests from beacon nodes, by beacon node, method class and what the proxy did with them.",
	}, []string{"bn", "class", "outcome"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "request_duration_seconds", Buckets: latency,
		Help: "Time from a beacon node's request to the proxy's answer, by method class.",
	}, []string{"class"})
	m.writerChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "writer_changes_total",
		Help: "Changes of the writer beacon node, by the reason the previous writer lost the role.",
	}, []string{"reason"})
	m.elDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "el_request_duration_seconds", Buckets: latency,
		Help: "Time an execution client took to answer a queued newPayload or forkchoiceUpdated, by EL and method class.",
	}, []string{"el", "class"})
	m.elErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "el_errors_total",
		Help: "Queued requests an execution client failed, by EL and kind (connect, timeout, http_status, bad_response, transport, jsonrpc_error).",
	}, []string{"el", "kind"})
	m.elVerdicts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "el_payload_status_total",
		Help: "Payload statuses execution clients answered, by EL, method class and status.",
	}, []string{"el", "class", "status"})
	m.elStateChanges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "el_state_changes_total",
		Help: "Changes of an execution client's state, by EL and the state entered (up, down, unauthorized).",
	}, []string{"el", "state"})
	m.elDropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "el_dropped_total",
		Help: "Requests never sent to an execution client, by EL and reason; reason superseded counts coalesced forkchoiceUpdated.",
	}, []string{"el", "reason"})
	m.divergences = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "divergences_total",
		Help: "Blocks one execution client answered VALID and another INVALID, by the method class that revealed it.",
	}, []string{"class"})
	m.payloadCopies = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: Namespace, Name: "payload_copies_total",
		Help: "newPayloads whose bytes differ from an earlier copy of the same claimed block hash; each is sent to the execution clients in its own right.",
	})
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help: "Always 1; labels carry the build's version, commit and Go version.",
	}, []string{"version", "commit", "goversion"})
	commit := o.Commit
	if commit == "" {
		commit = "unknown"
	}
	build.WithLabelValues(o.Version, commit, runtime.Version()).Set(1)

	for _, r := range writerReasons {
		m.writerChanges.WithLabelValues(reasonLabel(r))
	}
	for _, c := range laneClasses {
		m.divergences.WithLabelValues(c.String())
	}
	cs := []prometheus.Collector{m.requests, m.requestDuration, m.writerChanges, m.elDuration, m.elErrors,
		m.elVerdicts, m.elStateChanges, m.elDropped, m.divergences, m.payloadCopies, build}
	if o.Runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// ProxyHooks returns hooks for proxy.Config.Hooks that feed m.
func (m *Metrics) ProxyHooks() proxy.Hooks {
	return proxy.Hooks{
		OnRequest:      m.OnRequest,
		OnWriterChange: m.OnWriterChange,
		OnDivergence:   m.OnDivergence,
		OnPayloadCopy:  func(string) { m.payloadCopies.Inc() },
		Lane:           upstream.Hooks{OnResult: m.OnResult, OnDrop: m.OnDrop, OnState: m.OnState},
	}
}

// Watch registers the scrape-time collector for p (gauges and lane counters) and creates
// p's lane series at zero. Call it once, after proxy.New.
func (m *Metrics) Watch(p *proxy.Proxy, so status.Options) error {
	if so.SlotDuration <= 0 {
		so.SlotDuration = m.opts.SlotDuration
	}
	for _, l := range p.Lanes() {
		name := l.Name()
		for _, c := range laneClasses {
			m.elDuration.WithLabelValues(name, c.String())
		}
		for _, k := range errorKinds {
			m.elErrors.WithLabelValues(name, k)
		}
		for _, s := range laneStates[1:] {
			m.elStateChanges.WithLabelValues(name, s.String())
		}
		for _, r := range dropReasons {
			m.elDropped.WithLabelValues(name, string(r))
		}
	}
	if err := m.reg.Register(&snapshotCollector{m: m, snap: func() status.Snapshot { return status.Build(p, so) }}); err != nil {
		return fmt.Errorf("register proxy collector: %w", err)
	}
	return nil
}

// OnRequest counts one answered beacon node request (proxy.Hooks.OnRequest).
func (m *Metrics) OnRequest(bn string, class engine.Class, outcome proxy.Outcome, took time.Duration) {
	m.requests.WithLabelValues(m.bnLabel(bn), class.String(), string(outcome)).Inc()
	m.requestDuration.WithLabelValues(class.String()).Observe(took.Seconds())
}

// OnWriterChange counts a change of writer (proxy.Hooks.OnWriterChange).
func (m *Metrics) OnWriterChange(c beacon.Change) {
	m.writerChanges.WithLabelValues(reasonLabel(c.Reason)).Inc()
}

// OnDivergence counts a divergent block (proxy.Hooks.OnDivergence).
func (m *Metrics) OnDivergence(d divergence.Divergence) {
	m.divergences.WithLabelValues(d.Class.String()).Inc()
}

// OnResult records one queued delivery's outcome (upstream.Hooks.OnResult).
func (m *Metrics) OnResult(l *upstream.Lane, s *upstream.Slot) {
	d, res := s.Delivery(), s.Result()
	el, class := l.Name(), d.Req.Class.String()
	if res.Err != nil {
		kind := upstream.KindOf(res.Err)
		if kind == upstream.KindCanceled || kind == upstream.KindDropped || kind == "" {
			return // shutdown or a drop (counted by OnDrop): says nothing about the EL
		}
		m.elErrors.WithLabelValues(el, string(kind)).Inc()
		m.elDuration.WithLabelValues(el, class).Observe(res.Latency.Seconds())
		return
	}
	m.elDuration.WithLabelValues(el, class).Observe(res.Latency.Seconds())
	if res.Resp.Err != nil {
		m.elErrors.WithLabelValues(el, KindJSONRPCError).Inc()
		return
	}
	if st := res.Resp.Status; st != "" {
		m.elVerdicts.WithLabelValues(el, class, statusLabel(st)).Inc()
	}
}

// OnDrop counts a request a lane never sent (upstream.Hooks.OnDrop).
func (m *Metrics) OnDrop(l *upstream.Lane, _ *upstream.Delivery, reason upstream.DropReason) {
	m.elDropped.WithLabelValues(l.Name(), string(reason)).Inc()
}

// OnState counts a change of an EL's state (upstream.Hooks.OnState).
func (m *Metrics) OnState(l *upstream.Lane, _, to upstream.State, _ error) {
	m.elStateChanges.WithLabelValues(l.Name(), to.String()).Inc()
}

// bnLabel bounds the bn label: the first MaxBNs names seen keep their own value.
func (m *Metrics) bnLabel(bn string) string {
	if bn == "" {
		return UnknownBN
	}
	if m.admitted(bn, true) {
		return bn
	}
	return OtherBN
}

// admitted reports whether bn has its own label value, admitting it when add is set and
// there is room.
func (m *Metrics) admitted(bn string, add bool) bool {
	m.bnMu.Lock()
	defer m.bnMu.Unlock()
	if m.bns[bn] {
		return true
	}
	if add && len(m.bns) < m.opts.MaxBNs {
		m.bns[bn] = true
		return true
	}
	return false
}

// reasonLabel turns a beacon.Reason ("behind wall clock") into a label value
// ("behind_wall_clock").
func reasonLabel(r beacon.Reason) string {
	if r == "" {
		return "none"
	}
	return strings.ReplaceAll(string(r), " ", "_")
}

// statusLabel bounds a payload status to the five the specification defines.
func statusLabel(s engine.Status) string {
	if s.Known() {
		return string(s)
	}
	return "other"
}
