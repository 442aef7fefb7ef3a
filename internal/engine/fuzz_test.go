package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fuzzSeeds returns request bodies covering every branch of Inspect.
func fuzzSeeds(t testing.TB) [][]byte {
	seeds := [][]byte{
		readFixture(t, "newPayloadV4.json"),
		readFixture(t, "newPayloadV5.json"),
		readFixture(t, "forkchoiceUpdatedV3.json"),
		request(`"np0"`, MethodNewPayloadV1, newPayloadParams(1)),
		request("-1", MethodNewPayloadV6, newPayloadParams(6)),
		request("null", MethodForkchoiceUpdatedV4, forkchoiceParams(4, "object")),
		request("", MethodForkchoiceUpdatedV1, forkchoiceParams(1, "absent")),
		request("1e3", MethodGetPayloadV5, `["`+tPID+`"]`),
		request("2", MethodExchangeCapabilities, `[["engine_newPayloadV4"]]`),
		request("3", "eth_getBlockByNumber", `["latest",false]`),
		[]byte(`{"params":["` + tPID + `"],"method":"engine_getPayloadV4","id":"x"}`),
		[]byte(`{"jsonrpc":"2\u002e0","\u0069d":1,"me\u0074hod":"engine_getPayload\u00562","params":["` + tPID + `"]}`),
		[]byte(`{"id":1,"method":"eth_chainId","Method":"engine_forkchoiceUpdatedV3"}`),
		[]byte(`{"id":1,"method":"eth_chainId","paramſ":[]}`),
		[]byte(`{"id":1,"method":"eth_chainId","method":"x"}`),
		[]byte(`{"id":"a\"b\\","method":"eth_\u00e9","params":[["\\\"",{"k":[1.5e-3,true,false,null]}]]}`),
		[]byte(`[{"id":1,"method":"eth_chainId"}]`),
		[]byte(`{"id":{},"method":"eth_chainId"}`),
		[]byte(`{"id":1,"method":"engine_newPayloadV1","params":[{"blockHash":"0x1"}]}`),
		[]byte(`{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[{},"x"]}`),
		[]byte("{\"id\":1,\"method\":\"eth_\x01\"}"),
		[]byte(`{"id":01}`),
		[]byte(`{"id":1,"method":"eth_call","params":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`),
		[]byte(`{"id":1,"method":"eth_call"} x`),
		[]byte(`{"method":"\ud800"}`),
		[]byte("{\"method\":\"\xff\"}"),
		[]byte(``),
		[]byte(`null`),
		[]byte(`"`),
		[]byte(`{"a":"\\`),
	}
	return seeds
}

// jsonView is what encoding/json (geth's decoder) sees in a request.
type jsonView struct {
	Method string            `json:"method"`
	ID     json.RawMessage   `json:"id"`
	Params []json.RawMessage `json:"params"`
}

func FuzzInspect(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := Inspect(body)
		valid := json.Valid(body)
		if err != nil {
			requireScanError(t, err, valid, body)
			return
		}
		if r.Class != Classify(r.Method) || r.Version != MethodVersion(r.Method) {
			t.Fatalf("class/version inconsistent with method: %+v", r)
		}
		if !valid {
			return // only skipped strings may be malformed; nothing to compare with
		}
		var v jsonView
		if err := json.Unmarshal(body, &v); err != nil {
			// Params may not be an array for unrouted methods.
			var loose struct {
				Method string          `json:"method"`
				ID     json.RawMessage `json:"id"`
			}
			if err := json.Unmarshal(body, &loose); err != nil {
				t.Fatalf("Inspect accepted what encoding/json rejects: %v\n%q", err, body)
			}
			v.Method, v.ID = loose.Method, loose.ID
			if r.Class.hasParams() {
				t.Fatalf("routed params are not an array for encoding/json: %q", body)
			}
		}
		if v.Method != r.Method {
			t.Fatalf("method = %q, encoding/json sees %q", r.Method, v.Method)
		}
		if !bytes.Equal(v.ID, r.ID) || (v.ID == nil) != (r.ID == nil) {
			t.Fatalf("id = %q, encoding/json sees %q", r.ID, v.ID)
		}
		checkRoutingFields(t, r, v.Params)
		if r.Class.hasParams() {
			var ps []json.RawMessage
			if err := json.Unmarshal(r.Params, &ps); err != nil || len(ps) != len(v.Params) {
				t.Fatalf("params %q are not the %d params encoding/json sees: %v", r.Params, len(v.Params), err)
			}
		}
	})
}

