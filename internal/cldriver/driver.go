package cldriver

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Defaults for the zero values of Config fields.
const (
	DefaultSlotSeconds = 12
	defaultBuildWait   = 10 * time.Millisecond
	maxBuildWait       = time.Second
	txPoolPoll         = 5 * time.Millisecond
	transferGas        = 200_000 // generous: Amsterdam reprices intrinsic and state-creation gas
)

var (
	transferTip    = big.NewInt(1_000_000_000)   // 1 gwei
	transferFeeCap = big.NewInt(100_000_000_000) // 100 gwei, far above the dev-chain base fee
)

// Config describes the builder execution client and the chain the driver extends.
type Config struct {
	Fork   Fork
	Engine *Endpoint // the builder's Engine API (authenticated)
	RPC    *Endpoint // the builder's public JSON-RPC (eth_sendRawTransaction, eth_getBlockByNumber)

	ChainID     *big.Int
	Funder      *ecdsa.PrivateKey // prefunded account that signs the transfers
	Recipient   common.Address    // transfer target; zero: the funder itself
	TxsPerBlock int               // signed transfers to submit before each build

	GenesisTime uint64 // block n gets timestamp GenesisTime + n·SlotSeconds
	SlotSeconds uint64 // 0: DefaultSlotSeconds

	FeeRecipient   common.Address
	TargetGasLimit uint64        // Amsterdam attributes only; 0: omitted
	BuildWait      time.Duration // first wait between forkchoiceUpdated and getPayload; 0: 10 ms
}

// Block is one block the driver built and imported on the builder, with the exact requests a
// beacon node would send to any other execution client to import it and make it the head.
type Block struct {
	Number       uint64
	Hash         common.Hash
	ParentHash   common.Hash
	Slot         uint64
	Timestamp    uint64
	Transactions []common.Hash // the driver's transfers, all included

	NewPayload        Request // engine_newPayloadV4/V5
	ForkchoiceUpdated Request // engine_forkchoiceUpdatedV3/V4 to this block, no attributes
}

// Head returns the block's number and hash.
func (b *Block) Head() Head { return Head{Number: b.Number, Hash: b.Hash} }

// Driver builds blocks on one builder execution client. It is not safe for concurrent use.
type Driver struct {
	cfg    Config
	signer types.Signer
	from   common.Address
	nonce  uint64
	chain  []common.Hash          // chain[n] is the hash of block n; chain[0] is genesis
	blocks []*Block               // blocks[n-1] is block n of chain
	known  map[common.Hash]*Block // every block built, on any branch
	ids    atomic.Uint64
}

// New checks that the builder is at genesis and reads the funder's nonce.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	switch {
	case cfg.Engine == nil || cfg.RPC == nil:
		return nil, errors.New("cldriver: Engine and RPC endpoints are required")
	case cfg.ChainID == nil:
		return nil, errors.New("cldriver: ChainID is required")
	case cfg.TxsPerBlock > 0 && cfg.Funder == nil:
		return nil, errors.New("cldriver: Funder is required when TxsPerBlock > 0")
	}
	if cfg.SlotSeconds == 0 {
		cfg.SlotSeconds = DefaultSlotSeconds
	}
	if cfg.BuildWait == 0 {
		cfg.BuildWait = defaultBuildWait
	}
	head, err := LatestHead(ctx, cfg.RPC)
	if err != nil {
		return nil, fmt.Errorf("cldriver: read builder head: %w", err)
	}
	if head.Number != 0 {
		return nil, fmt.Errorf("cldriver: builder head is %s, want genesis", head)
	}
	d := &Driver{
		cfg:    cfg,
		signer: types.LatestSignerForChainID(cfg.ChainID),
		chain:  []common.Hash{head.Hash},
		known:  map[common.Hash]*Block{},
	}
	if cfg.Funder != nil {
		d.from = crypto.PubkeyToAddress(cfg.Funder.PublicKey)
		if d.nonce, err = Nonce(ctx, cfg.RPC, d.from, "pending"); err != nil {
			return nil, fmt.Errorf("cldriver: read funder nonce: %w", err)
		}
	}
	return d, nil
}

// Head returns the driver's (and the builder's) current head.
func (d *Driver) Head() Head {
	n := uint64(len(d.chain) - 1)
	return Head{Number: n, Hash: d.chain[n]}
}

// Genesis returns the genesis block's hash.
func (d *Driver) Genesis() common.Hash { return d.chain[0] }

// Blocks returns the blocks of the driver's chain (genesis excluded), block 1 first.
func (d *Driver) Blocks() []*Block { return append([]*Block(nil), d.blocks...) }

// Sent returns how many transfers the funder has sent (its next nonce).
func (d *Driver) Sent() uint64 { return d.nonce }

