package engine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestInspectMethods(t *testing.T) {
	wantBlock := func(slot bool) Block {
		b := Block{Hash: mustHash(t, tHash), Parent: mustHash(t, tParent), Number: tNumber, Timestamp: tTime}
		if slot {
			b.Slot, b.HasSlot = tSlot, true
		}
		return b
	}
	wantFC := ForkchoiceState{Head: mustHash(t, tHash), Safe: mustHash(t, tSafe), Finalized: mustHash(t, tFinal)}

	type tc struct {
		name string
		body []byte
		want Request
	}
	var cases []tc
	for v := 1; v <= 6; v++ {
		m := fmt.Sprintf("engine_newPayloadV%d", v)
		cases = append(cases, tc{name: m, body: request("1", m, newPayloadParams(v)), want: Request{
			Method: m, Version: v, ID: []byte("1"), Class: ClassNewPayload, Block: wantBlock(v >= 5),
		}})
	}
	for v := 1; v <= 5; v++ {
		m := fmt.Sprintf("engine_forkchoiceUpdatedV%d", v)
		with := Request{Method: m, Version: v, ID: []byte("2"), Class: ClassForkchoice, Forkchoice: wantFC,
			HasAttributes: true, AttributesTimestamp: tTime + 12}
		if v >= 4 {
			with.AttributesSlot, with.HasAttributesSlot = tSlot+1, true
		}
		without := Request{Method: m, Version: v, ID: []byte("2"), Class: ClassForkchoice, Forkchoice: wantFC}
		cases = append(cases,
			tc{name: m + "/attributes", body: request("2", m, forkchoiceParams(v, "object")), want: with},
			tc{name: m + "/null", body: request("2", m, forkchoiceParams(v, "null")), want: without},
			tc{name: m + "/absent", body: request("2", m, forkchoiceParams(v, "absent")), want: without},
		)
	}
	for v := 1; v <= 6; v++ {
		m := fmt.Sprintf("engine_getPayloadV%d", v)
		cases = append(cases, tc{name: m, body: request(`"gp"`, m, `["`+tPID+`"]`), want: Request{
			Method: m, Version: v, ID: []byte(`"gp"`), Class: ClassGetPayload, PayloadID: tPID,
		}})
	}
	reads := []struct{ method, params string }{
		{MethodGetPayloadBodiesByHashV1, `[["` + tHash + `"]]`},
		{MethodGetPayloadBodiesByHashV2, `[["` + tHash + `"]]`},
		{MethodGetPayloadBodiesByRangeV1, `["0x10","0x20"]`},
		{MethodGetPayloadBodiesByRangeV2, `["0x10","0x20"]`},
		{MethodGetBlobsV1, `[["0x01` + strings.Repeat("ab", 31) + `"]]`},
		{MethodGetBlobsV2, `[["0x01` + strings.Repeat("ab", 31) + `"]]`},
		{MethodGetBlobsV3, `[["0x01` + strings.Repeat("ab", 31) + `"]]`},
		{MethodGetBlobsV4, `[["0x01` + strings.Repeat("ab", 31) + `"],"0x000000000000000000000000000000ff"]`},
		{MethodExchangeCapabilities, `[["engine_newPayloadV4","engine_forkchoiceUpdatedV3"]]`},
		{MethodGetClientVersionV1, `[{"code":"LH","name":"Lighthouse","version":"v8.0.0","commit":"0xa1b2c3d4"}]`},
		{MethodExchangeTransitionConfigurationV1, `[{"terminalTotalDifficulty":"0xc70d808a128d7380000","terminalBlockHash":"` + tHash + `","terminalBlockNumber":"0x0"}]`},
		{MethodGetInclusionListV1, `[]`},
		{"engine_executeStatelessPayloadV4", `[{}]`},
		{"engine_hasBlobs", `[[]]`},
		{"engine_somethingNewV1", `{"named":"params"}`},
		{"engine_getPayloadBodiesByRangeV9", ``},
	}
	for _, r := range reads {
		cases = append(cases, tc{name: r.method, body: request("3", r.method, r.params), want: Request{
			Method: r.method, Version: MethodVersion(r.method), ID: []byte("3"), Class: ClassRead,
		}})
	}
	for _, m := range []string{"eth_syncing", "eth_chainId", "eth_getBlockByNumber", "debug_traceBlock", "web3_clientVersion"} {
		cases = append(cases, tc{name: m, body: request("4", m, `["latest",false]`), want: Request{
			Method: m, ID: []byte("4"), Class: ClassNonEngine,
		}})
	}
	// geth's witness variants and unknown future versions follow their family.
	cases = append(cases,
		tc{name: "newPayloadWithWitnessV4", body: request("5", "engine_newPayloadWithWitnessV4", newPayloadParams(4)), want: Request{
			Method: "engine_newPayloadWithWitnessV4", Version: 4, ID: []byte("5"), Class: ClassNewPayload, Block: wantBlock(false)}},
		tc{name: "newPayloadV9", body: request("5", "engine_newPayloadV9", newPayloadParams(5)), want: Request{
			Method: "engine_newPayloadV9", Version: 9, ID: []byte("5"), Class: ClassNewPayload, Block: wantBlock(true)}},
		tc{name: "forkchoiceUpdatedWithWitnessV3", body: request("6", "engine_forkchoiceUpdatedWithWitnessV3", forkchoiceParams(3, "null")), want: Request{
			Method: "engine_forkchoiceUpdatedWithWitnessV3", Version: 3, ID: []byte("6"), Class: ClassForkchoice, Forkchoice: wantFC}},
		tc{name: "forkchoiceUpdatedV7", body: request("6", "engine_forkchoiceUpdatedV7", forkchoiceParams(3, "null")), want: Request{
			Method: "engine_forkchoiceUpdatedV7", Version: 7, ID: []byte("6"), Class: ClassForkchoice, Forkchoice: wantFC}},
		tc{name: "getPayloadV12", body: request("7", "engine_getPayloadV12", `["`+tPID+`"]`), want: Request{
			Method: "engine_getPayloadV12", Version: 12, ID: []byte("7"), Class: ClassGetPayload, PayloadID: tPID}},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Inspect(c.body)
			if err != nil {
				t.Fatalf("Inspect: %v\nbody: %s", err, c.body)
			}
			assertRequest(t, got, c.want)
		})
	}
}

