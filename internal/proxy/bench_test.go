package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/sync-proxy/sync-proxy/internal/beacon"
	"github.com/sync-proxy/sync-proxy/internal/loadgen"
	"github.com/sync-proxy/sync-proxy/internal/proxy"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// BenchmarkServeHTTP drives Proxy.ServeHTTP with realistic bodies in front of 1, 4 and 16
// httptest ELs. One op is one request answered and delivered to every EL (Drain), so B/op
// and allocs/op count everything the request cost: the inbound read, inspection, the
// fan-out, every lane's HTTP round trip and the fake ELs' side of it. The body is read once
// (about its size in B/op) and shared by every lane: B/op grows by the body size, not by
// body size × ELs; allocs/op grows by a constant per EL (one HTTP request each) and not with
// the body size.
func BenchmarkServeHTTP(b *testing.B) {
	for _, mode := range []string{"direct", "mirror"} {
		for _, lanes := range []int{1, 4, 16} {
			for _, shape := range []string{"np-1.4KB", "np-300KB", "np-2MB", "fcu"} {
				b.Run(fmt.Sprintf("%s/lanes=%d/%s", mode, lanes, shape), func(b *testing.B) {
					benchServe(b, mode == "direct", lanes, shape)
				})
			}
		}
	}
}

func benchServe(b *testing.B, direct bool, lanes int, shape string) {
	tpl := benchTemplate(b, shape)
	p := benchProxy(b, direct, lanes)
	body := tpl.Clone()
	req, rd := reusableRequest(body)
	w := &answerWriter{header: http.Header{}}
	ctx := context.Background()
	seq := uint64(0)
	serve := func() {
		tpl.Stamp(body, seq)
		seq++
		rd.Reset(body)
		w.reset()
		p.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.buf.Len() == 0 {
			b.Fatalf("answer %d %q", w.status, w.buf.Bytes())
		}
		if err := p.Drain(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range 20 { // open the connections, fill the pools
		serve()
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		serve()
	}
}

// benchTemplates caches the rendered bodies: the large ones take a second to sign.
var benchTemplates sync.Map

func benchTemplate(b *testing.B, name string) *loadgen.Template {
	if t, ok := benchTemplates.Load(name); ok {
		return t.(*loadgen.Template)
	}
	s, err := loadgen.ShapeByName(name)
	if err != nil {
		b.Fatal(err)
	}
	t, err := loadgen.NewTemplate(s, 1)
	if err != nil {
		b.Fatal(err)
	}
	benchTemplates.Store(name, t)
	return t
}

// benchProxy runs a proxy in front of n lean fake ELs until the benchmark ends.
func benchProxy(b *testing.B, direct bool, n int) *proxy.Proxy {
	cfg := proxy.Config{Instance: "bench", Election: beacon.DefaultConfig()}
	for i := range n {
		srv := httptest.NewServer(benchEL{})
		b.Cleanup(srv.Close)
		role := upstream.RoleFollower
		if i == 0 && direct {
			role = upstream.RolePrimary
		}
		cfg.ELs = append(cfg.ELs, upstream.Config{Name: fmt.Sprintf("el%d", i), URL: srv.URL, Role: role})
	}
	p, err := proxy.New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return p
}

// reusableRequest is one inbound request whose body reader is reset per op, so the
// benchmark's own allocations stay out of the numbers.
func reusableRequest(body []byte) (*http.Request, *bytes.Reader) {
	rd := bytes.NewReader(body)
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Path: "/"},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(rd),
		ContentLength: int64(len(body)),
		Host:          "127.0.0.1",
		RemoteAddr:    "127.0.0.1:40000",
	}
	return req.WithContext(context.Background()), rd
}

// answerWriter is a reusable http.ResponseWriter that keeps the answer.
type answerWriter struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (w *answerWriter) reset() {
	clear(w.header)
	w.status = 0
	w.buf.Reset()
}

func (w *answerWriter) Header() http.Header { return w.header }
func (w *answerWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *answerWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.buf.Write(p)
}

// benchEL is a lean fake EL: it reads the id from the head of the body, discards the rest
// without keeping it, and answers VALID (with a payloadId for a build).
type benchEL struct{}

var jsonType = []string{"application/json"}

func (benchEL) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var head [256]byte
	n, _ := io.ReadFull(r.Body, head[:])
	_, _ = io.Copy(io.Discard, r.Body)
	id := idOf(head[:n])
	var answer [320]byte
	out := append(answer[:0], `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	if bytes.Contains(head[:n], []byte("forkchoiceUpdated")) {
		out = append(out, `,"result":{"payloadStatus":{"status":"VALID","latestValidHash":null,"validationError":null},"payloadId":null}}`...)
	} else {
		out = append(out, `,"result":{"status":"VALID","latestValidHash":null,"validationError":null}}`...)
	}
	w.Header()["Content-Type"] = jsonType
	_, _ = w.Write(out)
}

// idOf returns the raw id value of a request whose "id" member is among its first bytes.
func idOf(head []byte) []byte {
	i := bytes.Index(head, []byte(`"id":`))
	if i < 0 {
		return []byte("null")
	}
	rest := head[i+5:]
	end := bytes.IndexAny(rest, ",}")
	if end < 0 {
		return []byte("null")
	}
	return rest[:end]
}

// TestBenchELEchoesID keeps the benchmark's fake EL honest.
func TestBenchELEchoesID(t *testing.T) {
	srv := httptest.NewServer(benchEL{})
	defer srv.Close()
	tpl := benchTemplateT(t, "fcu-attrs")
	body := tpl.Clone()
	id := tpl.Stamp(body, 3)
	resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if _, err := loadgen.Check(loadgen.KindForkchoice, id, got, loadgen.Expect{}); err != nil {
		t.Errorf("%s: %v", got, err)
	}
}

func benchTemplateT(t *testing.T, name string) *loadgen.Template {
	s, err := loadgen.ShapeByName(name)
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := loadgen.NewTemplate(s, 1)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}
