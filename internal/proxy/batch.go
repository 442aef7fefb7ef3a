package proxy

import (
	"errors"
	"net/http"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/bodies"
	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// maxBatchAnswerBytes bounds the answers a batch collects before it is written: once they
// pass it, the requests not yet served are answered with CodeResponseTooLarge and not
// routed, as geth does past its BatchResponseMaxSize. It is the bound an EL's answer to one
// request has (upstream.Config.MaxResponseBytes' default), so a batch can never hold more
// than about twice what one request may.
const maxBatchAnswerBytes = 256 << 20

// codeResponseTooLarge is geth's code for a batch whose answers grew past its bound.
const codeResponseTooLarge = -32003

// serveBatch answers a JSON-RPC batch (body is an array) the way geth's engine port does:
// each element is served as a request of its own, in order, through the same routing as a
// request sent alone (an Engine write in a batch follows the writer's rules), and the
// answers come back in one array, in the same order. The whole batch was read under the
// one body limit. An empty or malformed batch gets one error object; a batch of more than
// engine.MaxBatch requests gets one error, addressed to its first request.
func (p *Proxy) serveBatch(w http.ResponseWriter, r *http.Request, id Identity, body []byte, pooled bool) {
	start := time.Now()
	// Each request is copied out of the batch (own), so its buffer is free again at the end.
	if pooled {
		defer p.bodies.Put(body)
	}
	elems, n, err := engine.SplitBatch(body, engine.MaxBatch)
	if err != nil {
		p.report(r.Context(), start, id.Name, id.Source, engine.ClassNonEngine, "batch", OutcomeRejected)
		var ee *engine.Error
		if !errors.As(err, &ee) {
			ee = &engine.Error{Code: engine.CodeInternalError, Message: err.Error()}
		}
		writeJSON(w, engine.ErrorResponse(nil, ee))
		return
	}
	if n > engine.MaxBatch {
		p.report(r.Context(), start, id.Name, id.Source, engine.ClassNonEngine, "batch", OutcomeRejected)
		var first []byte
		for _, e := range elems {
			if req, err := engine.Inspect(e); err == nil && req.ID != nil {
				first = req.ID
				break
			}
		}
		answer := engine.ErrorResponse(first, engine.Errorf(engine.CodeInvalidRequest, "batch too large"))
		writeJSON(w, append(append([]byte{'['}, answer...), ']'))
		return
	}
	// Every request is routed even when the beacon node has gone (r's context is done), as
	// one sent alone is once read: the blocks and head updates of a batch are not lost with
	// its connection. Only the answer is then not written.
	out := make([]byte, 1, 256*len(elems))
	out[0] = '['
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		if len(out) > p.batchMax {
			req, _ := engine.Inspect(e)
			out = append(out, engine.ErrorResponse(req.ID, engine.Errorf(codeResponseTooLarge, "response too large"))...)
			p.report(r.Context(), time.Now(), id.Name, id.Source, req.Class, req.Method, OutcomeRejected)
			continue
		}
		began := time.Now()
		own, pooled := p.own(e)
		class, method, outcome := p.serveOne(r, own, pooled, id.Name, func(answer []byte) {
			out = append(out, answer...)
		})
		p.report(r.Context(), began, id.Name, id.Source, class, method, outcome)
	}
	if r.Context().Err() == nil {
		writeJSON(w, append(out, ']'))
	}
}

// own copies one element of a batch into a body of its own (pooled when large), so that
// every request the lanes hold owns exactly its bytes and the batch's buffer can be reused.
// A sub-slice would pin the whole batch while the backlog budget and the recent blocks,
// which count a body by its capacity, counted only its part: the copy keeps them honest.
func (p *Proxy) own(e []byte) (b []byte, pooled bool) {
	pooled = bodies.Pooled(int64(len(e)))
	if pooled {
		b = p.bodies.Get(len(e))
	} else {
		b = make([]byte, len(e))
	}
	copy(b, e)
	return b, pooled
}