// ForkchoiceUpdated returns a head update (no attributes) to block number n of the driver's
// chain: head n, safe n−1, finalized n−2 (never below genesis). Use it to replay or to send
// stale heads.
func (d *Driver) ForkchoiceUpdated(n uint64) (Request, error) {
	if n >= uint64(len(d.chain)) {
		return Request{}, fmt.Errorf("cldriver: no block %d (head is %d)", n, len(d.chain)-1)
	}
	return d.cfg.Fork.forkchoiceRequest(d.stateAt(n, d.chain), nil)
}

func (d *Driver) stateAt(n uint64, chain []common.Hash) ForkchoiceState {
	return ForkchoiceState{
		HeadBlockHash:      chain[n],
		SafeBlockHash:      chain[n-min(n, 1)],
		FinalizedBlockHash: chain[n-min(n, 2)],
	}
}

// BuildBlock submits the transfers, builds the next block on the builder, imports it there
// with newPayload and makes it the builder's head. The next block takes the next slot.
func (d *Driver) BuildBlock(ctx context.Context) (*Block, error) {
	number := d.Head().Number + 1
	txs, err := d.submitTransfers(ctx)
	if err != nil {
		return nil, fmt.Errorf("cldriver: block %d: %w", number, err)
	}
	b, err := d.buildOn(ctx, d.chain, d.NextSlot(), txs)
	if err != nil {
		return nil, err
	}
	if err := d.expectValidForkchoice(ctx, b.ForkchoiceUpdated, number); err != nil {
		return nil, fmt.Errorf("cldriver: block %d on builder: %w", number, err)
	}
	d.chain = append(d.chain, b.Hash)
	d.blocks = append(d.blocks, b)
	return b, nil
}

// BuildOnParent builds a block on the parent of the head, in the next slot, with no driver
// transfers, and imports it on the builder with newPayload: the block a proposer builds when
// it re-orgs a weak late head out (consensus-specs get_proposer_head), and a second branch
// for re-org tests. The build is asked for with forkchoiceUpdated(head = parent, attributes),
// which moves the builder's head back to the parent: until SetHead is called with the new
// block or the old head, the builder's head is the parent while the driver's is unchanged.
func (d *Driver) BuildOnParent(ctx context.Context) (*Block, error) {
	head := d.Head()
	if head.Number == 0 {
		return nil, errors.New("cldriver: BuildOnParent at genesis: the head has no parent")
	}
	return d.buildOn(ctx, d.chain[:head.Number], d.NextSlot(), nil)
}

// SetHead sends b's head update to the builder (VALID required) and makes b's branch the
// driver's chain: the next BuildBlock builds on b. b must be a block this driver built.
func (d *Driver) SetHead(ctx context.Context, b *Block) error {
	if d.known[b.Hash] != b {
		return fmt.Errorf("cldriver: SetHead(%s): not a block this driver built", b.Head())
	}
	var path []*Block // b and its ancestors that are not on the driver's chain, newest first
	for x := b; ; {
		path = append(path, x)
		if x.Number-1 < uint64(len(d.chain)) && d.chain[x.Number-1] == x.ParentHash {
			break
		}
		if x = d.known[x.ParentHash]; x == nil {
			return fmt.Errorf("cldriver: SetHead(%s): branch does not join the driver's chain", b.Head())
		}
	}
	if err := d.expectValidForkchoice(ctx, b.ForkchoiceUpdated, b.Number); err != nil {
		return fmt.Errorf("cldriver: head %s on builder: %w", b.Head(), err)
	}
	fork := path[len(path)-1].Number // the first block number that changes
	d.chain = d.chain[:fork:fork]
	d.blocks = d.blocks[: fork-1 : fork-1]
	for i := len(path) - 1; i >= 0; i-- {
		d.chain = append(d.chain, path[i].Hash)
		d.blocks = append(d.blocks, path[i])
	}
	return nil
}

// NextSlot is the slot of the next block BuildBlock or BuildOnParent builds: the one after
// the head's, and never before the slot numbered like the next block (so a chain without
// re-org builds has slot == number).
func (d *Driver) NextSlot() uint64 {
	head := d.Head()
	slot := head.Number + 1
	if b := d.known[head.Hash]; b != nil {
		slot = max(slot, b.Slot+1)
	}
	return slot
}

