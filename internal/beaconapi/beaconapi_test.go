package beaconapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/clock"
)

// fakeAPI is a scriptable beacon node REST API.
type fakeAPI struct {
	srv *httptest.Server

	mu     sync.Mutex
	status int
	body   string
	hits   int
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{status: 200}
	f.set(syncing(100, false, false))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		status, body := f.status, f.body
		f.hits++
		f.mu.Unlock()
		if r.Method != http.MethodGet || r.URL.Path != SyncingPath {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) set(body string) {
	f.mu.Lock()
	f.status, f.body = 200, body
	f.mu.Unlock()
}

func (f *fakeAPI) fail(status int) {
	f.mu.Lock()
	f.status, f.body = status, `{"code":500,"message":"internal error"}`
	f.mu.Unlock()
}

func syncing(head uint64, isSyncing, optimistic bool) string {
	return fmt.Sprintf(`{"data":{"head_slot":"%d","sync_distance":"0","is_syncing":%v,"is_optimistic":%v,"el_offline":false}}`, head, isSyncing, optimistic)
}

// recorder is a Sink that keeps what it was given.
type recorder struct {
	mu  sync.Mutex
	got map[string][]beacon.External
}

func (r *recorder) SetExternal(bn string, e beacon.External) *beacon.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.got == nil {
		r.got = map[string][]beacon.External{}
	}
	r.got[bn] = append(r.got[bn], e)
	return nil
}

func (r *recorder) last(bn string) (beacon.External, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.got[bn]
	if len(l) == 0 {
		return beacon.External{}, 0
	}
	return l[len(l)-1], len(l)
}

