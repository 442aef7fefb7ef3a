package upstream

import (
	"bytes"
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/fakeel"
)

// deadlineRecorder is a transport that notes how long each request had left when it left.
type deadlineRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	left []time.Duration
}

func (d *deadlineRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	dl, ok := req.Context().Deadline()
	d.mu.Lock()
	if ok {
		d.left = append(d.left, time.Until(dl))
	} else {
		d.left = append(d.left, -1)
	}
	d.mu.Unlock()
	return d.next.RoundTrip(req)
}

func (d *deadlineRecorder) last() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.left[len(d.left)-1]
}

// TestSpecTimeouts: each request to an EL carries the spec's timeout for its method and
// version (execution-apis, "timeout" lines): newPayloadV1–V4 8 s, V5 (Amsterdam) and V6
// (Bogota) 6 s, the payload being due 6 s into the slot; forkchoiceUpdated 8 s, V4 and V5
// included; getPayload, getInclusionListV1 1 s; payload bodies 10 s.
func TestSpecTimeouts(t *testing.T) {
	el := fakeel.New("el", nil)
	defer el.Close()
	rec := &deadlineRecorder{next: http.DefaultTransport}
	l := startLane(t, Config{Name: "el", URL: el.URL(), Transport: rec})
	retarget := func(d *Delivery, from, to string) *Delivery {
		return delivery(t, bytes.Replace(d.Body, []byte(from), []byte(to), 1))
	}
	np := func(method string) *Delivery { return retarget(npDelivery(t, 1), "engine_newPayloadV3", method) }
	fcu := func(method string) *Delivery {
		return retarget(fcuDelivery(t, "f", 1, false), "engine_forkchoiceUpdatedV3", method)
	}
	call := func(method, params string) *Delivery {
		return delivery(t, []byte(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+params+`}`))
	}
	cases := []struct {
		d    *Delivery
		want time.Duration
	}{
		{np("engine_newPayloadV3"), 8 * time.Second},
		{np("engine_newPayloadV4"), 8 * time.Second},
		{np("engine_newPayloadV5"), 6 * time.Second},
		{np("engine_newPayloadV6"), 6 * time.Second},
		{fcu("engine_forkchoiceUpdatedV3"), 8 * time.Second},
		{fcu("engine_forkchoiceUpdatedV4"), 8 * time.Second},
		{fcu("engine_forkchoiceUpdatedV5"), 8 * time.Second},
		{call("engine_getPayloadV6", `["0x0000000000000001"]`), time.Second},
		{call("engine_getInclusionListV1", `["0x01"]`), time.Second},
		{call("engine_getPayloadBodiesByRangeV2", `["0x1","0x2"]`), 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.d.Req.Method, func(t *testing.T) {
			if res := l.Call(context.Background(), c.d); res.Err != nil {
				t.Fatalf("call: %v", res.Err)
			}
			// The time between setting the deadline and the request leaving is small
			// but not zero (more under -race on a busy machine).
			if left := rec.last(); left > c.want || left < c.want-500*time.Millisecond {
				t.Errorf("request left with %v to its deadline, want the spec's %v", left, c.want)
			}
		})
	}
}