func assertRequest(t *testing.T, got, want Request) {
	t.Helper()
	if string(got.ID) != string(want.ID) || (got.ID == nil) != (want.ID == nil) {
		t.Errorf("ID = %q (nil %v), want %q (nil %v)", got.ID, got.ID == nil, want.ID, want.ID == nil)
	}
	got.ID, want.ID = nil, nil
	got.Params, want.Params = nil, nil // see TestInspectParams
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Inspect:\n got %+v\nwant %+v", got, want)
	}
}

func TestInspectIDs(t *testing.T) {
	cases := []struct {
		name string
		id   string // "" means absent
		want string
	}{
		{"number", "1", "1"},
		{"zero", "0", "0"},
		{"big number", "123456789012345678901234567890", "123456789012345678901234567890"},
		{"negative", "-7", "-7"},
		{"fraction and exponent", "-1.5e+3", "-1.5e+3"},
		{"string", `"np0"`, `"np0"`},
		{"string fcu600", `"fcu600"`, `"fcu600"`},
		{"string with escapes", `"a\"b\\c\u00e9"`, `"a\"b\\c\u00e9"`},
		{"empty string", `""`, `""`},
		{"null", "null", "null"},
		{"absent", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Inspect(request(c.id, MethodForkchoiceUpdatedV3, forkchoiceParams(3, "null")))
			if err != nil {
				t.Fatal(err)
			}
			if string(r.ID) != c.want {
				t.Errorf("ID = %q, want %q", r.ID, c.want)
			}
			if (c.id == "") != (r.ID == nil) {
				t.Errorf("ID nil = %v, want %v", r.ID == nil, c.id == "")
			}
		})
	}
}

