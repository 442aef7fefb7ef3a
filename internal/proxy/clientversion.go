package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"

	"github.com/sync-proxy/sync-proxy/internal/engine"
	"github.com/sync-proxy/sync-proxy/internal/upstream"
)

// clientVersion answers engine_getClientVersionV1 as the spec requires of a multiplexer
// (execution-apis identification.md): the ELs' answers concatenated into one flat array,
// the primary's first, then the other ELs' in configuration order (relays are not ELs).
// The beacon node's own ClientVersionV1 is forwarded to every EL as it came. An EL that
// fails, answers with an error or with something that is not an array of objects, or has
// not answered within fanOutWait, is left out; sync-proxy adds no entry of its own (it
// would distort client-diversity data). When no EL answers, the beacon node gets an error.
func (p *Proxy) clientVersion(ctx context.Context, d *upstream.Delivery) ([]byte, Outcome) {
	var order []int
	if p.primary >= 0 {
		order = append(order, p.primary)
	}
	for i, l := range p.lanes {
		if i != p.primary && l.Role() != upstream.RoleRelay {
			order = append(order, i)
		}
	}
	fctx, cancel := context.WithTimeout(ctx, fanOutWait)
	defer cancel()
	parts := make([][]json.RawMessage, len(order))
	failures := make([]string, len(order))
	var wg sync.WaitGroup
	for k, i := range order {
		wg.Go(func() {
			l := p.lanes[i]
			res := l.Call(fctx, d)
			switch {
			case !res.OK():
				failures[k] = l.Name() + ": " + res.Err.Error()
			case res.Resp.Err != nil:
				failures[k] = l.Name() + ": " + res.Resp.Err.Error()
			default:
				v, err := versionList(res.Resp.Result)
				if err != nil {
					failures[k] = l.Name() + ": " + err.Error()
					return
				}
				parts[k] = v
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil { // the beacon node went away
		return nil, OutcomeFailed
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	n := 0
	var failed []string
	for k := range order {
		if parts[k] == nil {
			failed = append(failed, failures[k])
			continue
		}
		for _, v := range parts[k] {
			if n > 0 {
				buf.WriteByte(',')
			}
			buf.Write(v)
			n++
		}
	}
	buf.WriteByte(']')
	if n == 0 {
		return noAnswer(d, failed), OutcomeFailed
	}
	if len(failed) > 0 {
		p.log.Debug("engine_getClientVersionV1: execution clients left out", "failures", failed)
	}
	return engine.ResultResponse(d.Req.ID, buf.Bytes()), OutcomeAnswered
}

// versionList splits a getClientVersionV1 result into its elements, each a JSON object.
func versionList(result json.RawMessage) ([]json.RawMessage, error) {
	var list []json.RawMessage
	if err := json.Unmarshal(result, &list); err != nil || list == nil {
		return nil, errString("result is not an array of ClientVersionV1")
	}
	for _, v := range list {
		if t := bytes.TrimSpace(v); len(t) == 0 || t[0] != '{' {
			return nil, errString("result is not an array of ClientVersionV1")
		}
	}
	if len(list) == 0 {
		return nil, errString("result is an empty array")
	}
	return list, nil
}