func TestParseSyncing(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Syncing
		err  string
	}{
		{"healthy", `{"data":{"head_slot":"13205504","sync_distance":"0","is_syncing":false,"is_optimistic":false,"el_offline":false}}`, Syncing{HeadSlot: 13205504}, ""},
		{"syncing optimistic, EL offline", `{"data":{"head_slot":"7","sync_distance":"93","is_syncing":true,"is_optimistic":true,"el_offline":true}}`,
			Syncing{HeadSlot: 7, SyncDistance: 93, IsSyncing: true, IsOptimistic: true, ELOffline: true}, ""},
		{"numbers and no optional fields", `{"data":{"head_slot":5,"sync_distance":1,"is_syncing":false}}`, Syncing{HeadSlot: 5, SyncDistance: 1}, ""},
		{"not JSON", `<html>`, Syncing{}, "not a node/syncing answer"},
		{"no data", `{"head_slot":"1"}`, Syncing{}, "no data"},
		{"no head slot", `{"data":{"sync_distance":"0","is_syncing":false}}`, Syncing{}, "no data.head_slot"},
		{"no sync distance", `{"data":{"head_slot":"1","is_syncing":false}}`, Syncing{}, "no data.sync_distance"},
		{"no is_syncing", `{"data":{"head_slot":"1","sync_distance":"0"}}`, Syncing{}, "no data.is_syncing"},
		{"hex slot", `{"data":{"head_slot":"0x10","sync_distance":"0","is_syncing":false}}`, Syncing{}, "not a decimal uint64"},
		{"negative slot", `{"data":{"head_slot":"-1","sync_distance":"0","is_syncing":false}}`, Syncing{}, "not a decimal uint64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSyncing([]byte(tt.body))
			if tt.err != "" {
				if err == nil || !errors.Is(err, ErrBadAnswer) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseSyncing = %+v, %v; want an ErrBadAnswer with %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSyncing = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestPoll: what each answer becomes, and when failures make a beacon node offline.
func TestPoll(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	type step struct {
		script  func(f *fakeAPI)
		want    beacon.External // At is filled in
		reports int             // how many reports the sink has had so far
		err     string          // substring of Status.Err; "" for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"healthy", []step{{func(f *fakeAPI) {}, beacon.External{Known: true, HeadSlot: 100}, 1, ""}}},
		{"syncing", []step{{func(f *fakeAPI) { f.set(syncing(90, true, false)) }, beacon.External{Known: true, Syncing: true, HeadSlot: 90}, 1, ""}}},
		{"optimistic", []step{{func(f *fakeAPI) { f.set(syncing(90, false, true)) }, beacon.External{Known: true, Optimistic: true, HeadSlot: 90}, 1, ""}}},
		{"down after two failures, up after one answer", []step{
			{func(f *fakeAPI) {}, beacon.External{Known: true, HeadSlot: 100}, 1, ""},
			{func(f *fakeAPI) { f.fail(500) }, beacon.External{Known: true, HeadSlot: 100}, 1, "http status 500"},
			{func(f *fakeAPI) {}, beacon.External{Known: true, Offline: true, HeadSlot: 100}, 2, "http status 500"},
			{func(f *fakeAPI) {}, beacon.External{Known: true, Offline: true, HeadSlot: 100}, 2, "http status 500"},
			{func(f *fakeAPI) { f.set(syncing(104, false, false)) }, beacon.External{Known: true, HeadSlot: 104}, 3, ""},
		}},
		{"a parse error counts as a failure", []step{
			{func(f *fakeAPI) { f.set(`{"data":{}}`) }, beacon.External{}, 0, "no data.head_slot"},
			{func(f *fakeAPI) {}, beacon.External{Known: true, Offline: true}, 1, "no data.head_slot"},
		}},
		{"unreachable", []step{
			{func(f *fakeAPI) { f.srv.Close() }, beacon.External{}, 0, "beacon api"},
			{func(f *fakeAPI) {}, beacon.External{Known: true, Offline: true}, 1, "beacon api"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			clk := clock.NewManual(at)
			sink := &recorder{}
			p, err := New([]Target{{Name: "bn1", URL: f.srv.URL + "/"}}, sink, Options{Clock: clk, UserAgent: "test"})
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tt.steps {
				clk.Advance(time.Second)
				s.script(f)
				p.Poll(context.Background())
				got, n := sink.last("bn1")
				want := s.want
				if want.Known {
					want.At = got.At // checked below
				}
				if n != s.reports || got != want {
					t.Fatalf("step %d: sink got %+v (%d reports), want %+v (%d)", i, got, n, want, s.reports)
				}
				if n > 0 && got.At.After(clk.Now()) {
					t.Fatalf("step %d: At %v is in the future", i, got.At)
				}
				st := p.Status()[0]
				if (s.err == "") != (st.Err == "") || !strings.Contains(st.Err, s.err) {
					t.Fatalf("step %d: Status.Err = %q, want %q", i, st.Err, s.err)
				}
				if !st.At.Equal(clk.Now()) {
					t.Fatalf("step %d: Status.At = %v, want the clock's %v", i, st.At, clk.Now())
				}
			}
		})
	}
}

// TestElection: the fake beacon APIs drive the writer election through a real tracker.
func TestElection(t *testing.T) {
	genesis := uint64(1_600_000_000)
	slotTS := func(s uint64) uint64 { return genesis + s*12 }
	cfg := beacon.DefaultConfig()
	cfg.Genesis = genesis
	tests := []struct {
		name   string
		script func(a, b *fakeAPI)
		polls  int
		want   string
		reason beacon.Reason // a's
	}{
		{"both healthy: the writer stays", func(a, b *fakeAPI) {}, 1, "a", ""},
		{"writer syncing", func(a, b *fakeAPI) { a.set(syncing(100, true, false)) }, 1, "b", beacon.ReasonExternal},
		{"writer optimistic", func(a, b *fakeAPI) { a.set(syncing(100, false, true)) }, 1, "b", beacon.ReasonExternal},
		{"writer's API unreachable", func(a, b *fakeAPI) { a.srv.Close() }, 2, "b", beacon.ReasonExternal},
		{"writer's API unreachable once: no change yet", func(a, b *fakeAPI) { a.srv.Close() }, 1, "a", ""},
		// Ahead for more than half a slot (polls 1 s apart): a may be importing the block.
		{"a peer's head slot two slots ahead, for one poll", func(a, b *fakeAPI) { b.set(syncing(102, false, false)) }, 1, "a", ""},
		{"a peer's head slot two slots ahead", func(a, b *fakeAPI) { b.set(syncing(102, false, false)) }, 8, "b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewManual(time.Unix(int64(slotTS(102)), 0).Add(2 * time.Second))
			tr, err := beacon.NewTracker(cfg, clk, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Both showed slot 100 over the Engine API; a first.
			tr.Observe("a", beacon.Observation{HeadTimestamp: slotTS(100), HeadKnown: true})
			tr.Observe("b", beacon.Observation{HeadTimestamp: slotTS(100), HeadKnown: true})
			a, b := newFakeAPI(t), newFakeAPI(t)
			p, err := New([]Target{{Name: "a", URL: a.srv.URL}, {Name: "b", URL: b.srv.URL}}, tr, Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			tt.script(a, b)
			for range tt.polls {
				clk.Advance(time.Second)
				p.Poll(context.Background())
			}
			if w, _ := tr.Writer(); w != tt.want {
				t.Fatalf("writer %q, want %q", w, tt.want)
			}
			for _, n := range tr.Snapshot() {
				if n.Name == "a" && n.Unhealthy != tt.reason {
					t.Fatalf("a unhealthy %q, want %q (%+v)", n.Unhealthy, tt.reason, n)
				}
			}
		})
	}
}

// TestRun: Run polls at once and then every interval, and returns when ctx is done.
func TestRun(t *testing.T) {
	f := newFakeAPI(t)
	sink := &recorder{}
	p, err := New([]Target{{Name: "bn1", URL: f.srv.URL}}, sink, Options{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if p.Interval() != MinInterval {
		t.Fatalf("interval %v, want it raised to %v", p.Interval(), MinInterval)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, n := sink.last("bn1"); n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no poll within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestNew(t *testing.T) {
	sink := &recorder{}
	tests := []struct {
		name    string
		targets []Target
		sink    Sink
		opts    Options
		err     string
		check   func(t *testing.T, p *Poller)
	}{
		{name: "defaults", targets: []Target{{"a", "http://127.0.0.1:5052"}}, sink: sink, check: func(t *testing.T, p *Poller) {
			if p.opts.Interval != DefaultInterval || p.opts.Timeout != DefaultTimeout || p.opts.FailuresToOffline != DefaultFailuresToOffline {
				t.Errorf("options %+v", p.opts)
			}
		}},
		{name: "timeout at most the interval", targets: nil, sink: sink, opts: Options{Interval: 90 * time.Second, Timeout: time.Hour}, check: func(t *testing.T, p *Poller) {
			if p.opts.Interval != MaxInterval || p.opts.Timeout != MaxInterval {
				t.Errorf("options %+v", p.opts)
			}
		}},
		{name: "no sink", err: "no sink"},
		{name: "bad url", targets: []Target{{"a", "127.0.0.1:5052"}}, sink: sink, err: "not an http(s) URL"},
		{name: "twice", targets: []Target{{"a", "http://x"}, {"a", "http://y"}}, sink: sink, err: "given twice"},
		{name: "no name", targets: []Target{{"", "http://x"}}, sink: sink, err: "name is empty"},
		{name: "negative", sink: sink, opts: Options{Interval: -1}, err: "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.targets, tt.sink, tt.opts)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("New = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}
