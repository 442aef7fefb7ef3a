package loadgen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Kind is what a request asks for.
type Kind uint8

// Request kinds.
const (
	KindNewPayload      Kind = iota // engine_newPayloadV4
	KindForkchoice                  // engine_forkchoiceUpdatedV3 without attributes
	KindForkchoiceAttrs             // engine_forkchoiceUpdatedV3 with payload attributes
)

// String returns the kind's short name.
func (k Kind) String() string {
	switch k {
	case KindNewPayload:
		return "newPayload"
	case KindForkchoice:
		return "forkchoice"
	case KindForkchoiceAttrs:
		return "forkchoice+attrs"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Method names the templates use (Osaka/Prague versions, reference/engine-api.md §2).
const (
	MethodNewPayload = "engine_newPayloadV4"
	MethodForkchoice = "engine_forkchoiceUpdatedV3"
)

// Shape is a named request: a kind and, for newPayload, the body size aimed at.
type Shape struct {
	Name string
	Kind Kind
	Size int  // target body size in bytes; 0 is an empty block
	Mix  Mix  // how the transaction bytes are split
	Wide bool // 16 withdrawals and a few blob hashes, as a typical block carries
}

// Shapes returns the standard shapes: newPayloadV4 of an empty block (~1.4 KB), a typical
// block (300 KB), a large one (2 MB) and the worst case today (12 MB), and forkchoiceUpdatedV3
// without and with payload attributes (reference/engine-api.md §11).
func Shapes() []Shape {
	return []Shape{
		{Name: "np-1.4KB", Kind: KindNewPayload},
		{Name: "np-300KB", Kind: KindNewPayload, Size: 300_000, Mix: MixTypical, Wide: true},
		{Name: "np-2MB", Kind: KindNewPayload, Size: 2_000_000, Mix: MixLarge, Wide: true},
		{Name: "np-12MB", Kind: KindNewPayload, Size: 12_000_000, Mix: MixWorst, Wide: true},
		{Name: "fcu", Kind: KindForkchoice},
		{Name: "fcu-attrs", Kind: KindForkchoiceAttrs},
	}
}

// ShapeByName finds a standard shape.
func ShapeByName(name string) (Shape, error) {
	var names []string
	for _, s := range Shapes() {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return Shape{}, fmt.Errorf("unknown shape %q (want one of %s)", name, strings.Join(names, ", "))
}

// Widths of the fields Stamp rewrites in place. Numbers keep a fixed width so that a body
// never changes length: ids are 10 decimal digits, block numbers and timestamps 8 hex digits
// without a leading zero.
const (
	idWidth   = 10
	idBase    = 1_000_000_000
	idSpan    = 9_000_000_000
	qtyWidth  = 8
	numBase   = 0x1000_0000
	timeBase  = 0x6A00_0000 // May 2026
	slotSecs  = 12
	seqSpan   = (0xFFFF_FFFF - timeBase) / slotSecs // keeps both quantities within 8 hex digits
	hashWidth = 64
)

// Domains keep the hashes of different request kinds apart.
const (
	domainBlock byte = 'b'
	domainHead  byte = 'h'
)

// Template is a rendered request whose id, block hash, parent hash, block number and
// timestamp (or forkchoice head and attribute timestamp) are rewritten in place per request.
type Template struct {
	Shape Shape
	body  []byte
	seed  [23]byte // hash prefix shared by every request of this template

	idAt, hashAt, parentAt, numberAt, timeAt int // offsets of the hex digits; -1 if absent
	txs                                      int
}

// NewTemplate renders shape. The seed makes the transactions and hashes reproducible; two
// templates with different seeds never produce the same block hash.
func NewTemplate(shape Shape, seed uint64) (*Template, error) {
	t := &Template{Shape: shape, idAt: -1, hashAt: -1, parentAt: -1, numberAt: -1, timeAt: -1}
	sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(shape.Name), seed))
	copy(t.seed[:], sum[:])
	switch shape.Kind {
	case KindNewPayload:
		return t, t.renderNewPayload(seed)
	case KindForkchoice, KindForkchoiceAttrs:
		t.renderForkchoice()
		return t, nil
	}
	return nil, fmt.Errorf("unknown request kind %v", shape.Kind)
}

// Len is the body length; every stamped body has it.
func (t *Template) Len() int { return len(t.body) }

// Txs is the number of transactions in a newPayload body.
func (t *Template) Txs() int { return t.txs }

// Clone returns a private copy of the body for one sender to Stamp.
func (t *Template) Clone() []byte { return append([]byte(nil), t.body...) }

// Stamp rewrites buf (a Clone of t) for request number seq and returns the id as written,
// a slice of buf. It allocates nothing.
func (t *Template) Stamp(buf []byte, seq uint64) []byte {
	putDecimal(buf[t.idAt:t.idAt+idWidth], idBase+seq%idSpan)
	s := seq % seqSpan
	domain := domainBlock
	if t.Shape.Kind != KindNewPayload {
		domain = domainHead
	}
	putHash(buf[t.hashAt:], t.seed, domain, seq)
	if t.parentAt >= 0 {
		putHash(buf[t.parentAt:], t.seed, domain, seq-1)
	}
	if t.numberAt >= 0 {
		putHex(buf[t.numberAt:t.numberAt+qtyWidth], numBase+s)
	}
	if t.timeAt >= 0 {
		putHex(buf[t.timeAt:t.timeAt+qtyWidth], timeBase+slotSecs*s)
	}
	return buf[t.idAt : t.idAt+idWidth]
}

// BlockHash is the block hash (newPayload) or head (forkchoiceUpdated) Stamp writes for seq.
func (t *Template) BlockHash(seq uint64) [32]byte {
	if t.Shape.Kind != KindNewPayload {
		return hashFor(t.seed, domainHead, seq)
	}
	return hashFor(t.seed, domainBlock, seq)
}

// hashFor is the hash of request seq: the template's seed, a domain byte and seq.
func hashFor(seed [23]byte, domain byte, seq uint64) [32]byte {
	var h [32]byte
	copy(h[:], seed[:])
	h[23] = domain
	binary.BigEndian.PutUint64(h[24:], seq)
	return h
}

func putHash(dst []byte, seed [23]byte, domain byte, seq uint64) {
	h := hashFor(seed, domain, seq)
	hex.Encode(dst[:hashWidth], h[:])
}

// putDecimal writes v right-aligned in dst with leading zeros (dst's first digit is never
// zero for ids, which start at idBase).
func putDecimal(dst []byte, v uint64) {
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
}

// putHex writes v as len(dst) lowercase hex digits.
func putHex(dst []byte, v uint64) {
	const digits = "0123456789abcdef"
	for i := len(dst) - 1; i >= 0; i-- {
		dst[i] = digits[v&0xf]
		v >>= 4
	}
}

// writer renders JSON and remembers where the stamped fields are.
type writer struct{ buf []byte }

func (w *writer) raw(s string) { w.buf = append(w.buf, s...) }

// field writes `"name":"0x` + width placeholder digits + `"` and returns the digits' offset.
func (w *writer) field(name string, width int) int {
	w.raw(`"` + name + `":"0x`)
	at := len(w.buf)
	w.buf = append(w.buf, strings.Repeat("1", width)...)
	w.raw(`"`)
	return at
}

// data writes `"name":"0x<hex of b>"`.
func (w *writer) data(name string, b []byte) {
	w.raw(`"` + name + `":`)
	w.hexString(b)
}

func (w *writer) hexString(b []byte) {
	w.raw(`"0x`)
	w.buf = hex.AppendEncode(w.buf, b)
	w.raw(`"`)
}

func (w *writer) qty(name string, v uint64) {
	w.raw(`"` + name + `":"0x` + strconv.FormatUint(v, 16) + `"`)
}

// header writes the envelope up to the params array and returns the id's offset.
func (w *writer) header(method string) int {
	w.raw(`{"jsonrpc":"2.0","id":`)
	at := len(w.buf)
	w.raw(strconv.FormatUint(idBase, 10))
	w.raw(`,"method":"` + method + `","params":[`)
	return at
}

// fixedBytes returns n bytes derived from the template seed and a label.
func (t *Template) fixedBytes(label string, n int) []byte {
	out := make([]byte, 0, n)
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256(append(append(t.seed[:], label...), byte(i)))
		out = append(out, s[:]...)
	}
	return out[:n]
}

