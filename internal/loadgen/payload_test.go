package loadgen

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/sync-proxy/sync-proxy/internal/engine"
)

// templates are rendered once: the large ones take a second to sign.
var templates = map[string]*Template{}

func template(t testing.TB, name string) *Template {
	t.Helper()
	if tp, ok := templates[name]; ok {
		return tp
	}
	s, err := ShapeByName(name)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := NewTemplate(s, 7)
	if err != nil {
		t.Fatalf("NewTemplate(%s): %v", name, err)
	}
	templates[name] = tp
	return tp
}

func TestTemplateSizes(t *testing.T) {
	for _, s := range Shapes() {
		tp := template(t, s.Name)
		lo, hi := s.Size*99/100, s.Size*101/100
		switch s.Name {
		case "np-1.4KB":
			lo, hi = 1_300, 1_500
		case "fcu":
			lo, hi = 300, 400
		case "fcu-attrs":
			lo, hi = 2_000, 3_000
		}
		if tp.Len() < lo || tp.Len() > hi {
			t.Errorf("%s: body is %d bytes, want %d–%d", s.Name, tp.Len(), lo, hi)
		}
		if !json.Valid(tp.Clone()) {
			t.Errorf("%s: body is not valid JSON", s.Name)
		}
	}
}

func TestTemplateInspectable(t *testing.T) {
	for _, s := range Shapes() {
		tp := template(t, s.Name)
		buf := tp.Clone()
		for _, seq := range []uint64{0, 1, 12345, 1 << 40} {
			id := tp.Stamp(buf, seq)
			req, err := engine.Inspect(buf)
			if err != nil {
				t.Fatalf("%s seq %d: Inspect: %v", s.Name, seq, err)
			}
			if !bytes.Equal(req.ID, id) {
				t.Errorf("%s seq %d: id %s, Stamp said %s", s.Name, seq, req.ID, id)
			}
			want := engine.Hash(tp.BlockHash(seq))
			switch s.Kind {
			case KindNewPayload:
				if req.Method != MethodNewPayload || req.Block.Hash != want || req.Block.Parent != engine.Hash(tp.BlockHash(seq-1)) {
					t.Errorf("%s seq %d: %s hash %v parent %v", s.Name, seq, req.Method, req.Block.Hash, req.Block.Parent)
				}
				if req.Block.Number != numBase+seq%seqSpan || req.Block.Timestamp != timeBase+slotSecs*(seq%seqSpan) {
					t.Errorf("%s seq %d: number %d timestamp %d", s.Name, seq, req.Block.Number, req.Block.Timestamp)
				}
			default:
				if req.Method != MethodForkchoice || req.Forkchoice.Head != want || req.HasAttributes != (s.Kind == KindForkchoiceAttrs) {
					t.Errorf("%s seq %d: %s head %v attrs %v", s.Name, seq, req.Method, req.Forkchoice.Head, req.HasAttributes)
				}
			}
		}
		if tp.Len() != len(buf) {
			t.Errorf("%s: Stamp changed the length", s.Name)
		}
	}
}

func TestStampIDsDistinct(t *testing.T) {
	tp := template(t, "fcu")
	buf := tp.Clone()
	seen := map[string]bool{}
	for seq := range uint64(1000) {
		id := string(tp.Stamp(buf, seq))
		if seen[id] || len(id) != idWidth {
			t.Fatalf("seq %d: id %s repeated or not %d digits", seq, id, idWidth)
		}
		if _, err := strconv.ParseUint(id, 10, 64); err != nil {
			t.Fatalf("id %s: %v", id, err)
		}
		seen[id] = true
	}
}

func TestStampAllocatesNothing(t *testing.T) {
	tp := template(t, "np-300KB")
	buf := tp.Clone()
	seq := uint64(0)
	if n := testing.AllocsPerRun(100, func() { tp.Stamp(buf, seq); seq++ }); n != 0 {
		t.Errorf("Stamp allocates %v times", n)
	}
}

// TestTransactionsDecode checks that the transactions are real signed EIP-1559 transactions.
func TestTransactionsDecode(t *testing.T) {
	for _, name := range []string{"np-300KB", "np-12MB"} {
		tp := template(t, name)
		var req struct {
			Params []json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(tp.Clone(), &req); err != nil {
			t.Fatal(err)
		}
		var p struct {
			Transactions []hexutil.Bytes `json:"transactions"`
		}
		if err := json.Unmarshal(req.Params[0], &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Transactions) == 0 || len(p.Transactions) != tp.Txs() {
			t.Fatalf("%s: %d transactions, Txs says %d", name, len(p.Transactions), tp.Txs())
		}
		signer := types.LatestSignerForChainID(chainID)
		for i, raw := range p.Transactions {
			var tx types.Transaction
			if err := tx.UnmarshalBinary(raw); err != nil {
				t.Fatalf("%s tx %d: %v", name, i, err)
			}
			if tx.Type() != types.DynamicFeeTxType {
				t.Errorf("%s tx %d: type %d", name, i, tx.Type())
			}
			if _, err := types.Sender(signer, &tx); err != nil {
				t.Errorf("%s tx %d: sender: %v", name, i, err)
			}
		}
		if name == "np-12MB" && len(p.Transactions) != worstTxs {
			t.Errorf("worst case has %d transactions, want %d", len(p.Transactions), worstTxs)
		}
	}
}

func TestShapeByName(t *testing.T) {
	if _, err := ShapeByName("np-300KB"); err != nil {
		t.Error(err)
	}
	if _, err := ShapeByName("np-1GB"); err == nil {
		t.Error("unknown shape accepted")
	}
}
