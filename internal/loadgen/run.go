package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/jwtauth"
)

// MaxDuration bounds any run.
const MaxDuration = 10 * time.Minute

// RunConfig configures a load run. Either Duration or Requests must bound it; MaxDuration
// always does.
type RunConfig struct {
	// URL receives the requests.
	URL string
	// Template is the request sent.
	Template *Template
	// Secret, when set, signs a fresh HS256 token (iat only) for every request.
	Secret *jwtauth.Secret
	// Concurrency is the number of senders; at most this many requests are in flight.
	// Default 1.
	Concurrency int
	// Rate is the total number of requests per second, sent on a fixed schedule; a request
	// that had to wait for a free sender counts from its scheduled time, so a stall is not
	// hidden. 0 means closed loop: each sender sends again as soon as it has its answer.
	Rate float64
	// Duration stops issuing requests after this long.
	Duration time.Duration
	// Requests stops after this many recorded requests (0: Duration alone bounds the run).
	Requests int
	// Warmup requests are sent first and not recorded.
	Warmup int
	// StartSeq is the first request number (ids, block hashes and numbers derive from it).
	// Use the previous run's NextSeq to keep every block distinct.
	StartSeq uint64
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration
	// Expect is checked on every answer.
	Expect Expect
	// Client sends the requests; nil makes a keep-alive client for the run.
	Client *http.Client
}

// Result is what a run measured.
type Result struct {
	Shape     string
	BodyLen   int
	Sent      int            // recorded requests (answered or failed)
	OK        int            // answers that passed Check
	Errors    map[string]int // failures by kind
	Statuses  map[string]int // payload statuses of passing answers
	FirstErr  string         // the first failure, in full
	Latencies []time.Duration
	Elapsed   time.Duration // first recorded send to last recorded answer
	NextSeq   uint64        // the first request number not used
}

// Quantile returns the q-quantile (0 < q ≤ 1) of the passing requests' latencies, by
// nearest rank; 0 when there are none.
func (r Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.999999) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// Max is the largest latency.
func (r Result) Max() time.Duration { return r.Quantile(1) }

// Throughput is passing requests per second.
func (r Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// Failed is the number of recorded requests that did not pass.
func (r Result) Failed() int { return r.Sent - r.OK }

// String summarises the result on one line.
func (r Result) String() string {
	return fmt.Sprintf("%s (%d B): %d sent, %d ok, %d failed; p50 %v p99 %v max %v; %.1f req/s, %.1f MB/s",
		r.Shape, r.BodyLen, r.Sent, r.OK, r.Failed(), r.Quantile(0.5), r.Quantile(0.99), r.Max(),
		r.Throughput(), r.Throughput()*float64(r.BodyLen)/1e6)
}

// NewClient returns a keep-alive HTTP client for up to conns concurrent requests to one host.
func NewClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns, // never more connections than senders
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
		WriteBufferSize:     64 << 10,
		ReadBufferSize:      64 << 10,
	}}
}

// runner is one run's shared state.
type runner struct {
	cfg    RunConfig
	client *http.Client
	signer *jwtauth.Signer
	stopAt time.Time
	issued atomic.Int64
	seq    atomic.Uint64

	mu  sync.Mutex
	res Result
	t0  time.Time // first recorded send
	t1  time.Time // last recorded answer
}

// Run sends load as cfg says and returns what it measured. It stops early, with what it has,
// when ctx is done.
func Run(ctx context.Context, cfg RunConfig) (Result, error) {
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	r := &runner{cfg: cfg, client: cfg.Client, stopAt: time.Now().Add(cfg.Duration)}
	r.res = Result{Shape: cfg.Template.Shape.Name, BodyLen: cfg.Template.Len(), Errors: map[string]int{}, Statuses: map[string]int{}}
	r.seq.Store(cfg.StartSeq)
	if r.client == nil {
		r.client = NewClient(cfg.Concurrency)
		defer r.client.CloseIdleConnections()
	}
	if cfg.Secret != nil {
		r.signer = jwtauth.NewSigner(*cfg.Secret, nil, jwtauth.SignerOptions{Reuse: -1})
	}
	var slots <-chan time.Time
	if cfg.Rate > 0 {
		slots = r.schedule(ctx)
	}
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() { r.sender(ctx, slots) })
	}
	wg.Wait()
	slices.Sort(r.res.Latencies)
	r.res.NextSeq = r.seq.Load()
	if !r.t0.IsZero() {
		r.res.Elapsed = r.t1.Sub(r.t0)
	}
	return r.res, nil
}

func (c *RunConfig) validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("no URL"))
	}
	if c.Template == nil {
		errs = append(errs, errors.New("no template"))
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		errs = append(errs, errors.New("give a duration or a number of requests"))
	}
	if c.Concurrency < 0 || c.Rate < 0 || c.Requests < 0 || c.Warmup < 0 || c.Timeout < 0 || c.Duration < 0 {
		errs = append(errs, errors.New("concurrency, rate, requests, warmup, timeout and duration must not be negative"))
	}
	if c.Duration <= 0 || c.Duration > MaxDuration {
		c.Duration = MaxDuration
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	return errors.Join(errs...)
}

// schedule emits send times at cfg.Rate until the run's end.
func (r *runner) schedule(ctx context.Context) <-chan time.Time {
	slots := make(chan time.Time, r.cfg.Concurrency)
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	go func() {
		defer close(slots)
		timer := time.NewTimer(0)
		defer timer.Stop()
		next := time.Now()
		for next.Before(r.stopAt) && !r.budgetSpent() {
			timer.Reset(time.Until(next))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			select {
			case slots <- next:
			case <-ctx.Done():
				return
			}
			next = next.Add(interval)
		}
	}()
	return slots
}