func (t *Template) renderNewPayload(seed uint64) error {
	var w writer
	t.idAt = w.header(MethodNewPayload)
	w.raw(`{`)
	t.parentAt = w.field("parentHash", hashWidth)
	w.raw(`,`)
	w.data("feeRecipient", t.fixedBytes("fee", 20))
	w.raw(`,`)
	w.data("stateRoot", t.fixedBytes("state", 32))
	w.raw(`,`)
	w.data("receiptsRoot", t.fixedBytes("receipts", 32))
	w.raw(`,`)
	w.data("logsBloom", t.fixedBytes("bloom", 256))
	w.raw(`,`)
	w.data("prevRandao", t.fixedBytes("randao", 32))
	w.raw(`,`)
	t.numberAt = w.field("blockNumber", qtyWidth)
	w.raw(`,`)
	w.qty("gasLimit", 60_000_000)
	w.raw(`,`)
	w.qty("gasUsed", 29_876_543)
	w.raw(`,`)
	t.timeAt = w.field("timestamp", qtyWidth)
	w.raw(`,`)
	w.data("extraData", []byte("sync-proxy-load"))
	w.raw(`,`)
	w.qty("baseFeePerGas", 1_234_567_890)
	w.raw(`,`)
	t.hashAt = w.field("blockHash", hashWidth)
	w.raw(`,"transactions":[`)
	head := len(w.buf)
	tail := t.renderPayloadTail()
	if err := t.renderTxs(&w, t.Shape.Size-head-len(tail), seed); err != nil {
		return err
	}
	w.buf = append(w.buf, tail...)
	t.body = w.buf
	return nil
}