func TestInspectFixtures(t *testing.T) {
	cases := []struct {
		file string
		want Request
	}{
		{"newPayloadV4.json", Request{
			Method: MethodNewPayloadV4, Version: 4, ID: []byte("67"), Class: ClassNewPayload,
			Block: Block{
				Hash:   mustHash(t, "0x5cba8ae5ff7180db49b2012a20ff544ec9760e6ba26d5b255d064829ec1e2cab"),
				Parent: mustHash(t, "0x1abe1adf9fb221742d1d0d335d5ae3626475a0520d02b87dd849feb84662174e"),
				Number: 22481234, Timestamp: 1747224023,
			},
		}},
		{"newPayloadV5.json", Request{
			Method: MethodNewPayloadV5, Version: 5, ID: []byte(`"np5"`), Class: ClassNewPayload,
			Block: Block{
				Hash:   mustHash(t, "0xadabd9ab3c36246cd019cf7f2eacd6aa8883342924223524598cbb2fc90b22fb"),
				Parent: mustHash(t, "0x4771e21a1c8aa61a7284d04889c602910875e531dff69165effbb9491bf8455c"),
				Number: 9876543, Timestamp: 1791333600, Slot: 11300000, HasSlot: true,
			},
		}},
		{"forkchoiceUpdatedV3.json", Request{
			Method: MethodForkchoiceUpdatedV3, Version: 3, ID: []byte("68"), Class: ClassForkchoice,
			Forkchoice: ForkchoiceState{
				Head:      mustHash(t, "0x5cba8ae5ff7180db49b2012a20ff544ec9760e6ba26d5b255d064829ec1e2cab"),
				Safe:      mustHash(t, "0xc7ea90801a0c28e56147f7e6198321fe7d3e6f34114c0b15232dc6d7b2cc8bac"),
				Finalized: mustHash(t, "0x7f0026b23e15257d7ab3dcb5c1a645cdb12ca3494761b93604f4df9f8c7d703e"),
			},
			HasAttributes: true, AttributesTimestamp: 1747224035,
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			r, err := Inspect(readFixture(t, c.file))
			if err != nil {
				t.Fatal(err)
			}
			assertRequest(t, r, c.want)
		})
	}
}

func TestInspectShapes(t *testing.T) {
	// Bodies that are valid but written differently from the builders.
	cases := []struct {
		name string
		body string
		want Request
	}{
		{"params before method and id last",
			`{"params":["` + tPID + `"],"method":"engine_getPayloadV4","jsonrpc":"2.0","id":9}`,
			Request{Method: MethodGetPayloadV4, Version: 4, ID: []byte("9"), Class: ClassGetPayload, PayloadID: tPID}},
		{"whitespace everywhere",
			" \t\r\n{ \"jsonrpc\" : \"2.0\" ,\n \"method\" :\t\"engine_getPayloadV1\" , \"params\" : [ \"" + tPID + "\" ] , \"id\" : 1 } \n",
			Request{Method: MethodGetPayloadV1, Version: 1, ID: []byte("1"), Class: ClassGetPayload, PayloadID: tPID}},
		{"no jsonrpc member",
			`{"id":1,"method":"eth_chainId"}`,
			Request{Method: "eth_chainId", ID: []byte("1"), Class: ClassNonEngine}},
		{"escaped member names and method",
			`{"jsonrpc":"2\u002e0","\u0069d":1,"me\u0074hod":"engine_getPayload\u00562","params":["` + tPID + `"]}`,
			Request{Method: MethodGetPayloadV2, Version: 2, ID: []byte("1"), Class: ClassGetPayload, PayloadID: tPID}},
		{"unknown members are skipped",
			`{"id":1,"method":"engine_getPayloadV3","x":{"a":[1,2.5e-3,true,false,null,"s\"]"]},"params":["` + tPID + `",{"extra":[]}]}`,
			Request{Method: MethodGetPayloadV3, Version: 3, ID: []byte("1"), Class: ClassGetPayload, PayloadID: tPID}},
		{"escaped quotes and backslashes in skipped strings",
			`{"id":1,"method":"engine_newPayloadV1","params":[{"extraData":"\\","transactions":["\\\"\\\\\"","\\\\"],` +
				`"blockHash":"` + tHash + `","parentHash":"` + tParent + `","blockNumber":"0x0","timestamp":"0x1"}]}`,
			Request{Method: MethodNewPayloadV1, Version: 1, ID: []byte("1"), Class: ClassNewPayload,
				Block: Block{Hash: mustHash(t, tHash), Parent: mustHash(t, tParent), Number: 0, Timestamp: 1}}},
		{"params with trailing elements",
			`{"id":1,"method":"engine_forkchoiceUpdatedV4","params":[{"headBlockHash":"` + tHash + `","safeBlockHash":"` + tSafe +
				`","finalizedBlockHash":"` + tFinal + `"},null,"0xffff"]}`,
			Request{Method: MethodForkchoiceUpdatedV4, Version: 4, ID: []byte("1"), Class: ClassForkchoice,
				Forkchoice: ForkchoiceState{Head: mustHash(t, tHash), Safe: mustHash(t, tSafe), Finalized: mustHash(t, tFinal)}}},
		{"max quantity and uppercase hash",
			`{"id":1,"method":"engine_newPayloadV2","params":[{"blockHash":"0x` + strings.ToUpper(tHash[2:]) + `","parentHash":"` + tParent +
				`","blockNumber":"0xffffffffffffffff","timestamp":"0xABCDEF"}]}`,
			Request{Method: MethodNewPayloadV2, Version: 2, ID: []byte("1"), Class: ClassNewPayload,
				Block: Block{Hash: mustHash(t, tHash), Parent: mustHash(t, tParent), Number: 1<<64 - 1, Timestamp: 0xabcdef}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Inspect([]byte(c.body))
			if err != nil {
				t.Fatalf("Inspect: %v\nbody: %s", err, c.body)
			}
			assertRequest(t, r, c.want)
		})
	}
}

