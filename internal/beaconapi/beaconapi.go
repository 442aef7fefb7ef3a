// Package beaconapi polls the beacon nodes' standard REST API (GET /eth/v1/node/syncing) and
// hands the result to the writer election as a [beacon.External]: a beacon node that is
// syncing, optimistic or without its execution client is not healthy, one whose API cannot
// be reached is offline even before it goes silent on the Engine API, and its head slot
// counts as progress when the genesis time is known (see internal/beacon).
//
// The API is optional per beacon node (--bn name=N,beacon-api=URL). A poller runs one
// request per beacon node per interval, concurrently, each bounded by a timeout. A failure
// (no connection, an HTTP status other than 200, a body that is not the documented answer)
// is logged when it starts and when it ends, kept in [Poller.Status], and after
// FailuresToOffline failures in a row the beacon node is reported offline; one good answer
// ends that.
package beaconapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/clock"
)

// SyncingPath is the standard endpoint polled, relative to a beacon node's API base URL.
const SyncingPath = "/eth/v1/node/syncing"

// Bounds and defaults of [Options].
const (
	MinInterval              = time.Second
	MaxInterval              = time.Minute
	DefaultInterval          = 4 * time.Second // a third of a mainnet slot
	DefaultTimeout           = 2 * time.Second
	DefaultFailuresToOffline = 2
	maxBody                  = 64 << 10 // the answer is ~150 bytes
)

// Target is one beacon node's REST API.
type Target struct {
	// Name is the beacon node's name, as the proxy identifies it on the Engine API.
	Name string
	// URL is the API's base URL (http or https), e.g. http://127.0.0.1:5052.
	URL string
}

// Sink receives every beacon node's health. [*beacon.Tracker] is one.
type Sink interface {
	SetExternal(bn string, e beacon.External) *beacon.Change
}

// Options configure a Poller. The zero value of every field is replaced by its default.
type Options struct {
	// Interval between polls of one beacon node. Default DefaultInterval; bounded to
	// [MinInterval, MaxInterval].
	Interval time.Duration
	// Timeout bounds one request (connect to last byte). Default DefaultTimeout, and at most
	// Interval.
	Timeout time.Duration
	// FailuresToOffline is how many failed polls in a row make a beacon node offline.
	// Default DefaultFailuresToOffline.
	FailuresToOffline int
	// UserAgent is sent with every request.
	UserAgent string
	// Clock stamps results (External.At, Status.At). Default the wall clock.
	Clock clock.Clock
	// Log receives failures and recoveries. Default discards.
	Log *slog.Logger
	// Transport overrides the HTTP transport (tests).
	Transport http.RoundTripper
}

// Status is the latest poll of one beacon node.
type Status struct {
	Name string
	URL  string
	// External is what was last given to the sink (zero before the first result).
	External beacon.External
	// Err is the last poll's failure, "" after a good answer.
	Err string
	// Failures counts failed polls in a row.
	Failures int
	// At is when the last poll ended.
	At time.Time
}

// Poller polls beacon nodes' REST APIs. Create it with New; it is safe for concurrent use.
type Poller struct {
	opts    Options
	sink    Sink
	client  *http.Client
	targets []Target

	mu     sync.Mutex
	status []Status // by target
}

// New validates the targets and options. Targets must have distinct, non-empty names and
// http(s) URLs.
func New(targets []Target, sink Sink, opts Options) (*Poller, error) {
	var problems []error
	if sink == nil {
		problems = append(problems, errors.New("no sink"))
	}
	seen := map[string]bool{}
	for _, t := range targets {
		if t.Name == "" {
			problems = append(problems, fmt.Errorf("beacon api %q: name is empty", t.URL))
		} else if seen[t.Name] {
			problems = append(problems, fmt.Errorf("beacon api of %s given twice", t.Name))
		}
		seen[t.Name] = true
		if u, err := url.Parse(t.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Errorf("beacon api of %s: %q is not an http(s) URL", t.Name, t.URL))
		}
	}
	if opts.Interval < 0 || opts.Timeout < 0 || opts.FailuresToOffline < 0 {
		problems = append(problems, errors.New("interval, timeout and failures to offline must not be negative"))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("beacon api poller: %w", errors.Join(problems...))
	}
	if opts.Interval == 0 {
		opts.Interval = DefaultInterval
	}
	opts.Interval = min(max(opts.Interval, MinInterval), MaxInterval)
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	opts.Timeout = min(opts.Timeout, opts.Interval)
	if opts.FailuresToOffline == 0 {
		opts.FailuresToOffline = DefaultFailuresToOffline
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			Proxy:               nil, // beacon nodes are addressed directly
			DialContext:         (&net.Dialer{Timeout: opts.Timeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: opts.Timeout,
		}
	}
	p := &Poller{
		opts: opts, sink: sink, targets: append([]Target(nil), targets...),
		client: &http.Client{Transport: tr, Timeout: opts.Timeout},
		status: make([]Status, len(targets)),
	}
	for i, t := range targets {
		p.status[i] = Status{Name: t.Name, URL: t.URL}
	}
	return p, nil
}

// Interval returns the interval in use, after defaults and bounds.
func (p *Poller) Interval() time.Duration { return p.opts.Interval }

