package loadgen

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Mix says how a block's transaction bytes are split into transactions.
type Mix uint8

// Transaction mixes.
const (
	// MixTypical is a mainnet-like block: mostly transfers and token calls of 100–200 bytes,
	// some contract calls of up to 1.5 KB, a few of up to 10 KB.
	MixTypical Mix = iota
	// MixLarge is a calldata-heavy block: transactions of 10–120 KB of random calldata.
	MixLarge
	// MixWorst is the worst case today (reference/engine-api.md §11): four transactions of
	// zero-byte calldata filling the block.
	MixWorst
)

// chainID is mainnet's; the transactions are never executed.
var chainID = big.NewInt(1)

// txHexCost is what one transaction of raw length n adds to a JSON array of hex strings:
// the hex digits, "0x", two quotes and a comma.
func txHexCost(n int) int { return 2*n + 5 }

// SignedTxs returns EIP-1559 transactions, RLP-encoded and signed (types.Transaction.
// MarshalBinary), whose hex encoding as JSON array elements takes about hexBytes bytes. The
// same seed gives the same transactions.
func SignedTxs(hexBytes int, mix Mix, seed uint64) ([][]byte, error) {
	if hexBytes <= 0 {
		return nil, nil
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	key, err := deterministicKey(seed)
	if err != nil {
		return nil, err
	}
	signer := types.LatestSignerForChainID(chainID)
	var out [][]byte
	left := hexBytes
	for nonce := uint64(0); left > 0 && nonce < maxTxs; nonce++ {
		var tx []byte
		last := false
		if mix == MixWorst {
			last = len(out) == worstTxs-1
			tx, err = fillTx(signer, key, rng, mix, nonce, left/(worstTxs-len(out)))
		} else if size := calldataSize(mix, rng); txHexCost(size+2*txOverhead) >= left {
			// The last transaction takes what is left, so the total lands on the target.
			last = true
			tx, err = fillTx(signer, key, rng, mix, nonce, left)
		} else {
			tx, err = signTx(signer, key, rng, mix, nonce, size)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tx)
		left -= txHexCost(len(tx))
		if last {
			break
		}
	}
	return out, nil
}

// worstTxs is how many transactions MixWorst splits its bytes into; maxTxs bounds any block.
const (
	worstTxs = 4
	maxTxs   = 100_000
)

// txOverhead is roughly what a signed EIP-1559 transaction adds to its calldata.
const txOverhead = 120

// fillTx signs one transaction whose hex cost is as close to want as the encoding allows.
func fillTx(signer types.Signer, key *ecdsa.PrivateKey, rng *rand.Rand, mix Mix, nonce uint64, want int) ([]byte, error) {
	size := max(0, (want-5)/2-txOverhead)
	var tx []byte
	for range 3 { // the RLP length prefixes settle after one or two corrections
		var err error
		tx, err = signTx(signer, key, rng, mix, nonce, size)
		if err != nil {
			return nil, err
		}
		diff := (want - txHexCost(len(tx))) / 2
		if diff == 0 || size+diff < 0 {
			break
		}
		size += diff
	}
	return tx, nil
}

// calldataSize draws a calldata length for a transaction of a mix (not MixWorst).
func calldataSize(mix Mix, rng *rand.Rand) int {
	if mix == MixLarge {
		return 10_000 + rng.IntN(110_000)
	}
	switch p := rng.IntN(100); {
	case p < 60:
		return 4 + rng.IntN(100) // transfers and token calls
	case p < 92:
		return 200 + rng.IntN(1300) // swaps and other contract calls
	default:
		return 2_000 + rng.IntN(8_000)
	}
}

// signTx signs one EIP-1559 transaction with size bytes of calldata (zeros for MixWorst,
// random otherwise) and returns its binary encoding.
func signTx(signer types.Signer, key *ecdsa.PrivateKey, rng *rand.Rand, mix Mix, nonce uint64, size int) ([]byte, error) {
	data := make([]byte, size)
	if mix != MixWorst {
		fillRandom(rng, data)
	}
	var to common.Address
	fillRandom(rng, to[:])
	gas := min(uint64(21_000+40*size), 1<<24) // EIP-7825 cap
	tx := types.NewTx(&types.DynamicFeeTx{
		ChainID:   chainID,
		Nonce:     nonce,
		GasTipCap: big.NewInt(1_000_000_000),
		GasFeeCap: big.NewInt(30_000_000_000),
		Gas:       gas,
		To:        &to,
		Value:     big.NewInt(int64(rng.IntN(1_000_000))),
		Data:      data,
	})
	signed, err := types.SignTx(tx, signer, key)
	if err != nil {
		return nil, fmt.Errorf("sign transaction: %w", err)
	}
	return signed.MarshalBinary()
}

// deterministicKey derives a secp256k1 key from seed.
func deterministicKey(seed uint64) (*ecdsa.PrivateKey, error) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seed)
	k, err := crypto.ToECDSA(crypto.Keccak256(b[:], []byte("sync-proxy-load")))
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	return k, nil
}

// fillRandom fills b from rng.
func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rng.Uint64())
		copy(b[i:], w[:])
	}
}
