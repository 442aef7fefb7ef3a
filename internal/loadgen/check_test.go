package loadgen

import (
	"errors"
	"testing"
)

const (
	hashA   = `"0x` + "aa00000000000000000000000000000000000000000000000000000000000001" + `"`
	validNP = `{"jsonrpc":"2.0","id":1000000007,"result":{"status":"VALID","latestValidHash":` + hashA + `,"validationError":null}}`
)

func TestCheck(t *testing.T) {
	id := []byte("1000000007")
	cases := []struct {
		name   string
		kind   Kind
		id     []byte
		body   string
		want   Expect
		err    error
		status string
	}{
		{"valid newPayload", KindNewPayload, id, validNP, Expect{}, nil, StatusValid},
		{"wrong id", KindNewPayload, []byte("1000000008"), validNP, Expect{}, ErrWrongID, ""},
		{"id as string", KindNewPayload, []byte(`"1000000007"`), validNP, Expect{}, ErrWrongID, ""},
		{"not json", KindNewPayload, id, `{"jsonrpc":`, Expect{}, ErrNotJSON, ""},
		{"version", KindNewPayload, id, `{"jsonrpc":"1.0","id":1000000007,"result":{"status":"VALID"}}`, Expect{}, ErrVersion, ""},
		{"rpc error", KindNewPayload, id, `{"jsonrpc":"2.0","id":1000000007,"error":{"code":-32000,"message":"x"}}`, Expect{}, ErrRPCError, ""},
		{"no result", KindNewPayload, id, `{"jsonrpc":"2.0","id":1000000007,"result":null}`, Expect{}, ErrNoResult, ""},
		{"unknown status", KindNewPayload, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"status":"FINE"}}`, Expect{}, ErrBadStatus, "FINE"},
		{"unexpected status", KindNewPayload, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"status":"SYNCING","latestValidHash":null}}`, Expect{Statuses: []string{StatusValid}}, ErrUnexpected, StatusSyncing},
		{"bad hash", KindNewPayload, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"status":"VALID","latestValidHash":"0x12"}}`, Expect{}, ErrBadLatestHash, StatusValid},
		{"fcu accepted", KindForkchoice, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"payloadStatus":{"status":"ACCEPTED"},"payloadId":null}}`, Expect{}, ErrBadStatus, StatusAccepted},
		{"fcu valid", KindForkchoice, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"payloadStatus":{"status":"VALID","latestValidHash":` + hashA + `},"payloadId":null}}`, Expect{}, nil, StatusValid},
		{"fcu stray payload id", KindForkchoice, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"payloadStatus":{"status":"VALID"},"payloadId":"0x0000000000000001"}}`, Expect{}, ErrBadPayloadID, StatusValid},
		{"build with id", KindForkchoiceAttrs, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"payloadStatus":{"status":"VALID"},"payloadId":"0x0000000000000001"}}`, Expect{}, nil, StatusValid},
		{"build without id", KindForkchoiceAttrs, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"payloadStatus":{"status":"VALID"},"payloadId":null}}`, Expect{}, ErrBadPayloadID, StatusValid},
		{"build syncing", KindForkchoiceAttrs, id, `{"jsonrpc":"2.0","id":1000000007,"result":{"payloadStatus":{"status":"SYNCING","latestValidHash":null},"payloadId":null}}`, Expect{}, nil, StatusSyncing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, err := Check(c.kind, c.id, []byte(c.body), c.want)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Errorf("err = %v, want %v", err, c.err)
			}
			if status != c.status {
				t.Errorf("status = %q, want %q", status, c.status)
			}
		})
	}
}