// Run polls every target at once, then every Interval, until ctx is done.
func (p *Poller) Run(ctx context.Context) {
	if len(p.targets) == 0 {
		return
	}
	ticker := time.NewTicker(p.opts.Interval)
	defer ticker.Stop()
	for {
		p.Poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Poll polls every target once, concurrently, and reports the results to the sink.
func (p *Poller) Poll(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range p.targets {
		wg.Go(func() { p.pollOne(ctx, i) })
	}
	wg.Wait()
}

// Status returns the latest poll of every target, in the order given to New.
func (p *Poller) Status() []Status {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Status(nil), p.status...)
}

func (p *Poller) pollOne(ctx context.Context, i int) {
	t := p.targets[i]
	s, err := Fetch(ctx, p.client, t.URL, p.opts.UserAgent)
	if ctx.Err() != nil {
		return // shutting down: says nothing about the beacon node
	}
	now := p.opts.Clock.Now()

	p.mu.Lock()
	st := &p.status[i]
	prevErr, prevFailures := st.Err, st.Failures
	st.At = now
	report := false
	if err != nil {
		st.Err = err.Error()
		st.Failures++
		if st.Failures >= p.opts.FailuresToOffline && !st.External.Offline {
			// Keep the last head slot for display; Offline keeps it out of the election.
			st.External = beacon.External{Known: true, Offline: true, HeadSlot: st.External.HeadSlot, SyncDistance: st.External.SyncDistance, At: now}
			report = true
		}
	} else {
		st.Err, st.Failures = "", 0
		st.External = s.External(now)
		report = true
	}
	ext := st.External
	p.mu.Unlock()

	log := p.opts.Log.With("bn", t.Name, "url", t.URL)
	switch {
	case err != nil && prevFailures == 0:
		log.Warn("beacon node api failed", "error", err)
	case err != nil && report:
		log.Warn("beacon node api unreachable: the beacon node counts as offline", "failures", prevFailures+1, "error", err)
	case err == nil && prevErr != "":
		log.Info("beacon node api answers again")
	}
	if report {
		p.sink.SetExternal(t.Name, ext)
	}
}

// Syncing is the data of a GET /eth/v1/node/syncing answer.
type Syncing struct {
	HeadSlot     uint64
	SyncDistance uint64
	IsSyncing    bool
	IsOptimistic bool
	ELOffline    bool
}

// External returns s as the election's view, polled at at.
func (s Syncing) External(at time.Time) beacon.External {
	return beacon.External{
		Known: true, Syncing: s.IsSyncing, Optimistic: s.IsOptimistic, ELOffline: s.ELOffline,
		HeadSlot: s.HeadSlot, SyncDistance: s.SyncDistance, At: at,
	}
}

// ErrBadAnswer is wrapped by every error about an answer that is not the documented one.
var ErrBadAnswer = errors.New("not a node/syncing answer")

// Fetch asks the beacon node API at base for its sync status.
func Fetch(ctx context.Context, client *http.Client, base, userAgent string) (Syncing, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+SyncingPath, nil)
	if err != nil {
		return Syncing{}, fmt.Errorf("beacon api request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if userAgent != "" {
		req.Header.Set("User-Agent", userAgent)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Syncing{}, fmt.Errorf("beacon api: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return Syncing{}, fmt.Errorf("beacon api: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		excerpt := strings.TrimSpace(string(body[:min(len(body), 200)]))
		return Syncing{}, fmt.Errorf("beacon api: http status %d: %s", resp.StatusCode, excerpt)
	}
	if len(body) > maxBody {
		return Syncing{}, fmt.Errorf("%w: answer over %d bytes", ErrBadAnswer, maxBody)
	}
	return ParseSyncing(body)
}

// ParseSyncing reads a GET /eth/v1/node/syncing answer:
//
//	{"data":{"head_slot":"1","sync_distance":"0","is_syncing":false,"is_optimistic":false,"el_offline":false}}
//
// head_slot, sync_distance and is_syncing are required; is_optimistic and el_offline were
// added later and default to false. Slots are decimal strings (numbers are accepted too).
func ParseSyncing(body []byte) (Syncing, error) {
	var a struct {
		Data *struct {
			HeadSlot     *quantity `json:"head_slot"`
			SyncDistance *quantity `json:"sync_distance"`
			IsSyncing    *bool     `json:"is_syncing"`
			IsOptimistic bool      `json:"is_optimistic"`
			ELOffline    bool      `json:"el_offline"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return Syncing{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	d := a.Data
	switch {
	case d == nil:
		return Syncing{}, fmt.Errorf("%w: no data", ErrBadAnswer)
	case d.HeadSlot == nil:
		return Syncing{}, fmt.Errorf("%w: no data.head_slot", ErrBadAnswer)
	case d.SyncDistance == nil:
		return Syncing{}, fmt.Errorf("%w: no data.sync_distance", ErrBadAnswer)
	case d.IsSyncing == nil:
		return Syncing{}, fmt.Errorf("%w: no data.is_syncing", ErrBadAnswer)
	}
	return Syncing{
		HeadSlot: uint64(*d.HeadSlot), SyncDistance: uint64(*d.SyncDistance),
		IsSyncing: *d.IsSyncing, IsOptimistic: d.IsOptimistic, ELOffline: d.ELOffline,
	}, nil
}

// quantity is a uint64 sent as a decimal string, as the beacon API does, or as a number.
type quantity uint64

func (q *quantity) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is not a decimal uint64", b)
	}
	*q = quantity(n)
	return nil
}
