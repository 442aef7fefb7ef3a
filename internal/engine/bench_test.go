package engine

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchSizes are the newPayloadV4 bodies of the benchmarks: fixed fields only
// (~1.4 KB), a typical mainnet block (~300 KB) and the worst case at 60M gas
// (~12 MB).
var benchSizes = []struct {
	name   string
	txs    int // number of transactions
	txSize int // raw bytes per transaction
}{
	{"1.4KB", 0, 0},
	{"300KB", 600, 250},
	{"12MB", 4, 1_500_000},
}

// benchNewPayload returns a compact engine_newPayloadV4 body with txs random
// transactions of txSize raw bytes each.
func benchNewPayload(txs, txSize int) []byte {
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	hexOf := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return "0x" + hex.EncodeToString(b)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `{"jsonrpc":"2.0","id":42,"method":"engine_newPayloadV4","params":[{"parentHash":%q,"feeRecipient":%q,`, hexOf(32), hexOf(20))
	fmt.Fprintf(&b, `"stateRoot":%q,"receiptsRoot":%q,"logsBloom":%q,"prevRandao":%q,`, hexOf(32), hexOf(32), hexOf(256), hexOf(32))
	fmt.Fprintf(&b, `"blockNumber":"0x1570952","gasLimit":"0x3938700","gasUsed":"0x1c9c380","timestamp":"0x682485d7",`)
	fmt.Fprintf(&b, `"extraData":"0x6265617665726275696c642e6f7267","baseFeePerGas":"0x6faa5e15","blockHash":%q,"transactions":[`, hexOf(32))
	for i := range txs {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", "0x02"+hexOf(txSize)[2:])
	}
	b.WriteString(`],"withdrawals":[],"blobGasUsed":"0x0","excessBlobGas":"0x0"},[],`)
	fmt.Fprintf(&b, `%q,[]]}`, hexOf(32))
	return []byte(b.String())
}

// benchPayload mirrors ExecutionPayloadV3 for the encoding/json comparison.
type benchPayload struct {
	ParentHash    string   `json:"parentHash"`
	FeeRecipient  string   `json:"feeRecipient"`
	StateRoot     string   `json:"stateRoot"`
	ReceiptsRoot  string   `json:"receiptsRoot"`
	LogsBloom     string   `json:"logsBloom"`
	PrevRandao    string   `json:"prevRandao"`
	BlockNumber   string   `json:"blockNumber"`
	GasLimit      string   `json:"gasLimit"`
	GasUsed       string   `json:"gasUsed"`
	Timestamp     string   `json:"timestamp"`
	ExtraData     string   `json:"extraData"`
	BaseFeePerGas string   `json:"baseFeePerGas"`
	BlockHash     string   `json:"blockHash"`
	Transactions  []string `json:"transactions"`
	Withdrawals   []struct {
		Index          string `json:"index"`
		ValidatorIndex string `json:"validatorIndex"`
		Address        string `json:"address"`
		Amount         string `json:"amount"`
	} `json:"withdrawals"`
	BlobGasUsed   string `json:"blobGasUsed"`
	ExcessBlobGas string `json:"excessBlobGas"`
}

// decodeNewPayloadV4 is the full encoding/json decode Inspect is compared with.
func decodeNewPayloadV4(body []byte) error {
	var req struct {
		JSONRPC string            `json:"jsonrpc"`
		ID      json.RawMessage   `json:"id"`
		Method  string            `json:"method"`
		Params  []json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return err
	}
	var (
		payload   benchPayload
		hashes    []string
		root      string
		requests  []string
		targets   = []any{&payload, &hashes, &root, &requests}
		paramsLen = min(len(req.Params), len(targets))
	)
	for i := range paramsLen {
		if err := json.Unmarshal(req.Params[i], targets[i]); err != nil {
			return err
		}
	}
	return nil
}

func BenchmarkInspect(b *testing.B) {
	for _, size := range benchSizes {
		body := benchNewPayload(size.txs, size.txSize)
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Inspect(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkJSONDecode(b *testing.B) {
	for _, size := range benchSizes {
		body := benchNewPayload(size.txs, size.txSize)
		b.Run(size.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := decodeNewPayloadV4(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInspectResponse measures delimiting a large getPayload-like result.
func BenchmarkInspectResponse(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"result":` + string(benchNewPayload(21, 262_144)) + `}`)
	b.Run("6MB", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := InspectResponse(ClassGetPayload, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestBenchBodies(t *testing.T) {
	for _, size := range benchSizes {
		body := benchNewPayload(size.txs, size.txSize)
		t.Logf("%s: %d bytes", size.name, len(body))
		r, err := Inspect(body)
		if err != nil || r.Class != ClassNewPayload || r.Block.Number != 0x1570952 {
			t.Fatalf("%s: %+v, %v", size.name, r, err)
		}
		if err := decodeNewPayloadV4(body); err != nil {
			t.Fatal(err)
		}
	}
}