func TestInspectErrors(t *testing.T) {
	state := `{"headBlockHash":"` + tHash + `","safeBlockHash":"` + tSafe + `","finalizedBlockHash":"` + tFinal + `"}`
	payload := func(blockHash, number string) string {
		return `[{"blockHash":` + blockHash + `,"parentHash":"` + tParent + `","blockNumber":` + number + `,"timestamp":"0x1"}]`
	}
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	cases := []struct {
		name string
		body string
		code int
		msg  string // substring of the message
	}{
		// Not JSON.
		{"empty", ``, CodeParseError, "empty"},
		{"whitespace only", " \n\t", CodeParseError, "empty"},
		{"garbage", `hello`, CodeParseError, ""},
		{"truncated object", `{"id":1,"method":"eth_chainId"`, CodeParseError, "end of input"},
		{"truncated string", `{"id":1,"method":"eth_chain`, CodeParseError, "unterminated"},
		{"truncated params", `{"id":1,"method":"engine_newPayloadV4","params":[{"blockHash":"0x`, CodeParseError, ""},
		{"trailing garbage", `{"id":1,"method":"eth_chainId"}x`, CodeParseError, "end of input"},
		{"two objects", `{"id":1,"method":"eth_chainId"}{}`, CodeParseError, ""},
		{"trailing comma", `{"id":1,"method":"eth_chainId",}`, CodeParseError, ""},
		{"missing colon", `{"id" 1,"method":"eth_chainId"}`, CodeParseError, "':'"},
		{"single quotes", `{'id':1}`, CodeParseError, ""},
		{"bad number", `{"id":01,"method":"eth_chainId"}`, CodeParseError, ""},
		{"bad number in skipped value", `{"id":1,"method":"eth_chainId","params":[1.]}`, CodeParseError, ""},
		{"bad literal", `{"id":1,"method":"eth_chainId","params":[nul]}`, CodeParseError, ""},
		{"unbalanced skipped value", `{"id":1,"method":"eth_chainId","params":[{]}`, CodeParseError, ""},
		{"mismatched brackets", `{"id":1,"method":"eth_chainId","params":[}`, CodeParseError, ""},
		{"control character in method", "{\"id\":1,\"method\":\"eth_\x01\"}", CodeParseError, ""},
		{"bad escape in method", `{"id":1,"method":"eth_\x"}`, CodeParseError, ""},
		{"bad escape in id", `{"id":"\q","method":"eth_chainId"}`, CodeParseError, ""},
		{"bad escape in member name", `{"id":1,"method":"eth_chainId","\z":1}`, CodeParseError, ""},
		{"parse error wins over invalid request", `{"id":{},"method":"eth_chainId"`, CodeParseError, ""},
		{"parse error wins over invalid params", `{"id":1,"method":"engine_getPayloadV1","params":[1]`, CodeParseError, ""},
		{"batch with a broken element", `[{"id":1,]`, CodeParseError, ""},

		// Not a valid request.
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]`, CodeInvalidRequest, "batch"},
		{"empty batch", `[]`, CodeInvalidRequest, "batch"},
		{"string", `"engine_newPayloadV4"`, CodeInvalidRequest, "object"},
		{"null", `null`, CodeInvalidRequest, "object"},
		{"number", `42`, CodeInvalidRequest, "object"},
		{"empty object", `{}`, CodeInvalidRequest, "missing method"},
		{"missing method", `{"jsonrpc":"2.0","id":1,"params":[]}`, CodeInvalidRequest, "missing method"},
		{"method is a number", `{"id":1,"method":5}`, CodeInvalidRequest, "method must be a string"},
		{"method is null", `{"id":1,"method":null}`, CodeInvalidRequest, "method must be a string"},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}`, CodeInvalidRequest, "jsonrpc"},
		{"jsonrpc number", `{"jsonrpc":2.0,"id":1,"method":"eth_chainId"}`, CodeInvalidRequest, "jsonrpc"},
		{"id object", `{"id":{"a":1},"method":"eth_chainId"}`, CodeInvalidRequest, "id must be"},
		{"id array", `{"id":[1],"method":"eth_chainId"}`, CodeInvalidRequest, "id must be"},
		{"id bool", `{"id":true,"method":"eth_chainId"}`, CodeInvalidRequest, "id must be"},
		{"duplicate method", `{"id":1,"method":"eth_chainId","method":"engine_forkchoiceUpdatedV3"}`, CodeInvalidRequest, "duplicate"},
		{"duplicate id", `{"id":1,"id":2,"method":"eth_chainId"}`, CodeInvalidRequest, "duplicate"},
		{"duplicate params", `{"id":1,"method":"eth_chainId","params":[],"params":[]}`, CodeInvalidRequest, "duplicate"},
		{"case variant method", `{"id":1,"method":"eth_chainId","Method":"engine_forkchoiceUpdatedV3"}`, CodeInvalidRequest, "case"},
		{"case variant alone", `{"id":1,"METHOD":"eth_chainId"}`, CodeInvalidRequest, "case"},
		{"unicode fold variant", `{"id":1,"method":"eth_chainId","paramſ":[]}`, CodeInvalidRequest, "case"},
		{"escaped case variant", `{"id":1,"method":"eth_chainId","\u0050arams":[]}`, CodeInvalidRequest, "case"},
		{"too deep", `{"id":1,"method":"eth_chainId","params":` + deep + `}`, CodeInvalidRequest, "nesting"},

		// Wrong params for the routed classes.
		{"newPayload without params", `{"id":1,"method":"engine_newPayloadV4"}`, CodeInvalidParams, "missing params"},
		{"newPayload params null", `{"id":1,"method":"engine_newPayloadV4","params":null}`, CodeInvalidParams, "array"},
		{"newPayload params object", `{"id":1,"method":"engine_newPayloadV4","params":{"blockHash":"` + tHash + `"}}`, CodeInvalidParams, "array"},
		{"newPayload params empty", `{"id":1,"method":"engine_newPayloadV4","params":[]}`, CodeInvalidParams, "params[0]"},
		{"newPayload params[0] string", `{"id":1,"method":"engine_newPayloadV4","params":["x"]}`, CodeInvalidParams, "params[0]"},
		{"newPayload params[0] null", `{"id":1,"method":"engine_newPayloadV4","params":[null]}`, CodeInvalidParams, "params[0]"},
		{"newPayload missing blockHash", `{"id":1,"method":"engine_newPayloadV1","params":[{"parentHash":"` + tParent + `","blockNumber":"0x1","timestamp":"0x1"}]}`, CodeInvalidParams, "params[0].blockHash is missing"},
		{"newPayload missing timestamp", `{"id":1,"method":"engine_newPayloadV1","params":[{"blockHash":"` + tHash + `","parentHash":"` + tParent + `","blockNumber":"0x1"}]}`, CodeInvalidParams, "params[0].timestamp is missing"},
		{"newPayload short hash", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"0x1234"`, `"0x1"`) + `}`, CodeInvalidParams, "params[0].blockHash"},
		{"newPayload hash without 0x", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash[2:]+`00"`, `"0x1"`) + `}`, CodeInvalidParams, "params[0].blockHash"},
		{"newPayload hash with bad digit", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash[:65]+`g"`, `"0x1"`) + `}`, CodeInvalidParams, "params[0].blockHash"},
		{"newPayload hash escaped", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"\u0030`+tHash[1:]+`"`, `"0x1"`) + `}`, CodeInvalidParams, "params[0].blockHash"},
		{"newPayload hash number", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`12`, `"0x1"`) + `}`, CodeInvalidParams, "params[0].blockHash must be a string"},
		{"newPayload quantity leading zero", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash+`"`, `"0x01"`) + `}`, CodeInvalidParams, "params[0].blockNumber"},
		{"newPayload quantity empty", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash+`"`, `"0x"`) + `}`, CodeInvalidParams, "params[0].blockNumber"},
		{"newPayload quantity decimal", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash+`"`, `"12"`) + `}`, CodeInvalidParams, "params[0].blockNumber"},
		{"newPayload quantity too big", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash+`"`, `"0x10000000000000000"`) + `}`, CodeInvalidParams, "params[0].blockNumber"},
		{"newPayload quantity number", `{"id":1,"method":"engine_newPayloadV1","params":` + payload(`"`+tHash+`"`, `5`) + `}`, CodeInvalidParams, "params[0].blockNumber"},
		{"newPayload duplicate blockHash", `{"id":1,"method":"engine_newPayloadV1","params":[{"blockHash":"` + tHash + `","blockHash":"` + tParent + `"}]}`, CodeInvalidParams, "more than once"},
		{"newPayload case variant", `{"id":1,"method":"engine_newPayloadV1","params":[{"BlockHash":"` + tHash + `"}]}`, CodeInvalidParams, "case"},
		{"forkchoice params[0] array", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[[]]}`, CodeInvalidParams, "params[0]"},
		{"forkchoice missing safe", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":"` + tHash + `","finalizedBlockHash":"` + tFinal + `"},null]}`, CodeInvalidParams, "safeBlockHash is missing"},
		{"forkchoice bad head", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[{"headBlockHash":"0x0","safeBlockHash":"` + tSafe + `","finalizedBlockHash":"` + tFinal + `"}]}`, CodeInvalidParams, "headBlockHash"},
		{"forkchoice attributes string", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,"x"]}`, CodeInvalidParams, "params[1]"},
		{"forkchoice attributes array", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,[]]}`, CodeInvalidParams, "params[1]"},
		{"forkchoice attributes false", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,false]}`, CodeInvalidParams, "params[1]"},
		{"forkchoice attributes without timestamp", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,{"prevRandao":"` + tRoot + `"}]}`, CodeInvalidParams, "params[1].timestamp is missing"},
		{"forkchoice attributes bad timestamp", `{"id":1,"method":"engine_forkchoiceUpdatedV3","params":[` + state + `,{"timestamp":"0x00"}]}`, CodeInvalidParams, "params[1].timestamp"},
		{"getPayload params empty", `{"id":1,"method":"engine_getPayloadV4","params":[]}`, CodeInvalidParams, "payload id"},
		{"getPayload id number", `{"id":1,"method":"engine_getPayloadV4","params":[1]}`, CodeInvalidParams, "payload id"},
		{"getPayload id not hex", `{"id":1,"method":"engine_getPayloadV4","params":["0xzz"]}`, CodeInvalidParams, "payload id"},
		{"getPayload id odd length", `{"id":1,"method":"engine_getPayloadV4","params":["0x123"]}`, CodeInvalidParams, "payload id"},
		{"getPayload params before method", `{"params":[1],"id":1,"method":"engine_getPayloadV4"}`, CodeInvalidParams, "payload id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Inspect([]byte(c.body))
			if err == nil {
				t.Fatalf("Inspect(%s) = %+v, want error %d", c.body, r, c.code)
			}
			if got := codeOf(t, err); got != c.code {
				t.Fatalf("code = %d (%v), want %d", got, err, c.code)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
			if c.code == CodeInvalidParams {
				// The request is still addressable.
				if string(r.ID) != "1" || r.Method == "" {
					t.Errorf("partial request = %+v, want method and id", r)
				}
				if r.Block != (Block{}) || r.Forkchoice != (ForkchoiceState{}) || r.PayloadID != "" || r.HasAttributes {
					t.Errorf("routing fields set on error: %+v", r)
				}
			}
		})
	}
}

func TestInspectDepthLimit(t *testing.T) {
	// The top-level object and params take two levels.
	for _, c := range []struct {
		levels int
		ok     bool
	}{{MaxDepth - 2, true}, {MaxDepth - 1, false}, {100000, false}} {
		t.Run(fmt.Sprint(c.levels), func(t *testing.T) {
			nested := strings.Repeat(`{"a":[`, c.levels/2) + strings.Repeat("[", c.levels%2) +
				strings.Repeat("]", c.levels%2) + strings.Repeat(`]}`, c.levels/2)
			body := `{"id":1,"method":"eth_call","params":[` + nested + `]}`
			_, err := Inspect([]byte(body))
			if c.ok && err != nil {
				t.Fatalf("depth %d: %v", c.levels, err)
			}
			if !c.ok && (err == nil || codeOf(t, err) != CodeInvalidRequest) {
				t.Fatalf("depth %d: err = %v, want invalid request", c.levels, err)
			}
		})
	}
}

func TestInspectLenientSkippedStrings(t *testing.T) {
	// A raw control character inside a skipped transaction is left to the
	// execution client, as documented.
	body := "{\"id\":1,\"method\":\"engine_newPayloadV1\",\"params\":[{\"transactions\":[\"0x\x01\"],\"blockHash\":\"" +
		tHash + "\",\"parentHash\":\"" + tParent + "\",\"blockNumber\":\"0x1\",\"timestamp\":\"0x2\"}]}"
	if _, err := Inspect([]byte(body)); err != nil {
		t.Fatalf("Inspect: %v", err)
	}
}

func TestInspectAllocations(t *testing.T) {
	bodies := map[string][]byte{
		"newPayloadV4": readFixture(t, "newPayloadV4.json"),
		"forkchoice":   readFixture(t, "forkchoiceUpdatedV3.json"),
		"eth":          request("1", "eth_chainId", "[]"),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := Inspect(body); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > 1 {
				t.Errorf("Inspect allocates %.0f times per call, want at most 1", allocs)
			}
		})
	}
}

// TestInspectParams: Params is the params value exactly as sent, whatever surrounds it.
func TestInspectParams(t *testing.T) {
	const params = `[ {"headBlockHash":"` + tHash + `","safeBlockHash":"` + tHash + `","finalizedBlockHash":"` + tHash + `"} , null ]`
	for _, body := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"engine_forkchoiceUpdatedV3","params":` + params + `}`,
		`{"params":` + params + ` ,"id":"x","method":"engine_forkchoiceUpdatedV3","jsonrpc":"2.0"}`,
		"{ \"id\" : null ,\n \"params\" :\t" + params + "\n, \"method\":\"engine_forkchoiceUpdatedV3\",\"jsonrpc\":\"2.0\"}",
	} {
		r, err := Inspect([]byte(body))
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if string(r.Params) != params {
			t.Fatalf("%s: params %q, want %q", body, r.Params, params)
		}
	}
	r, err := Inspect([]byte(`{"jsonrpc":"2.0","id":1,"method":"engine_exchangeCapabilities"}`))
	if err == nil && r.Params != nil {
		t.Fatalf("params %q for a request without them", r.Params)
	}
}