// buildOn builds a block on the last block of chain at slot, with the transactions want
// included, and imports it on the builder with newPayload. It does not change the head.
func (d *Driver) buildOn(ctx context.Context, chain []common.Hash, slot uint64, want []common.Hash) (*Block, error) {
	parent := Head{Number: uint64(len(chain) - 1), Hash: chain[len(chain)-1]}
	number := parent.Number + 1
	timestamp := d.cfg.GenesisTime + slot*d.cfg.SlotSeconds
	beaconRoot := beaconRootFor(slot)
	env, err := d.buildPayload(ctx, chain, slot, timestamp, beaconRoot, want)
	if err != nil {
		return nil, fmt.Errorf("cldriver: block %d: %w", number, err)
	}
	var sum payloadSummary
	if err := json.Unmarshal(env.ExecutionPayload, &sum); err != nil {
		return nil, fmt.Errorf("cldriver: block %d: decode payload: %w", number, err)
	}
	newPayload, err := d.cfg.Fork.newPayloadRequest(env, beaconRoot)
	if err != nil {
		return nil, err
	}
	if err := d.expectValidPayload(ctx, newPayload, number); err != nil {
		return nil, fmt.Errorf("cldriver: block %d on builder: %w", number, err)
	}
	withBlock := append(chain[:len(chain):len(chain)], sum.BlockHash)
	fcu, err := d.cfg.Fork.forkchoiceRequest(d.stateAt(number, withBlock), nil)
	if err != nil {
		return nil, err
	}
	b := &Block{
		Number:            number,
		Hash:              sum.BlockHash,
		ParentHash:        parent.Hash,
		Slot:              slot,
		Timestamp:         timestamp,
		Transactions:      want,
		NewPayload:        newPayload,
		ForkchoiceUpdated: fcu,
	}
	d.known[b.Hash] = b
	return b, nil
}

// buildPayload asks the builder for a payload on parent until one carries every transaction
// in want. geth hands out the empty block if asked before the full one is ready, and a
// delivered payload stops building, so each retry starts a new build (another prevRandao)
// and waits twice as long.
func (d *Driver) buildPayload(ctx context.Context, chain []common.Hash, slot, timestamp uint64, beaconRoot common.Hash, want []common.Hash) (payloadEnvelope, error) {
	parent := Head{Number: uint64(len(chain) - 1), Hash: chain[len(chain)-1]}
	wait := d.cfg.BuildWait
	for attempt := uint64(0); ; attempt++ {
		attrs := d.attributes(slot, attempt, timestamp, beaconRoot)
		id, err := d.startBuild(ctx, chain, attrs)
		if err != nil {
			return payloadEnvelope{}, err
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return payloadEnvelope{}, fmt.Errorf("waiting for the builder to include %d transactions: %w", len(want), err)
		}
		env, sum, err := d.getPayload(ctx, id)
		if err != nil {
			return payloadEnvelope{}, err
		}
		if sum.ParentHash != parent.Hash || uint64(sum.BlockNumber) != parent.Number+1 || uint64(sum.Timestamp) != timestamp {
			return payloadEnvelope{}, fmt.Errorf("builder built #%d on %s at %d, want #%d on %s at %d",
				sum.BlockNumber, sum.ParentHash.TerminalString(), sum.Timestamp, parent.Number+1, parent.Hash.TerminalString(), timestamp)
		}
		if missing := missingTransactions(sum.Transactions, want); missing == 0 {
			return env, nil
		}
		wait = min(2*wait, maxBuildWait)
	}
}

func (d *Driver) attributes(slot, attempt, timestamp uint64, beaconRoot common.Hash) *PayloadAttributes {
	attrs := &PayloadAttributes{
		Timestamp:             hexutil.Uint64(timestamp),
		PrevRandao:            prevRandaoFor(slot, attempt),
		SuggestedFeeRecipient: d.cfg.FeeRecipient,
		Withdrawals:           []json.RawMessage{},
		ParentBeaconBlockRoot: beaconRoot,
	}
	if d.cfg.Fork == Amsterdam {
		s := hexutil.Uint64(slot)
		attrs.SlotNumber = &s
		if d.cfg.TargetGasLimit != 0 {
			g := hexutil.Uint64(d.cfg.TargetGasLimit)
			attrs.TargetGasLimit = &g
		}
	}
	return attrs
}

// startBuild sends forkchoiceUpdated(head = the last block of chain, attrs) and returns the
// raw payload id.
func (d *Driver) startBuild(ctx context.Context, chain []common.Hash, attrs *PayloadAttributes) (json.RawMessage, error) {
	req, err := d.cfg.Fork.forkchoiceRequest(d.stateAt(uint64(len(chain)-1), chain), attrs)
	if err != nil {
		return nil, err
	}
	var resp ForkchoiceResponse
	if err := d.cfg.Engine.Send(ctx, req, d.nextID(), &resp); err != nil {
		return nil, err
	}
	if resp.PayloadStatus.Status != StatusValid {
		return nil, fmt.Errorf("%s with attributes: %s", req.Method, resp.PayloadStatus)
	}
	if len(resp.PayloadID) == 0 || string(resp.PayloadID) == "null" {
		return nil, fmt.Errorf("%s with attributes: no payloadId", req.Method)
	}
	return resp.PayloadID, nil
}

