package gethproc

import (
	"encoding/json"
	"fmt"
	"math/big"
	"os"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// Fork is the newest fork a genesis activates at time 0.
type Fork int

const (
	// Shanghai stops at Shanghai (no cancunTime): the Engine API V2 generation, what
	// Capella-only beacon nodes such as Lodestar v1.5.1 speak.
	Shanghai Fork = iota
	// Osaka activates every fork up to Osaka.
	Osaka
	// Amsterdam activates every fork up to Amsterdam.
	Amsterdam
)

func (f Fork) String() string {
	switch f {
	case Shanghai:
		return "shanghai"
	case Osaka:
		return "osaka"
	case Amsterdam:
		return "amsterdam"
	}
	return fmt.Sprintf("fork(%d)", int(f))
}

// DefaultGasLimit is the genesis gas limit.
const DefaultGasLimit = 60_000_000

// Genesis describes a chain merged at genesis.
type Genesis struct {
	Fork     Fork
	ChainID  *big.Int
	Time     uint64 // the genesis block's timestamp (the beacon genesis time for real BNs)
	GasLimit uint64 // 0: DefaultGasLimit
	// Alloc funds these accounts with Balance each, on top of the system contracts.
	Funded  []common.Address
	Balance *big.Int
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

// WriteFile writes the genesis JSON that `geth init` takes.
func (g Genesis) WriteFile(path string) error {
	if g.ChainID == nil {
		return fmt.Errorf("genesis: ChainID is required")
	}
	gasLimit := g.GasLimit
	if gasLimit == 0 {
		gasLimit = DefaultGasLimit
	}
	f := genesisFile{
		Config:     ChainConfig(g.Fork, g.ChainID),
		Timestamp:  hexutil.Uint64(g.Time),
		ExtraData:  []byte{},
		GasLimit:   hexutil.Uint64(gasLimit),
		Difficulty: (*hexutil.Big)(big.NewInt(0)),
		Alloc:      genesisAlloc(g.Funded, g.Balance),
		BaseFee:    (*hexutil.Big)(big.NewInt(params.InitialBaseFee)),
	}
	raw, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("marshal genesis: %w", err)
	}
	return os.WriteFile(path, raw, 0o644)
}

// ChainConfig is merged at genesis (terminal total difficulty 0, every pre-merge fork at
// block 0) with every fork up to f at time 0. geth wants a blobSchedule entry for cancun and
// prague; Osaka and Amsterdam reuse the prague entry (there is no osaka key).
func ChainConfig(f Fork, chainID *big.Int) *params.ChainConfig {
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
	}
	if f == Shanghai {
		return cfg
	}
	cfg.CancunTime = &zero
	cfg.PragueTime = &zero
	cfg.OsakaTime = &zero
	cfg.BlobScheduleConfig = &params.BlobScheduleConfig{
		Cancun: params.DefaultCancunBlobConfig,
		Prague: params.DefaultPragueBlobConfig,
	}
	if f == Amsterdam {
		cfg.AmsterdamTime = &zero
	}
	return cfg
}

// genesisAlloc mirrors geth's developer genesis (core.DeveloperGenesisBlock): 1 wei in each
// precompile, the system contracts the forks call (EIP-4788 beacon roots, EIP-2935 history,
// EIP-7002 withdrawals, EIP-7251 consolidations, EIP-8282 builder requests, EIP-7997 factory),
// and the funded accounts.
func genesisAlloc(funded []common.Address, balance *big.Int) types.GenesisAlloc {
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
	for _, a := range funded {
		b := balance
		if b == nil {
			b = big.NewInt(0)
		}
		alloc[a] = types.Account{Balance: new(big.Int).Set(b)}
	}
	return alloc
}
