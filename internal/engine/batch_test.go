package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestSplitBatch(t *testing.T) {
	np := request("1", MethodNewPayloadV4, newPayloadParams(4))
	fcu := request(`"f"`, MethodForkchoiceUpdatedV3, forkchoiceParams(3, "null"))
	tests := []struct {
		name  string
		body  string
		limit int
		want  []string // the elements returned
		n     int
		code  int // 0: no error
		msg   string
	}{
		{name: "one request", body: `[` + string(np) + `]`, limit: 10, want: []string{string(np)}, n: 1},
		{name: "an engine write and a read", body: " [\n" + string(np) + " ,\t" + string(fcu) + ` , {"id":3,"method":"eth_chainId"} ]` + "\n",
			limit: 10, want: []string{string(np), string(fcu), `{"id":3,"method":"eth_chainId"}`}, n: 3},
		{name: "elements that are not requests are returned as they are", body: `[1,"x",null,[],{},[{"id":1}]]`, limit: 10,
			want: []string{`1`, `"x"`, `null`, `[]`, `{}`, `[{"id":1}]`}, n: 6},
		{name: "over the limit: the first ones, and the count", body: `[1,2,3,4,5]`, limit: 2, want: []string{`1`, `2`}, n: 5},
		{name: "empty batch", body: `[]`, limit: 10, code: CodeInvalidRequest, msg: "empty batch"},
		{name: "empty batch with whitespace", body: " [ \n ] ", limit: 10, code: CodeInvalidRequest, msg: "empty batch"},
		{name: "not a batch", body: string(np), limit: 10, code: CodeInvalidRequest, msg: "not a batch"},
		{name: "a number", body: `7`, limit: 10, code: CodeInvalidRequest, msg: "not a batch"},
		{name: "empty body", body: ``, limit: 10, code: CodeParseError},
		{name: "unterminated", body: `[{"id":1,"method":"eth_chainId"}`, limit: 10, code: CodeParseError},
		{name: "trailing comma", body: `[1,]`, limit: 10, code: CodeParseError},
		{name: "leading comma", body: `[,1]`, limit: 10, code: CodeParseError},
		{name: "broken element", body: `[{"id":1,]`, limit: 10, code: CodeParseError},
		{name: "broken element after the limit", body: `[1,2,{]`, limit: 1, code: CodeParseError},
		{name: "trailing garbage", body: `[1]x`, limit: 10, code: CodeParseError},
		{name: "two batches", body: `[1][2]`, limit: 10, code: CodeParseError},
		{name: "too deep", body: `[` + strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth) + `]`, limit: 10, code: CodeInvalidRequest, msg: "nesting"},
		{name: "as deep as allowed", body: `[` + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1) + `]`, limit: 10,
			want: []string{strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth-1)}, n: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			elems, n, err := SplitBatch([]byte(tc.body), tc.limit)
			if tc.code != 0 {
				var e *Error
				if !errors.As(err, &e) || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
					t.Fatalf("error %v, want code %d with %q", err, tc.code, tc.msg)
				}
				if elems != nil || n != 0 {
					t.Fatalf("elements %q and n %d with an error", elems, n)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if n != tc.n || len(elems) != len(tc.want) {
				t.Fatalf("%d elements of %d, want %d of %d", len(elems), n, len(tc.want), tc.n)
			}
			for i, e := range elems {
				if string(e) != tc.want[i] {
					t.Errorf("element %d %q, want %q", i, e, tc.want[i])
				}
				if cap(e) != len(e) {
					t.Errorf("element %d: capacity %d past its length %d: an append would write into the next element", i, cap(e), len(e))
				}
			}
		})
	}
}

func TestIsBatch(t *testing.T) {
	for body, want := range map[string]bool{
		`[]`: true, " \n\t[1]": true, `[`: true,
		`{}`: false, ``: false, ` `: false, `"["`: false, `x[`: false,
	} {
		if got := IsBatch([]byte(body)); got != want {
			t.Errorf("IsBatch(%q) = %v, want %v", body, got, want)
		}
	}
}

// FuzzSplitBatch checks SplitBatch against encoding/json: a body it splits is a valid
// JSON array whose elements are exactly the ones returned, and valid JSON is never
// reported as a parse error.
func FuzzSplitBatch(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, 3)
		f.Add(append(append([]byte("["), s...), ']'), 3)
	}
	f.Add([]byte(`[1, "x" ,null,[],{} ]`), 2)
	f.Add([]byte(`[]`), 1)
	f.Add([]byte(`[1,]`), 1)
	f.Fuzz(func(t *testing.T, body []byte, limit int) {
		limit = max(limit%50, 0)
		elems, n, err := SplitBatch(body, limit)
		valid := json.Valid(body)
		if err != nil {
			requireScanError(t, err, valid, body)
			return
		}
		if len(elems) != min(n, limit) {
			t.Fatalf("%d elements returned of %d with limit %d", len(elems), n, limit)
		}
		if !valid {
			return // only skipped strings may be malformed (see the package documentation)
		}
		var all []json.RawMessage
		if err := json.Unmarshal(body, &all); err != nil {
			t.Fatalf("split a body encoding/json does not read as an array: %v\n%q", err, body)
		}
		if len(all) != n {
			t.Fatalf("n %d, encoding/json reads %d elements\n%q", n, len(all), body)
		}
		for i, e := range elems {
			if !bytes.Equal(e, bytes.TrimSpace(all[i])) {
				t.Fatalf("element %d %q, encoding/json reads %q", i, e, all[i])
			}
		}
	})
}
