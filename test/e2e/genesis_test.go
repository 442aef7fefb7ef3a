package e2e

import (
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"

	"github.com/sync-proxy/sync-proxy/internal/cldriver"
)

const (
	testChainID     = 1337
	genesisGasLimit = 60_000_000
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
	genesisPath string
}

// genesisFile is geth's genesis JSON (core.Genesis), spelled out here because package core
// pulls in modules that go.sum does not list.
type genesisFile struct {
	Config     *params.ChainConfig `json:"config"`
	Nonce      hexutil.Uint64      `json:"nonce"`
	Timestamp  hexutil.Uint64      `json:"timestamp"`
	ExtraData  hexutil.Bytes       `json:"extraData"`
	GasLimit   hexutil.Uint64      `json:"gasLimit"`
	Difficulty *hexutil.Big        `json:"difficulty"`
	Mixhash    common.Hash         `json:"mixHash"`
	Coinbase   common.Address      `json:"coinbase"`
	Alloc      types.GenesisAlloc  `json:"alloc"`
	BaseFee    *hexutil.Big        `json:"baseFeePerGas"`
}

// newTestChain writes a genesis for fork with a fresh prefunded key.
func newTestChain(t *testing.T, fork cldriver.Fork, genesisTime uint64) *testChain {
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
		genesisPath: filepath.Join(t.TempDir(), "genesis.json"),
	}
	raw, err := json.MarshalIndent(c.genesis(), "", "  ")
	if err != nil {
		t.Fatalf("marshal genesis: %v", err)
	}
	if err := os.WriteFile(c.genesisPath, raw, 0o644); err != nil {
		t.Fatalf("write genesis: %v", err)
	}
	return c
}

func (c *testChain) funderAddress() common.Address { return crypto.PubkeyToAddress(c.funder.PublicKey) }

func (c *testChain) genesis() *genesisFile {
	return &genesisFile{
		Config:     chainConfig(c.fork, c.chainID),
		Timestamp:  hexutil.Uint64(c.genesisTime),
		ExtraData:  []byte{},
		GasLimit:   genesisGasLimit,
		Difficulty: (*hexutil.Big)(big.NewInt(0)),
		Alloc:      genesisAlloc(c.funderAddress()),
		BaseFee:    (*hexutil.Big)(big.NewInt(params.InitialBaseFee)),
	}
}

// chainConfig is merged at genesis with every fork up to Osaka (and Amsterdam if asked) at
// block 0 / time 0. geth wants a blobSchedule entry for cancun and prague; Osaka and Amsterdam
// reuse the prague entry (there is no osaka key).
func chainConfig(fork cldriver.Fork, chainID *big.Int) *params.ChainConfig {
	zero := uint64(0)
	cfg := &params.ChainConfig{
		ChainID:                 chainID,
		HomesteadBlock:          big.NewInt(0),
		EIP150Block:             big.NewInt(0),
		EIP155Block:             big.NewInt(0),
		EIP158Block:             big.NewInt(0),
		ByzantiumBlock:          big.NewInt(0),
		ConstantinopleBlock:     big.NewInt(0),
		PetersburgBlock:         big.NewInt(0),
		IstanbulBlock:           big.NewInt(0),
		MuirGlacierBlock:        big.NewInt(0),
		BerlinBlock:             big.NewInt(0),
		LondonBlock:             big.NewInt(0),
		ArrowGlacierBlock:       big.NewInt(0),
		GrayGlacierBlock:        big.NewInt(0),
		MergeNetsplitBlock:      big.NewInt(0),
		TerminalTotalDifficulty: big.NewInt(0),
		ShanghaiTime:            &zero,
		CancunTime:              &zero,
		PragueTime:              &zero,
		OsakaTime:               &zero,
		BlobScheduleConfig: &params.BlobScheduleConfig{
			Cancun: params.DefaultCancunBlobConfig,
			Prague: params.DefaultPragueBlobConfig,
		},
	}
	if fork == cldriver.Amsterdam {
		cfg.AmsterdamTime = &zero
	}
	return cfg
}

// genesisAlloc mirrors geth's developer genesis (core.DeveloperGenesisBlock): 1 wei in each
// precompile, the system contracts the forks call (EIP-4788 beacon roots, EIP-2935 history,
// EIP-7002 withdrawals, EIP-7251 consolidations, EIP-8282 builder requests, EIP-7997 factory),
// and the funder.
func genesisAlloc(funder common.Address) types.GenesisAlloc {
	alloc := types.GenesisAlloc{}
	for i := 1; i <= 0x11; i++ {
		alloc[common.BytesToAddress([]byte{byte(i)})] = types.Account{Balance: big.NewInt(1)}
	}
	alloc[common.BytesToAddress([]byte{0x1, 0x00})] = types.Account{Balance: big.NewInt(1)} // P256Verify
	system := map[common.Address][]byte{
		params.BeaconRootsAddress:          params.BeaconRootsCode,
		params.HistoryStorageAddress:       params.HistoryStorageCode,
		params.WithdrawalQueueAddress:      params.WithdrawalQueueCode,
		params.ConsolidationQueueAddress:   params.ConsolidationQueueCode,
		params.BuilderDepositAddress:       params.BuilderDepositCode,
		params.BuilderExitAddress:          params.BuilderExitCode,
		params.DeterministicFactoryAddress: params.DeterministicFactoryCode,
	}
	for addr, code := range system {
		alloc[addr] = types.Account{Nonce: 1, Code: code, Balance: big.NewInt(0)}
	}
	alloc[funder] = types.Account{Balance: funderBalance}
	return alloc
}
