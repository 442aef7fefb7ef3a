package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Values used by the body builders.
const (
	tHash   = "0x5cba8ae5ff7180db49b2012a20ff544ec9760e6ba26d5b255d064829ec1e2cab"
	tParent = "0x1abe1adf9fb221742d1d0d335d5ae3626475a0520d02b87dd849feb84662174e"
	tSafe   = "0xc7ea90801a0c28e56147f7e6198321fe7d3e6f34114c0b15232dc6d7b2cc8bac"
	tFinal  = "0x7f0026b23e15257d7ab3dcb5c1a645cdb12ca3494761b93604f4df9f8c7d703e"
	tRoot   = "0x82de3d6d43b73b9443a72594ce66827d4f97d2b91fc2fb98230e42be6d261a55"
	tAddr   = "0xda0ed3c8b9ff5b2f1de7deaffffdbac7ffaa60fd"
	tNumber = 22481234   // 0x1570952
	tTime   = 1747224023 // 0x682485d7
	tSlot   = 11700000   // 0xb28720
	tPID    = "0x03a1b2c3d4e5f607"
)

func mustHash(t testing.TB, s string) Hash {
	t.Helper()
	h, err := ParseHash(s)
	if err != nil {
		t.Fatalf("ParseHash(%q): %v", s, err)
	}
	return h
}

// payloadObject returns an ExecutionPayloadV<v> object (v in 1..4).
func payloadObject(v int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"parentHash":%q,"feeRecipient":%q,"stateRoot":%q,"receiptsRoot":%q,`, tParent, tAddr, tRoot, tRoot)
	fmt.Fprintf(&b, `"logsBloom":"0x%s","prevRandao":%q,"blockNumber":"%#x","gasLimit":"0x2255100",`, strings.Repeat("00", 256), tRoot, tNumber)
	fmt.Fprintf(&b, `"gasUsed":"0xb52f1f","timestamp":"%#x","extraData":"0x6265617665726275696c642e6f7267",`, tTime)
	fmt.Fprintf(&b, `"baseFeePerGas":"0x6faa5e15","blockHash":%q,`, tHash)
	b.WriteString(`"transactions":["0x02f8b1018203e8843b9aca0085174876e80083030d4094a0b86991c6218b36c1d19d4a2e9eb0ce3606eb4880b844a9059cbb","0xf86c808504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a0"]`)
	if v >= 2 {
		fmt.Fprintf(&b, `,"withdrawals":[{"index":"0x5702100","validatorIndex":"0x18f5bf","address":%q,"amount":"0x11ab3c2"}]`, tAddr)
	}
	if v >= 3 {
		b.WriteString(`,"blobGasUsed":"0x40000","excessBlobGas":"0x1a3c0000"`)
	}
	if v >= 4 {
		fmt.Fprintf(&b, `,"blockAccessList":"0xf9012c","slotNumber":"%#x"`, tSlot)
	}
	b.WriteString("}")
	return b.String()
}

// newPayloadParams returns the params array of engine_newPayloadV<v>.
func newPayloadParams(v int) string {
	switch {
	case v <= 2:
		return "[" + payloadObject(min(v, 2)) + "]"
	case v == 3:
		return fmt.Sprintf(`[%s,["0x01%s"],%q]`, payloadObject(3), strings.Repeat("ab", 31), tRoot)
	case v == 4:
		return fmt.Sprintf(`[%s,["0x01%s"],%q,["0x00%s"]]`, payloadObject(3), strings.Repeat("ab", 31), tRoot, strings.Repeat("cd", 192))
	case v == 5:
		return fmt.Sprintf(`[%s,[],%q,[]]`, payloadObject(4), tRoot)
	}
	return fmt.Sprintf(`[%s,[],%q,[],["0x02f8"]]`, payloadObject(4), tRoot)
}

// attributesObject returns PayloadAttributesV<v> for the next slot.
func attributesObject(v int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"timestamp":"%#x","prevRandao":%q,"suggestedFeeRecipient":%q`, tTime+12, tRoot, tAddr)
	if v >= 2 {
		fmt.Fprintf(&b, `,"withdrawals":[{"index":"0x1","validatorIndex":"0x2","address":%q,"amount":"0x3"}]`, tAddr)
	}
	if v >= 3 {
		fmt.Fprintf(&b, `,"parentBeaconBlockRoot":%q`, tRoot)
	}
	if v >= 4 {
		fmt.Fprintf(&b, `,"slotNumber":"%#x","targetGasLimit":"0x3938700"`, tSlot+1)
	}
	if v >= 5 {
		b.WriteString(`,"inclusionListTransactions":[]`)
	}
	b.WriteString("}")
	return b.String()
}

// forkchoiceParams returns the params of engine_forkchoiceUpdatedV<v>;
// attrs is "object", "null" or "absent".
func forkchoiceParams(v int, attrs string) string {
	state := fmt.Sprintf(`{"headBlockHash":%q,"safeBlockHash":%q,"finalizedBlockHash":%q}`, tHash, tSafe, tFinal)
	var a string
	switch attrs {
	case "object":
		a = attributesObject(v)
	case "null":
		a = "null"
	default:
		return "[" + state + "]"
	}
	if v >= 4 {
		return "[" + state + "," + a + `,"0x0000000000000000000000000000ffff"]`
	}
	return "[" + state + "," + a + "]"
}

func request(id, method, params string) []byte {
	s := `{"jsonrpc":"2.0"`
	if id != "" {
		s += `,"id":` + id
	}
	s += `,"method":` + fmt.Sprintf("%q", method)
	if params != "" {
		s += `,"params":` + params
	}
	return []byte(s + "}")
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// codeOf returns the JSON-RPC code of err, failing when it is not an *Error.
func codeOf(t testing.TB, err error) int {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	return e.Code
}