func (d *Driver) getPayload(ctx context.Context, id json.RawMessage) (payloadEnvelope, payloadSummary, error) {
	req, err := NewRequest(d.cfg.Fork.getPayloadMethod(), id)
	if err != nil {
		return payloadEnvelope{}, payloadSummary{}, err
	}
	var env payloadEnvelope
	if err := d.cfg.Engine.Send(ctx, req, d.nextID(), &env); err != nil {
		return payloadEnvelope{}, payloadSummary{}, err
	}
	var sum payloadSummary
	if err := json.Unmarshal(env.ExecutionPayload, &sum); err != nil {
		return payloadEnvelope{}, payloadSummary{}, fmt.Errorf("%s: decode executionPayload: %w", req.Method, err)
	}
	return env, sum, nil
}

func (d *Driver) expectValidPayload(ctx context.Context, req Request, number uint64) error {
	var st PayloadStatus
	if err := d.cfg.Engine.Send(ctx, req, StringID(fmt.Sprintf("np%d", number)), &st); err != nil {
		return err
	}
	if st.Status != StatusValid {
		return fmt.Errorf("%s: %s", req.Method, st)
	}
	return nil
}

func (d *Driver) expectValidForkchoice(ctx context.Context, req Request, number uint64) error {
	var resp ForkchoiceResponse
	if err := d.cfg.Engine.Send(ctx, req, StringID(fmt.Sprintf("fcu%d", number)), &resp); err != nil {
		return err
	}
	if resp.PayloadStatus.Status != StatusValid {
		return fmt.Errorf("%s: %s", req.Method, resp.PayloadStatus)
	}
	return nil
}

// submitTransfers signs and sends TxsPerBlock transfers and waits until the builder's pool
// has promoted them (its pending nonce caught up): eth_sendRawTransaction returns before the
// pool's asynchronous promotion, and the miner only takes pending transactions.
func (d *Driver) submitTransfers(ctx context.Context) ([]common.Hash, error) {
	if d.cfg.TxsPerBlock == 0 {
		return nil, nil
	}
	to := d.cfg.Recipient
	if to == (common.Address{}) {
		to = d.from
	}
	hashes := make([]common.Hash, 0, d.cfg.TxsPerBlock)
	for range d.cfg.TxsPerBlock {
		tx, err := types.SignNewTx(d.cfg.Funder, d.signer, &types.DynamicFeeTx{
			ChainID:   d.cfg.ChainID,
			Nonce:     d.nonce,
			GasTipCap: transferTip,
			GasFeeCap: transferFeeCap,
			Gas:       transferGas,
			To:        &to,
			Value:     big.NewInt(int64(d.nonce) + 1),
		})
		if err != nil {
			return nil, fmt.Errorf("sign transfer: %w", err)
		}
		if err := SendTransaction(ctx, d.cfg.RPC, tx); err != nil {
			return nil, fmt.Errorf("send transfer nonce %d: %w", d.nonce, err)
		}
		d.nonce++
		hashes = append(hashes, tx.Hash())
	}
	for {
		pending, err := Nonce(ctx, d.cfg.RPC, d.from, "pending")
		if err != nil {
			return nil, err
		}
		if pending >= d.nonce {
			return hashes, nil
		}
		if err := sleepCtx(ctx, txPoolPoll); err != nil {
			return nil, fmt.Errorf("builder pool pending nonce stuck at %d, want %d: %w", pending, d.nonce, err)
		}
	}
}

func (d *Driver) nextID() ID { return NumberID(d.ids.Add(1)) }

// missingTransactions counts the hashes in want that are not among the encoded transactions.
// A typed transaction's hash is the keccak of its binary (EIP-2718) encoding.
func missingTransactions(encoded []hexutil.Bytes, want []common.Hash) int {
	have := make(map[common.Hash]bool, len(encoded))
	for _, tx := range encoded {
		have[crypto.Keccak256Hash(tx)] = true
	}
	missing := 0
	for _, h := range want {
		if !have[h] {
			missing++
		}
	}
	return missing
}

// beaconRootFor derives a stand-in parent beacon block root from the slot.
func beaconRootFor(slot uint64) common.Hash {
	return crypto.Keccak256Hash([]byte("cldriver beacon root"), binary.BigEndian.AppendUint64(nil, slot))
}

// prevRandaoFor derives prevRandao from the slot and the build attempt, so every retry is a
// distinct build (geth keys payloads by their attributes).
func prevRandaoFor(slot, attempt uint64) common.Hash {
	b := binary.BigEndian.AppendUint64(nil, slot)
	b = binary.BigEndian.AppendUint64(b, attempt)
	return crypto.Keccak256Hash([]byte("cldriver prevrandao"), b)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