// budgetSpent reports whether every requested request has been issued.
func (r *runner) budgetSpent() bool {
	return r.cfg.Requests > 0 && r.issued.Load() >= int64(r.cfg.Requests+r.cfg.Warmup)
}

// take claims the next request: its number, and whether it is recorded. ok is false when
// the run is over.
func (r *runner) take(ctx context.Context) (n int64, ok bool) {
	if ctx.Err() != nil || !time.Now().Before(r.stopAt) {
		return 0, false
	}
	n = r.issued.Add(1)
	if r.cfg.Requests > 0 && n > int64(r.cfg.Requests+r.cfg.Warmup) {
		return 0, false
	}
	return n, true
}

// sender sends requests until the run is over; slots paces it when the run has a rate.
func (r *runner) sender(ctx context.Context, slots <-chan time.Time) {
	s := &sendState{buf: r.cfg.Template.Clone()}
	for {
		at, open := r.nextStart(slots)
		if !open {
			return
		}
		n, ok := r.take(ctx)
		if !ok {
			return
		}
		seq := r.seq.Add(1) - 1
		id := r.cfg.Template.Stamp(s.buf, seq)
		status, err := r.send(ctx, s, id)
		if n > int64(r.cfg.Warmup) {
			r.record(at, time.Now(), status, err)
		}
	}
}

// nextStart returns when the next request's latency starts counting. Closed loop: now. On a
// schedule: the scheduled time if the request was already due when this sender got free (it
// waited for a sender, and that wait counts), else the moment the sender got it (the
// generator's own timer lateness is not the hop's latency). open is false at the end.
func (r *runner) nextStart(slots <-chan time.Time) (time.Time, bool) {
	if slots == nil {
		return time.Now(), true
	}
	select {
	case at, open := <-slots:
		return at, open
	default:
	}
	_, open := <-slots
	return time.Now(), open
}

// sendState is one sender's reusable buffers.
type sendState struct {
	buf  []byte       // the stamped body
	resp bytes.Buffer // the answer
}

// send posts one stamped body and checks the answer.
func (r *runner) send(ctx context.Context, s *sendState, id []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	body := newBody(s.buf)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL, body)
	if err != nil {
		return "", fmt.Errorf("request: %w", err)
	}
	req.ContentLength = int64(len(s.buf))
	req.Header.Set("Content-Type", "application/json")
	if r.signer != nil {
		req.Header.Set("Authorization", r.signer.Authorization())
	}
	status, err := r.exchange(req, s, id)
	if !body.waitClosed(5 * time.Second) {
		// The transport still holds the body: never stamp a buffer it may be sending.
		s.buf = r.cfg.Template.Clone()
	}
	return status, err
}

// exchange does the round trip and checks the answer.
func (r *runner) exchange(req *http.Request, s *sendState, id []byte) (string, error) {
	resp, err := r.client.Do(req)
	if err != nil {
		return "", &sendError{kind: "transport", err: err}
	}
	defer resp.Body.Close()
	s.resp.Reset()
	if _, err := s.resp.ReadFrom(io.LimitReader(resp.Body, 64<<20)); err != nil {
		return "", &sendError{kind: "transport", err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return "", &sendError{kind: fmt.Sprintf("http %d", resp.StatusCode), err: fmt.Errorf("%s", bytes.TrimSpace(s.resp.Bytes()[:min(s.resp.Len(), 200)]))}
	}
	status, err := Check(r.cfg.Template.Shape.Kind, id, s.resp.Bytes(), r.cfg.Expect)
	if err != nil {
		return status, &sendError{kind: checkKind(err), err: err}
	}
	return status, nil
}

// sendError is a failed request with a short kind for the error counts.
type sendError struct {
	kind string
	err  error
}

func (e *sendError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// checkKind names a Check error by its sentinel.
func checkKind(err error) string {
	for _, s := range []error{ErrNotJSON, ErrVersion, ErrWrongID, ErrRPCError, ErrNoResult, ErrBadStatus, ErrUnexpected, ErrBadPayloadID, ErrBadLatestHash} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "check"
}

// record adds one recorded request to the result.
func (r *runner) record(at, done time.Time, status string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Sent++
	if r.t0.IsZero() || at.Before(r.t0) {
		r.t0 = at
	}
	if done.After(r.t1) {
		r.t1 = done
	}
	if err != nil {
		kind := "error"
		var se *sendError
		if errors.As(err, &se) {
			kind = se.kind
		}
		r.res.Errors[kind]++
		if r.res.FirstErr == "" {
			r.res.FirstErr = err.Error()
		}
		return
	}
	r.res.OK++
	r.res.Statuses[status]++
	r.res.Latencies = append(r.res.Latencies, done.Sub(at))
}

// body is a request body over a sender's buffer that reports when the transport is done
// with it (the transport closes a request body when it has finished writing it).
type body struct {
	rd     bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func newBody(b []byte) *body {
	x := &body{closed: make(chan struct{})}
	x.rd.Reset(b)
	return x
}

func (b *body) Read(p []byte) (int, error)         { return b.rd.Read(p) }
func (b *body) WriteTo(w io.Writer) (int64, error) { return b.rd.WriteTo(w) }

// Close records that the transport is done with the buffer.
func (b *body) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func (b *body) waitClosed(d time.Duration) bool {
	select {
	case <-b.closed:
		return true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-b.closed:
		return true
	case <-t.C:
		return false
	}
}

// SortedKeys returns m's keys in order (for printing counts).
func SortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