// checkRoutingFields compares the routing fields with encoding/json's view of
// the params.
func checkRoutingFields(t *testing.T, r Request, params []json.RawMessage) {
	t.Helper()
	hash := func(s string) Hash {
		h, err := ParseHash(s)
		if err != nil {
			t.Fatalf("encoding/json sees hash %q: %v", s, err)
		}
		return h
	}
	qty := func(s string) uint64 {
		n, ok := parseQuantity([]byte(s))
		if !ok {
			t.Fatalf("encoding/json sees quantity %q", s)
		}
		return n
	}
	switch r.Class {
	case ClassNewPayload:
		var p struct {
			BlockHash, ParentHash, BlockNumber, Timestamp string
			SlotNumber                                    *string
		}
		if err := json.Unmarshal(params[0], &p); err != nil {
			t.Fatal(err)
		}
		want := Block{Hash: hash(p.BlockHash), Parent: hash(p.ParentHash), Number: qty(p.BlockNumber), Timestamp: qty(p.Timestamp)}
		if p.SlotNumber != nil {
			want.Slot, want.HasSlot = qty(*p.SlotNumber), true
		}
		if r.Block != want {
			t.Fatalf("block = %+v, encoding/json sees %+v", r.Block, want)
		}
	case ClassForkchoice:
		var s struct{ HeadBlockHash, SafeBlockHash, FinalizedBlockHash string }
		if err := json.Unmarshal(params[0], &s); err != nil {
			t.Fatal(err)
		}
		want := ForkchoiceState{Head: hash(s.HeadBlockHash), Safe: hash(s.SafeBlockHash), Finalized: hash(s.FinalizedBlockHash)}
		if r.Forkchoice != want {
			t.Fatalf("forkchoice = %+v, encoding/json sees %+v", r.Forkchoice, want)
		}
		var a *struct {
			Timestamp  string
			SlotNumber *string
		}
		if len(params) > 1 {
			if err := json.Unmarshal(params[1], &a); err != nil {
				t.Fatal(err)
			}
		}
		if (a != nil) != r.HasAttributes || (a != nil && qty(a.Timestamp) != r.AttributesTimestamp) {
			t.Fatalf("attributes = %v/%d, encoding/json sees %+v", r.HasAttributes, r.AttributesTimestamp, a)
		}
	case ClassGetPayload:
		var id string
		if err := json.Unmarshal(params[0], &id); err != nil || id != r.PayloadID {
			t.Fatalf("payload id = %q, encoding/json sees %q (%v)", r.PayloadID, id, err)
		}
	}
}

func FuzzInspectResponse(f *testing.F) {
	seeds := []struct {
		class Class
		body  string
	}{
		{ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":{"status":"VALID","latestValidHash":"` + tHash + `","validationError":null}}`},
		{ClassNewPayload, `{"jsonrpc":"2.0","id":"np0","result":{"status":"SYNCING","latestValidHash":null,"validationError":null}}`},
		{ClassForkchoice, string(readFixture(f, "forkchoiceUpdatedV3.response.json"))},
		{ClassGetPayload, string(readFixture(f, "getPayloadV4.response.json"))},
		{ClassRead, `{"jsonrpc":"2.0","id":1,"error":{"code":-38001,"message":"Unknown payload","data":null}}`},
		{ClassRead, `{"jsonrpc":"2.0","id":1,"result":null}`},
		{ClassNewPayload, `{"id":1,"result":{"status":"\u0056ALID","Status":"x"}}`},
		{ClassForkchoice, `{"id":1,"result":{"payloadStatus":{"status":"VALID"},"payloadId":"\u0030x1"}}`},
		{ClassRead, `<html>`},
		{ClassRead, ``},
	}
	for _, s := range seeds {
		f.Add(uint8(s.class), []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, class uint8, body []byte) {
		c := Class(class % 5)
		r, err := InspectResponse(c, body)
		valid := json.Valid(body)
		if err != nil {
			requireScanError(t, err, valid, body)
			return
		}
		if !valid {
			return
		}
		var v struct {
			ID     json.RawMessage `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *Error          `json:"error"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("InspectResponse accepted what encoding/json rejects: %v\n%q", err, body)
		}
		if !bytes.Equal(v.ID, r.ID) {
			t.Fatalf("id = %q, encoding/json sees %q", r.ID, v.ID)
		}
		if !bytes.Equal(v.Result, r.Result) {
			t.Fatalf("result = %q, encoding/json sees %q", r.Result, v.Result)
		}
		if !reflect.DeepEqual(v.Error, r.Err) {
			t.Fatalf("error = %+v, encoding/json sees %+v", r.Err, v.Error)
		}
		if r.Err == nil && c == ClassNewPayload {
			var s struct{ Status string }
			if err := json.Unmarshal(v.Result, &s); err != nil || Status(s.Status) != r.Status {
				t.Fatalf("status = %q, encoding/json sees %q (%v)", r.Status, s.Status, err)
			}
		}
	})
}

func FuzzWithID(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"status":"VALID"}}`), []byte(`"np0"`))
	f.Add([]byte(`{"jsonrpc":"2.0","result":null}`), []byte(`7`))
	f.Add([]byte(`{ }`), []byte(``))
	f.Add([]byte(`{"id":"x","error":{"code":-1,"message":"m"}}`), []byte(`null`))
	f.Add(readFixture(f, "getPayloadV4.response.json"), []byte(`-12.5e3`))
	f.Add([]byte(`{"ID":1}`), []byte(`1`))
	f.Add([]byte(`[1]`), []byte(`1`))
	f.Fuzz(func(t *testing.T, body, id []byte) {
		out, err := WithID(body, id)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, not *Error", err, err)
			}
			return
		}
		if !json.Valid(body) {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("WithID(%q, %q) = %q, not valid JSON", body, id, out)
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal(body, &before); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatal(err)
		}
		wantID := bytes.TrimSpace(id)
		if len(wantID) == 0 {
			wantID = []byte("null")
		}
		if !bytes.Equal(after["id"], wantID) {
			t.Fatalf("id = %q, want %q", after["id"], wantID)
		}
		delete(before, "id")
		delete(after, "id")
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("other members changed:\n%q\n%q", body, out)
		}
	})
}

// requireScanError checks an error from a function that scans a body: an *Error, and never a
// parse error for valid JSON (valid is json.Valid(body)).
func requireScanError(t *testing.T, err error, valid bool, body []byte) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is %T, not *Error", err, err)
	}
	if valid && e.Code == CodeParseError {
		t.Fatalf("valid JSON reported as a parse error: %v\n%q", err, body)
	}
}
