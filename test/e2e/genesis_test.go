package e2e

import (
	"crypto/ecdsa"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
	"github.com/sync-proxy/sync-proxy/internal/gethproc"
)

const (
	testChainID     = 1337
	genesisGasLimit = gethproc.DefaultGasLimit
	slotSeconds     = 12
)

// funderBalance is the prefunded test account's balance: 10^30 wei.
var funderBalance = new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)

// testChain is one genesis written to disk plus the prefunded key generated for it.
type testChain struct {
	fork        cldriver.Fork
	chainID     *big.Int
	funder      *ecdsa.PrivateKey
	genesisTime uint64
	slotSeconds uint64
	genesisPath string
}

// newTestChain writes a genesis for fork with a fresh prefunded key and 12 s virtual slots.
func newTestChain(t *testing.T, fork cldriver.Fork, genesisTime uint64) *testChain {
	t.Helper()
	gf := gethproc.Osaka
	if fork == cldriver.Amsterdam {
		gf = gethproc.Amsterdam
	}
	return newGenesis(t, gf, fork, genesisTime)
}

// newGenesis writes a genesis activating every fork up to gf at time 0.
func newGenesis(t *testing.T, gf gethproc.Fork, fork cldriver.Fork, genesisTime uint64) *testChain {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatalf("generate funder key: %v", err)
	}
	c := &testChain{
		fork:        fork,
		chainID:     big.NewInt(testChainID),
		funder:      key,
		genesisTime: genesisTime,
		slotSeconds: slotSeconds,
		genesisPath: filepath.Join(t.TempDir(), "genesis.json"),
	}
	g := gethproc.Genesis{
		Fork:    gf,
		ChainID: c.chainID,
		Time:    genesisTime,
		Funded:  []common.Address{c.funderAddress()},
		Balance: funderBalance,
	}
	if err := g.WriteFile(c.genesisPath); err != nil {
		t.Fatalf("write genesis: %v", err)
	}
	return c
}

func (c *testChain) funderAddress() common.Address { return crypto.PubkeyToAddress(c.funder.PublicKey) }

// newWallClockChain writes an Osaka genesis whose slots follow the wall clock: slot n starts
// at genesis + n·slot, with genesis lead from now, so that slot 1 comes after start-up.
func newWallClockChain(t *testing.T, slot, lead time.Duration) *testChain {
	t.Helper()
	if slot%time.Second != 0 {
		t.Fatalf("slot %v: payload timestamps are whole seconds", slot)
	}
	c := newTestChain(t, cldriver.Osaka, uint64(time.Now().Add(lead).Unix()))
	c.slotSeconds = uint64(slot / time.Second)
	return c
}
