package engine

import (
	"strings"
	"testing"
)

func TestInspectResponse(t *testing.T) {
	status := func(s, lvh string) string {
		return `{"status":"` + s + `","latestValidHash":` + lvh + `,"validationError":null}`
	}
	hash := mustHash(t, tHash)
	cases := []struct {
		name      string
		class     Class
		body      string
		status    Status
		lvh       *Hash
		payloadID string
		errCode   int    // of Response.Err
		result    string // expected Result span; "-" to skip the check
	}{
		{"newPayload VALID", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":` + status("VALID", `"`+tHash+`"`) + `}`,
			StatusValid, &hash, "", 0, status("VALID", `"`+tHash+`"`)},
		{"newPayload INVALID", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":{"status":"INVALID","latestValidHash":"` + tHash + `","validationError":"invalid blob hashes"}}`,
			StatusInvalid, &hash, "", 0, "-"},
		{"newPayload INVALID with zero hash", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":` + status("INVALID", `"0x`+strings.Repeat("0", 64)+`"`) + `}`,
			StatusInvalid, &Hash{}, "", 0, "-"},
		{"newPayload SYNCING", ClassNewPayload, `{"jsonrpc":"2.0","id":"np0","result":` + status("SYNCING", "null") + `}`,
			StatusSyncing, nil, "", 0, "-"},
		{"newPayload ACCEPTED", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":` + status("ACCEPTED", "null") + `}`,
			StatusAccepted, nil, "", 0, "-"},
		{"newPayload INVALID_BLOCK_HASH", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":` + status("INVALID_BLOCK_HASH", "null") + `}`,
			StatusInvalidBlockHash, nil, "", 0, "-"},
		{"newPayload unknown status kept", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"result":{"status":"PENDING"}}`,
			Status("PENDING"), nil, "", 0, "-"},
		{"newPayload V2 status with inclusionListSatisfied", ClassNewPayload, `{"id":1,"result":{"status":"VALID","latestValidHash":null,"validationError":null,"inclusionListSatisfied":true},"jsonrpc":"2.0"}`,
			StatusValid, nil, "", 0, "-"},
		{"forkchoice with payload id", ClassForkchoice, `{"jsonrpc":"2.0","id":2,"result":{"payloadStatus":` + status("VALID", `"`+tHash+`"`) + `,"payloadId":"` + tPID + `"}}`,
			StatusValid, &hash, tPID, 0, "-"},
		{"forkchoice without payload id", ClassForkchoice, `{"jsonrpc":"2.0","id":2,"result":{"payloadId":null,"payloadStatus":` + status("SYNCING", "null") + `}}`,
			StatusSyncing, nil, "", 0, "-"},
		{"json-rpc error", ClassNewPayload, `{"jsonrpc":"2.0","id":1,"error":{"code":-38005,"message":"Unsupported fork","data":null}}`,
			"", nil, "", CodeUnsupportedFork, ""},
		{"json-rpc error with data and null result", ClassForkchoice, `{"jsonrpc":"2.0","id":1,"result":null,"error":{"code":-32000,"message":"x","data":{"err":"boom"}}}`,
			"", nil, "", CodeServerError, "null"},
		{"null error and result", ClassRead, `{"jsonrpc":"2.0","id":1,"error":null,"result":["0x01"]}`,
			"", nil, "", 0, `["0x01"]`},
		{"getPayload result span", ClassGetPayload, `{"jsonrpc":"2.0","id":1,"result": {"executionPayload":{"transactions":["0x02"]},"blockValue":"0x1"} }`,
			"", nil, "", 0, `{"executionPayload":{"transactions":["0x02"]},"blockValue":"0x1"}`},
		{"getBlobsV2 null result", ClassRead, `{"jsonrpc":"2.0","id":1,"result":null}`,
			"", nil, "", 0, "null"},
		{"eth result", ClassNonEngine, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`,
			"", nil, "", 0, `"0x1"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := InspectResponse(c.class, []byte(c.body))
			if err != nil {
				t.Fatalf("InspectResponse: %v", err)
			}
			if r.Status != c.status {
				t.Errorf("Status = %q, want %q", r.Status, c.status)
			}
			if (r.LatestValidHash == nil) != (c.lvh == nil) || (c.lvh != nil && *r.LatestValidHash != *c.lvh) {
				t.Errorf("LatestValidHash = %v, want %v", r.LatestValidHash, c.lvh)
			}
			if r.PayloadID != c.payloadID {
				t.Errorf("PayloadID = %q, want %q", r.PayloadID, c.payloadID)
			}
			if c.errCode == 0 && r.Err != nil {
				t.Errorf("Err = %v, want none", r.Err)
			}
			if c.errCode != 0 && (r.Err == nil || r.Err.Code != c.errCode || r.Err.Message == "") {
				t.Errorf("Err = %v, want code %d", r.Err, c.errCode)
			}
			if c.result != "-" && string(r.Result) != c.result {
				t.Errorf("Result = %s, want %s", r.Result, c.result)
			}
		})
	}
}

func TestInspectResponseFixtures(t *testing.T) {
	r, err := InspectResponse(ClassForkchoice, readFixture(t, "forkchoiceUpdatedV3.response.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != StatusValid || r.PayloadID != "0x03a1b2c3d4e5f607" || string(r.ID) != "68" ||
		r.LatestValidHash == nil || r.LatestValidHash.String() != tHash {
		t.Errorf("forkchoice fixture: %+v", r)
	}
	body := readFixture(t, "getPayloadV4.response.json")
	r, err = InspectResponse(ClassGetPayload, body)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.ID) != "69" || !strings.HasPrefix(string(r.Result), `{"executionPayload":`) || !strings.HasSuffix(string(r.Result), `"]}`) {
		t.Errorf("getPayload fixture: id %s result %.40s…", r.ID, r.Result)
	}
}

func TestInspectResponseErrors(t *testing.T) {
	cases := []struct {
		name  string
		class Class
		body  string
		code  int
	}{
		{"empty", ClassRead, ``, CodeParseError},
		{"garbage", ClassRead, `<html>502 Bad Gateway</html>`, CodeParseError},
		{"truncated", ClassGetPayload, `{"jsonrpc":"2.0","id":1,"result":{"executionPayload":{"transactions":["0x02`, CodeParseError},
		{"trailing", ClassRead, `{"id":1,"result":1}]`, CodeParseError},
		{"array", ClassRead, `[{"id":1,"result":1}]`, CodeInternalError},
		{"neither result nor error", ClassRead, `{"jsonrpc":"2.0","id":1}`, CodeInternalError},
		{"both result and error", ClassRead, `{"id":1,"result":1,"error":{"code":1,"message":"x"}}`, CodeInternalError},
		{"duplicate result", ClassRead, `{"id":1,"result":1,"result":2}`, CodeInternalError},
		{"case variant result", ClassRead, `{"id":1,"Result":1}`, CodeInternalError},
		{"id object", ClassRead, `{"id":{},"result":1}`, CodeInternalError},
		{"error not object", ClassRead, `{"id":1,"error":"boom"}`, CodeInternalError},
		{"error code missing", ClassRead, `{"id":1,"error":{"message":"boom"}}`, CodeInternalError},
		{"error code fraction", ClassRead, `{"id":1,"error":{"code":1.5,"message":"boom"}}`, CodeInternalError},
		{"error message number", ClassRead, `{"id":1,"error":{"code":1,"message":5}}`, CodeInternalError},
		{"newPayload null result", ClassNewPayload, `{"id":1,"result":null}`, CodeInternalError},
		{"newPayload status missing", ClassNewPayload, `{"id":1,"result":{"latestValidHash":null}}`, CodeInternalError},
		{"newPayload status number", ClassNewPayload, `{"id":1,"result":{"status":1}}`, CodeInternalError},
		{"newPayload bad latestValidHash", ClassNewPayload, `{"id":1,"result":{"status":"VALID","latestValidHash":"0x12"}}`, CodeInternalError},
		{"newPayload duplicate status", ClassNewPayload, `{"id":1,"result":{"status":"VALID","status":"INVALID"}}`, CodeInternalError},
		{"forkchoice payloadStatus missing", ClassForkchoice, `{"id":1,"result":{"payloadId":null}}`, CodeInternalError},
		{"forkchoice payloadId number", ClassForkchoice, `{"id":1,"result":{"payloadStatus":{"status":"VALID"},"payloadId":5}}`, CodeInternalError},
		{"forkchoice status is string", ClassForkchoice, `{"id":1,"result":{"payloadStatus":"VALID"}}`, CodeInternalError},
		{"parse error wins", ClassNewPayload, `{"id":1,"result":{"status":1},`, CodeParseError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := InspectResponse(c.class, []byte(c.body))
			if err == nil {
				t.Fatalf("InspectResponse = %+v, want error", r)
			}
			if got := codeOf(t, err); got != c.code {
				t.Errorf("code = %d (%v), want %d", got, err, c.code)
			}
		})
	}
}

func TestStatus(t *testing.T) {
	cases := []struct {
		s            Status
		final, known bool
	}{
		{StatusValid, true, true},
		{StatusInvalid, true, true},
		{StatusInvalidBlockHash, true, true},
		{StatusSyncing, false, true},
		{StatusAccepted, false, true},
		{"", false, false},
		{"valid", false, false},
	}
	for _, c := range cases {
		t.Run(string(c.s), func(t *testing.T) {
			if c.s.Final() != c.final || c.s.Known() != c.known || c.s.String() != string(c.s) {
				t.Errorf("%q: Final %v Known %v", c.s, c.s.Final(), c.s.Known())
			}
		})
	}
}
