package cldriver

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// Head is a block's number and hash.
type Head struct {
	Number uint64
	Hash   common.Hash
}

func (h Head) String() string { return fmt.Sprintf("#%d %s", h.Number, h.Hash.TerminalString()) }

// BlockHead reads the number and hash of a block ("latest", "0x0", ...) over eth_getBlockByNumber.
func BlockHead(ctx context.Context, ep *Endpoint, block string) (Head, error) {
	var b *struct {
		Number hexutil.Uint64 `json:"number"`
		Hash   common.Hash    `json:"hash"`
	}
	if err := ep.Call(ctx, &b, "eth_getBlockByNumber", block, false); err != nil {
		return Head{}, err
	}
	if b == nil {
		return Head{}, fmt.Errorf("eth_getBlockByNumber(%s): no such block", block)
	}
	return Head{Number: uint64(b.Number), Hash: b.Hash}, nil
}

// LatestHead reads the canonical head over eth_getBlockByNumber("latest").
func LatestHead(ctx context.Context, ep *Endpoint) (Head, error) {
	return BlockHead(ctx, ep, "latest")
}

// Nonce reads an account's nonce at block ("latest", "pending") over eth_getTransactionCount.
func Nonce(ctx context.Context, ep *Endpoint, addr common.Address, block string) (uint64, error) {
	var n hexutil.Uint64
	if err := ep.Call(ctx, &n, "eth_getTransactionCount", addr, block); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// SendTransaction submits a signed transaction over eth_sendRawTransaction.
func SendTransaction(ctx context.Context, ep *Endpoint, tx *types.Transaction) error {
	raw, err := tx.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode tx: %w", err)
	}
	var hash common.Hash
	if err := ep.Call(ctx, &hash, "eth_sendRawTransaction", hexutil.Bytes(raw)); err != nil {
		return err
	}
	if hash != tx.Hash() {
		return fmt.Errorf("eth_sendRawTransaction returned %s, want %s", hash, tx.Hash())
	}
	return nil
}
