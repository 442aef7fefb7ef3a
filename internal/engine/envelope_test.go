package engine

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestEnvelopes(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"result", ResultResponse(json.RawMessage("7"), json.RawMessage(`["0x1"]`)),
			`{"jsonrpc":"2.0","id":7,"result":["0x1"]}`},
		{"result nil id and result", ResultResponse(nil, nil),
			`{"jsonrpc":"2.0","id":null,"result":null}`},
		{"result string id", ResultResponse(json.RawMessage(`"np0"`), json.RawMessage(`true`)),
			`{"jsonrpc":"2.0","id":"np0","result":true}`},
		{"error", ErrorResponse(json.RawMessage("1"), &Error{Code: CodeInvalidParams, Message: `bad "params" <x>`}),
			`{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad \"params\" \u003cx\u003e"}}`},
		{"error nil id", ErrorResponse(nil, &Error{Code: CodeParseError, Message: "parse error"}),
			`{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}`},
		{"error nil error", ErrorResponse(json.RawMessage("2"), nil),
			`{"jsonrpc":"2.0","id":2,"error":{"code":-32603,"message":"internal error"}}`},
		{"syncing payload status", SyncingPayloadStatus(json.RawMessage(`"np1"`)),
			`{"jsonrpc":"2.0","id":"np1","result":{"status":"SYNCING","latestValidHash":null,"validationError":null}}`},
		{"syncing forkchoice", SyncingForkchoice(json.RawMessage("3")),
			`{"jsonrpc":"2.0","id":3,"result":{"payloadStatus":{"status":"SYNCING","latestValidHash":null,"validationError":null},"payloadId":null}}`},
		{"syncing forkchoice null id", SyncingForkchoice(nil),
			`{"jsonrpc":"2.0","id":null,"result":{"payloadStatus":{"status":"SYNCING","latestValidHash":null,"validationError":null},"payloadId":null}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if string(c.got) != c.want {
				t.Errorf("got  %s\nwant %s", c.got, c.want)
			}
			if !json.Valid(c.got) {
				t.Errorf("not valid JSON: %s", c.got)
			}
		})
	}
	// The proxy's own answers are understood by InspectResponse.
	r, err := InspectResponse(ClassForkchoice, SyncingForkchoice(json.RawMessage("3")))
	if err != nil || r.Status != StatusSyncing || r.PayloadID != "" || string(r.ID) != "3" {
		t.Errorf("InspectResponse(SyncingForkchoice) = %+v, %v", r, err)
	}
	r, err = InspectResponse(ClassNewPayload, SyncingPayloadStatus(nil))
	if err != nil || r.Status != StatusSyncing || string(r.ID) != "null" {
		t.Errorf("InspectResponse(SyncingPayloadStatus) = %+v, %v", r, err)
	}
}

func TestErrorJSON(t *testing.T) {
	e := &Error{Code: CodeUnknownPayload, Message: "unknown payload"}
	b, err := json.Marshal(e)
	if err != nil || string(b) != `{"code":-38001,"message":"unknown payload"}` {
		t.Errorf("json.Marshal(*Error) = %s, %v", b, err)
	}
	if got := e.Error(); got != "json-rpc error -38001: unknown payload" {
		t.Errorf("Error() = %q", got)
	}
	if got := Errorf(CodeTooLargeRequest, "%d hashes", 200); got.Code != CodeTooLargeRequest || got.Message != "200 hashes" {
		t.Errorf("Errorf = %+v", got)
	}
}

func TestWithID(t *testing.T) {
	result := `{"payloadStatus":{"status":"VALID","latestValidHash":"` + tHash + `","validationError":null},"payloadId":"` + tPID + `"}`
	cases := []struct {
		name string
		body string
		id   string
		want string
	}{
		{"number to string", `{"jsonrpc":"2.0","id":1,"result":` + result + `}`, `"fcu600"`,
			`{"jsonrpc":"2.0","id":"fcu600","result":` + result + `}`},
		{"string to number", `{"jsonrpc":"2.0","id":"np0","result":{"status":"SYNCING"}}`, `12345678901234567890`,
			`{"jsonrpc":"2.0","id":12345678901234567890,"result":{"status":"SYNCING"}}`},
		{"to null", `{"jsonrpc":"2.0","id":1,"result":null}`, ``,
			`{"jsonrpc":"2.0","id":null,"result":null}`},
		{"id last, whitespace kept", "{ \"result\" : [ 1 ] ,\n \"id\" : 9 }", `10`,
			"{ \"result\" : [ 1 ] ,\n \"id\" : 10 }"},
		{"id in nested object untouched", `{"result":{"id":1},"id":2}`, `3`,
			`{"result":{"id":1},"id":3}`},
		{"no id member", `{"jsonrpc":"2.0","result":1}`, `4`,
			`{"id":4,"jsonrpc":"2.0","result":1}`},
		{"empty object", `{ }`, `5`,
			`{"id":5 }`},
		{"error response", `{"jsonrpc":"2.0","id":1,"error":{"code":-38001,"message":"Unknown payload"}}`, `"gp"`,
			`{"jsonrpc":"2.0","id":"gp","error":{"code":-38001,"message":"Unknown payload"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := WithID([]byte(c.body), json.RawMessage(c.id))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	t.Run("large result is copied, not re-encoded", func(t *testing.T) {
		res := `{"blobs":["0x` + strings.Repeat("0a", 131072) + `"],"x":1.50}`
		got, err := WithID([]byte(`{"jsonrpc":"2.0","id":1,"result":`+res+`}`), json.RawMessage(`"b"`))
		if err != nil {
			t.Fatal(err)
		}
		r, err := InspectResponse(ClassRead, got)
		if err != nil || string(r.Result) != res || string(r.ID) != `"b"` {
			t.Errorf("result or id changed: %v", err)
		}
	})
}

func TestWithIDErrors(t *testing.T) {
	cases := []struct {
		name, body, id string
		code           int
	}{
		{"not json", `nope`, `1`, CodeParseError},
		{"truncated", `{"id":1,"result":[`, `1`, CodeParseError},
		{"array", `[{"id":1}]`, `1`, CodeInvalidRequest},
		{"duplicate id", `{"id":1,"id":2,"result":1}`, `1`, CodeInvalidRequest},
		{"case variant id", `{"ID":1,"result":1}`, `1`, CodeInvalidRequest},
		{"new id object", `{"id":1,"result":1}`, `{}`, CodeInvalidRequest},
		{"new id two values", `{"id":1,"result":1}`, `1 2`, CodeInvalidRequest},
		{"new id bad string", `{"id":1,"result":1}`, `"a`, CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := WithID([]byte(c.body), json.RawMessage(c.id))
			if err == nil {
				t.Fatalf("WithID = %s, want error", got)
			}
			if code := codeOf(t, err); code != c.code {
				t.Errorf("code = %d (%v), want %d", code, err, c.code)
			}
		})
	}
}

func TestWithoutAttributes(t *testing.T) {
	state := `{"headBlockHash":"` + tHash + `","safeBlockHash":"` + tSafe + `","finalizedBlockHash":"` + tFinal + `"}`
	cases := []struct {
		name, body, want string
		same             bool // body returned unchanged
	}{
		{"attributes replaced",
			`{"jsonrpc":"2.0","id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,` + attributesObject(3) + `]}`,
			`{"jsonrpc":"2.0","id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,null]}`, false},
		{"V4 custody columns kept, whitespace kept",
			`{"id":1,"params":[ ` + state + ` , {"timestamp":"0x1"} , "0xffff" ],"method":"engine_forkchoiceUpdatedV4"}`,
			`{"id":1,"params":[ ` + state + ` , null , "0xffff" ],"method":"engine_forkchoiceUpdatedV4"}`, false},
		{"already null", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,null]}`,
			`{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,null]}`, true},
		{"absent", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `]}`,
			`{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `]}`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := WithoutAttributes([]byte(c.body))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			r, err := Inspect(got)
			if err != nil || r.HasAttributes || r.Forkchoice.Head != mustHash(t, tHash) {
				t.Errorf("Inspect(result) = %+v, %v", r, err)
			}
		})
	}
	t.Run("fixture", func(t *testing.T) {
		body := readFixture(t, "forkchoiceUpdatedV3.json")
		got, err := WithoutAttributes(body)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(body), `,{"timestamp"`)
		if i < 0 || string(got[:i]) != string(body[:i]) || string(got[i:]) != ",null]}\n" {
			t.Errorf("unexpected rewrite: %s", got)
		}
	})
	errs := []struct {
		name, body string
		code       int
	}{
		{"not json", `{"params":[`, CodeParseError},
		{"not object", `[1]`, CodeInvalidRequest},
		{"no params", `{"id":1,"method":"engine_forkchoiceUpdatedV3"}`, CodeInvalidParams},
		{"params object", `{"id":1,"params":{}}`, CodeInvalidParams},
		{"duplicate params", `{"params":[],"params":[]}`, CodeInvalidRequest},
	}
	for _, c := range errs {
		t.Run(c.name, func(t *testing.T) {
			_, err := WithoutAttributes([]byte(c.body))
			if err == nil {
				t.Fatal("want error")
			}
			if code := codeOf(t, err); code != c.code {
				t.Errorf("code = %d (%v), want %d", code, err, c.code)
			}
		})
	}
}
