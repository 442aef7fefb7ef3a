package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/bodies"
	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/fakeel"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// batchOf joins requests into one JSON-RPC batch.
func batchOf(reqs ...[]byte) []byte {
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = string(r)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// decodeBatch reads a batch answer: an array of answers.
func decodeBatch(t *testing.T, body []byte) []rpcAnswer {
	t.Helper()
	var as []rpcAnswer
	if err := json.Unmarshal(body, &as); err != nil {
		t.Fatalf("batch answer %q is not an array of answers: %v", body, err)
	}
	return as
}

type requestLog struct {
	mu  sync.Mutex
	got []string // "bn class outcome"
}

func (l *requestLog) hook(c *Config) {
	c.Hooks.OnRequest = func(bn string, class engine.Class, outcome Outcome, _ time.Duration) {
		l.mu.Lock()
		l.got = append(l.got, fmt.Sprintf("%s %s %s", bn, class, outcome))
		l.mu.Unlock()
	}
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.got
	l.got = nil
	return got
}

// TestBatchElementsServedAlone: each request of a batch is routed as if sent alone, in
// order, the answers come back in the same order with their ids, and each request is
// counted on its own.
func TestBatchElementsServedAlone(t *testing.T) {
	inBothModes(t, func(t *testing.T, roles []upstream.Role) {
		var log requestLog
		r := newRig(t, roles, log.hook)
		np1, fcu1 := newPayloadBody(`"np1"`, 1), forkchoiceBody(`"fcu1"`, 1, false)
		read := []byte(`{"jsonrpc":"2.0","id":"read","method":"eth_chainId","params":[]}`)
		code, body := r.post("lh", batchOf(np1, fcu1, read, []byte(`7`), []byte(`{"jsonrpc":"2.0","id":"nm"}`)))
		if code != http.StatusOK {
			t.Fatalf("HTTP %d %s", code, body)
		}
		as := decodeBatch(t, body)
		wantIDs := []string{`"np1"`, `"fcu1"`, `"read"`, `null`, `"nm"`}
		if len(as) != len(wantIDs) {
			t.Fatalf("%d answers, want %d: %s", len(as), len(wantIDs), body)
		}
		for i, a := range as {
			if string(a.ID) != wantIDs[i] {
				t.Errorf("answer %d has id %s, want %s", i, a.ID, wantIDs[i])
			}
		}
		direct := roles[0] == upstream.RolePrimary
		for i := range 3 {
			if i == 2 && !direct { // mirror mode refuses reads, alone or in a batch
				if as[i].Error == nil || as[i].Error.Code != engine.CodeMethodNotFound {
					t.Errorf("answer %d: %s, want error %d", i, body, engine.CodeMethodNotFound)
				}
				continue
			}
			if as[i].Error != nil || as[i].Result == nil {
				t.Errorf("answer %d: %s, want a result", i, body)
			}
		}
		for i := 3; i < 5; i++ {
			if as[i].Error == nil || as[i].Error.Code != engine.CodeInvalidRequest {
				t.Errorf("answer %d: %s, want error %d", i, body, engine.CodeInvalidRequest)
			}
		}
		readOutcome := "lh non-engine rejected"
		if direct {
			readOutcome = "lh non-engine answered"
		}
		if got, want := log.take(), []string{"lh new-payload forwarded", "lh forkchoice forwarded", readOutcome,
			"lh non-engine rejected", "lh non-engine rejected"}; !slices.Equal(got, want) {
			t.Errorf("requests counted %q, want %q", got, want)
		}
		r.waitIdle()
		for _, el := range r.els {
			var engineReqs []string
			for _, rec := range el.Requests() {
				switch rec.Class {
				case engine.ClassNewPayload:
					engineReqs = append(engineReqs, rec.ID)
					if rec.Size != len(np1) {
						t.Errorf("%s: newPayload of %d bytes, the batch element was %d", el.Name, rec.Size, len(np1))
					}
				case engine.ClassForkchoice:
					engineReqs = append(engineReqs, rec.ID)
					if rec.Size != len(fcu1) {
						t.Errorf("%s: forkchoiceUpdated of %d bytes, the batch element was %d", el.Name, rec.Size, len(fcu1))
					}
				}
			}
			if want := []string{`"np1"`, `"fcu1"`}; !slices.Equal(engineReqs, want) {
				t.Errorf("%s received %v, want %v in order", el.Name, engineReqs, want)
			}
		}
	})
}

// TestBatchWriterRules: a forkchoiceUpdated in a batch from a beacon node that is not the
// writer is filtered exactly as when sent alone; its newPayload is taken.
func TestBatchWriterRules(t *testing.T) {
	var log requestLog
	r := newRig(t, mirror3, log.hook)
	r.post("lh", newPayloadBody(`1`, 1))
	r.post("lh", forkchoiceBody(`2`, 1, false))
	r.waitIdle()
	log.take()
	code, body := r.post("teku", batchOf(newPayloadBody(`"np2"`, 2), forkchoiceBody(`"fcu2"`, 2, false)))
	if code != http.StatusOK || len(decodeBatch(t, body)) != 2 {
		t.Fatalf("HTTP %d %s", code, body)
	}
	if got, want := log.take(), []string{"teku new-payload forwarded", "teku forkchoice filtered"}; !slices.Equal(got, want) {
		t.Errorf("requests counted %q, want %q", got, want)
	}
	r.waitIdle()
	for _, el := range r.els {
		var got []string
		for _, rec := range el.Requests() {
			if !strings.HasPrefix(rec.ID, `"sync-proxy`) { // the proxy's own head probes
				got = append(got, rec.ID)
			}
		}
		if want := []string{`1`, `2`, `"np2"`}; !slices.Equal(got, want) {
			t.Errorf("%s received %v, want %v", el.Name, got, want)
		}
	}
}

// TestBatchRefused: a batch that cannot be served is answered as geth's engine port does,
// and nothing of it reaches an EL.
func TestBatchRefused(t *testing.T) {
	read := func(id int) []byte {
		return fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"eth_chainId","params":[]}`, id)
	}
	tooMany := make([][]byte, 0, engine.MaxBatch+1)
	tooMany = append(tooMany, []byte(`7`), []byte(`{"jsonrpc":"2.0","method":"eth_chainId"}`))
	for i := len(tooMany); i <= engine.MaxBatch; i++ {
		tooMany = append(tooMany, read(i))
	}
	for _, tc := range []struct {
		name    string
		body    []byte
		array   bool // the answer is an array of one error
		code    int
		id, msg string
	}{
		{"empty", []byte(`[]`), false, engine.CodeInvalidRequest, "null", "empty batch"},
		{"empty with whitespace", []byte(" [\n] "), false, engine.CodeInvalidRequest, "null", "empty batch"},
		{"broken", []byte(`[` + string(read(1)) + `,`), false, engine.CodeParseError, "null", ""},
		{"broken after good requests", []byte(`[` + string(newPayloadBody(`1`, 1)) + `,{]`), false, engine.CodeParseError, "null", ""},
		{"too deep", []byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)), false, engine.CodeInvalidRequest, "null", "nesting"},
		{"one more than geth takes", batchOf(tooMany...), true, engine.CodeInvalidRequest, "2", "batch too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, direct3)
			code, body := r.post("lh", tc.body)
			if code != http.StatusOK {
				t.Fatalf("HTTP %d %s", code, body)
			}
			var a rpcAnswer
			if tc.array {
				as := decodeBatch(t, body)
				if len(as) != 1 {
					t.Fatalf("%d answers, want one: %s", len(as), body)
				}
				a = as[0]
			} else {
				a = decode(t, body)
			}
			if a.Error == nil || a.Error.Code != tc.code || !strings.Contains(a.Error.Message, tc.msg) || string(a.ID) != tc.id {
				t.Fatalf("answer %s, want error %d %q with id %s", body, tc.code, tc.msg, tc.id)
			}
			if n := elRequests(r); n != 0 {
				t.Fatalf("a refused batch reached the ELs: %d requests", n)
			}
		})
	}
}

// TestBatchOneBodyLimit: the body limit is for the whole batch, not per request.
func TestBatchOneBodyLimit(t *testing.T) {
	r := newRig(t, direct3, withBodyLimit(badInputLimit))
	np := newPayloadBody(`1`, 1)
	var reqs [][]byte
	for len(reqs)*len(np) <= badInputLimit {
		reqs = append(reqs, np)
	}
	code, body := r.post("lh", batchOf(reqs...))
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("a batch over the body limit: HTTP %d %s, want 413", code, body)
	}
	code, body = r.post("lh", batchOf(reqs[:len(reqs)/2]...))
	if code != http.StatusOK || len(decodeBatch(t, body)) != len(reqs)/2 {
		t.Fatalf("a batch under the body limit: HTTP %d %.200s", code, body)
	}
}

// TestBatchAnswersBounded: once a batch's answers pass the bound, the requests left are
// answered -32003 and not routed.
func TestBatchAnswersBounded(t *testing.T) {
	r := newRig(t, direct3)
	r.p.batchMax = 10 // one answer passes it
	code, body := r.post("lh", batchOf(newPayloadBody(`"np1"`, 1), newPayloadBody(`"np2"`, 2), forkchoiceBody(`"f"`, 2, false)))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d %s", code, body)
	}
	as := decodeBatch(t, body)
	if len(as) != 3 || as[0].Result == nil || string(as[1].ID) != `"np2"` || string(as[2].ID) != `"f"` {
		t.Fatalf("answers %s", body)
	}
	for _, a := range as[1:] {
		if a.Error == nil || a.Error.Code != codeResponseTooLarge {
			t.Fatalf("answers %s: want %d after the first", body, codeResponseTooLarge)
		}
	}
	r.waitIdle()
	for _, el := range r.els {
		for _, rec := range el.Requests() {
			if rec.ID == `"np2"` || rec.ID == `"f"` {
				t.Errorf("%s received %s, answered as too large", el.Name, rec.ID)
			}
		}
	}
}

// TestBatchRoutedWhenTheBeaconNodeLeaves: a batch is taken whole once read, as a request sent
// alone is: when its beacon node hangs up while a direct-mode answer is awaited, the requests
// after it still reach every EL (the blocks are not lost), and nothing is written back.
func TestBatchRoutedWhenTheBeaconNodeLeaves(t *testing.T) {
	var log requestLog
	r := newRig(t, direct3, log.hook)
	r.els[0].Set(fakeel.Slow, 2*time.Second) // the primary: its answer is awaited
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := batchOf(newPayloadBody(`"np1"`, 1), newPayloadBody(`"np2"`, 2), forkchoiceBody(`"f2"`, 2, false))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.srv.URL+"/bn/lh", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := r.srv.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	if !r.els[0].WaitFor(1, 10*time.Second) {
		t.Fatal("the primary never received the first block")
	}
	cancel() // the beacon node hangs up while the proxy awaits the primary's answer
	if err := <-done; err == nil {
		t.Fatal("the request completed although it was cancelled")
	}
	r.els[0].Set(fakeel.Normal, 0) // the rest drains at once
	r.waitIdle()
	for _, el := range r.els {
		if got, want := requestIDs(el, engine.ClassNewPayload), []string{`"np1"`, `"np2"`}; !slices.Equal(got, want) {
			t.Errorf("%s received blocks %v, want %v", el.Name, got, want)
		}
		if got := requestIDs(el, engine.ClassForkchoice); !slices.Contains(got, `"f2"`) {
			t.Errorf("%s received head updates %v, want the batch's \"f2\"", el.Name, got)
		}
	}
}

// TestBatchBurstPastAHungPrimary: a range-syncing burst sent as one batch (64 blocks, each
// with its head update) in direct mode, with the primary hung and a follower slow: the batch
// is answered in the failover delay, not 64 of them, every answer in order and from an EL,
// and each live EL gets every block in order.
func TestBatchBurstPastAHungPrimary(t *testing.T) {
	const blocks = 64
	r := newRig(t, direct3)
	r.els[0].Set(fakeel.Hang, 0)
	r.els[2].Set(fakeel.Slow, 20*time.Millisecond)
	var reqs [][]byte
	for n := uint64(1); n <= blocks; n++ {
		reqs = append(reqs, newPayloadBody(fmt.Sprintf(`"np%d"`, n), n), forkchoiceBody(fmt.Sprintf(`"f%d"`, n), n, false))
	}
	body := batchOf(reqs...)
	if !bodies.Pooled(int64(len(body))) {
		t.Fatalf("the batch (%d bytes) should come from the body pool", len(body))
	}
	start := time.Now()
	code, answer := r.post("lh", body)
	took := time.Since(start)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d %.300s", code, answer)
	}
	if took > 5*time.Second {
		t.Errorf("the batch was answered after %v: its requests waited for the hung primary one by one", took)
	}
	as := decodeBatch(t, answer)
	if len(as) != 2*blocks {
		t.Fatalf("%d answers, want %d", len(as), 2*blocks)
	}
	for i, a := range as {
		n, kind := i/2+1, "np"
		if i%2 == 1 {
			kind = "f"
		}
		if want := fmt.Sprintf(`"%s%d"`, kind, n); string(a.ID) != want || a.Error != nil {
			t.Fatalf("answer %d: id %s error %v, want %s answered", i, a.ID, a.Error, want)
		}
	}
	var want []string
	for n := 1; n <= blocks; n++ {
		want = append(want, fmt.Sprintf(`"np%d"`, n))
	}
	for _, el := range r.els[1:] {
		el.WaitUntil(func(got []fakeel.Received) bool {
			return len(got) > 0 && got[len(got)-1].Class == engine.ClassForkchoice && got[len(got)-1].Head == blockHash(blocks)
		}, 10*time.Second)
		if got := requestIDs(el, engine.ClassNewPayload); !slices.Equal(got, want) {
			t.Errorf("%s received blocks %v, want all %d in order", el.Name, got, blocks)
		}
	}
}