// renderTxs appends the transactions (without the closing bracket) taking about room bytes.
func (t *Template) renderTxs(w *writer, room int, seed uint64) error {
	if t.Shape.Size == 0 || room <= 0 {
		return nil
	}
	txs, err := SignedTxs(room+1, t.Shape.Mix, seed) // +1: the first transaction has no comma
	if err != nil {
		return err
	}
	for i, tx := range txs {
		if i > 0 {
			w.raw(`,`)
		}
		w.hexString(tx)
	}
	t.txs = len(txs)
	return nil
}

// renderPayloadTail renders what follows the transactions: withdrawals, blob gas, and
// params 1–3 (blob versioned hashes, parent beacon block root, execution requests).
func (t *Template) renderPayloadTail() []byte {
	var w writer
	w.raw(`],"withdrawals":`)
	blobs := 0
	if t.Shape.Wide {
		t.renderWithdrawals(&w)
		blobs = 3
	} else {
		w.raw(`[]`)
	}
	w.raw(`,`)
	w.qty("blobGasUsed", uint64(blobs)*131_072)
	w.raw(`,`)
	w.qty("excessBlobGas", 0)
	w.raw(`},[`)
	for i := range blobs {
		if i > 0 {
			w.raw(`,`)
		}
		h := t.fixedBytes("blob"+strconv.Itoa(i), 32)
		h[0] = 0x01 // KZG version byte
		w.hexString(h)
	}
	w.raw(`],`)
	w.hexString(t.fixedBytes("beacon-root", 32))
	w.raw(`,[]]}`)
	return w.buf
}

// renderWithdrawals writes 16 withdrawals, as a full block carries.
func (t *Template) renderWithdrawals(w *writer) {
	w.raw(`[`)
	for i := range 16 {
		if i > 0 {
			w.raw(`,`)
		}
		w.raw(`{`)
		w.qty("index", 90_000_000+uint64(i))
		w.raw(`,`)
		w.qty("validatorIndex", 1_000_000+uint64(i)*997)
		w.raw(`,`)
		w.data("address", t.fixedBytes("wd"+strconv.Itoa(i), 20))
		w.raw(`,`)
		w.qty("amount", 18_000_000+uint64(i)*1_111)
		w.raw(`}`)
	}
	w.raw(`]`)
}

func (t *Template) renderForkchoice() {
	var w writer
	t.idAt = w.header(MethodForkchoice)
	w.raw(`{`)
	t.hashAt = w.field("headBlockHash", hashWidth)
	w.raw(`,`)
	w.data("safeBlockHash", t.fixedBytes("safe", 32))
	w.raw(`,`)
	w.data("finalizedBlockHash", t.fixedBytes("finalized", 32))
	w.raw(`},`)
	if t.Shape.Kind != KindForkchoiceAttrs {
		w.raw(`null]}`)
		t.body = w.buf
		return
	}
	w.raw(`{`)
	t.timeAt = w.field("timestamp", qtyWidth)
	w.raw(`,`)
	w.data("prevRandao", t.fixedBytes("randao", 32))
	w.raw(`,`)
	w.data("suggestedFeeRecipient", t.fixedBytes("fee", 20))
	w.raw(`,"withdrawals":`)
	t.renderWithdrawals(&w)
	w.raw(`,`)
	w.data("parentBeaconBlockRoot", t.fixedBytes("beacon-root", 32))
	w.raw(`}]}`)
	t.body = w.buf
}
